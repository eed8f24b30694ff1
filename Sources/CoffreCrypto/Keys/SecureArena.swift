import CSodium
import Synchronization

/// One guarded, locked region of memory that holds every secret the process works with.
///
/// `sodium_malloc` places a region between guard pages and `mlock`s it, but each call locks at
/// least a whole page and maps three: one allocation per key would exhaust `ulimit -l` (8 MiB
/// here) at about two thousand keys in flight, and cost two extra mappings each. So the daemon
/// makes one arena at start and hands out fixed 64-byte slots from it: large enough for a
/// 32-byte key, an Ed25519 secret key (64 bytes), or a `crypto_secretstream` state (52 bytes).
/// A released slot is zeroed before it is reused.
///
/// `sodium_malloc` ignores a failed `mlock`, so the arena locks its region again itself and
/// reports in `isLocked` whether the kernel agreed (it may not under a low `ulimit -l`).
public final class SecureArena: @unchecked Sendable {
    // @unchecked: `base` is written once in `init` and freed in `deinit`; which slots are free is
    // guarded by `freeSlots`, and a slot, once handed out, is used by its single owner only.

    /// Size in bytes of one slot.
    public static let slotSize = 64

    private let base: UnsafeMutableRawPointer
    private let capacity: Int
    private let freeSlots: Mutex<[Int]>
    /// Whether the region is locked in memory (never written to swap).
    public let isLocked: Bool

    /// Allocates an arena of `slotCount` slots in guarded, locked memory.
    /// - Throws: `CryptoError.arenaUnavailable` when the region cannot be allocated at all.
    public init(slotCount: Int = 4096) throws(CryptoError) {
        Sodium.ensureInitialised()
        guard slotCount > 0, let region = sodium_malloc(slotCount * Self.slotSize) else {
            throw .arenaUnavailable
        }
        // sodium_malloc fills with 0xdb to expose uninitialised reads; start from zeros instead.
        sodium_memzero(region, slotCount * Self.slotSize)
        self.base = region
        self.capacity = slotCount
        self.isLocked = sodium_mlock(region, slotCount * Self.slotSize) == 0
        self.freeSlots = Mutex(Array((0..<slotCount).reversed()))
    }

    deinit {
        sodium_free(base)  // zeroes the region, then unlocks and releases it
    }

    /// Number of slots not in use; for health reporting.
    public var availableSlots: Int { freeSlots.withLock { $0.count } }

    /// Total number of slots.
    public var slotCount: Int { capacity }

    /// Takes a zeroed slot, or throws `arenaExhausted`.
    func allocate() throws(CryptoError) -> SecureSlot {
        let index = freeSlots.withLock { $0.popLast() }
        guard let index else { throw .arenaExhausted }
        return SecureSlot(arena: self, index: index, pointer: base + index * Self.slotSize)
    }

    fileprivate func release(index: Int, pointer: UnsafeMutableRawPointer) {
        sodium_memzero(pointer, Self.slotSize)
        freeSlots.withLock { $0.append(index) }
    }
}

/// A slot of a `SecureArena`, zeroed and returned to the arena when its owner goes away.
final class SecureSlot: @unchecked Sendable {
    // @unchecked: the pointer is fixed at init; owners (keys, stream states) never share a slot
    // across threads while writing it.

    let pointer: UnsafeMutableRawPointer
    private let arena: SecureArena
    private let index: Int

    fileprivate init(arena: SecureArena, index: Int, pointer: UnsafeMutableRawPointer) {
        self.arena = arena
        self.index = index
        self.pointer = pointer
    }

    deinit { arena.release(index: index, pointer: pointer) }
}
