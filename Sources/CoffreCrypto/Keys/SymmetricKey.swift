#if canImport(Glibc)
    import Glibc
#endif
import CSodium

/// A 256-bit secret key held in a slot of locked memory, zeroed when the last reference goes.
///
/// Keys never leave the arena as Swift arrays: they are generated, unwrapped and read into their
/// slot directly, and used through `withUnsafeBytes`. Two keys compare in constant time.
public final class SymmetricKey: Sendable, Equatable {
    /// Key length in bytes.
    public static let byteCount = 32

    let slot: SecureSlot

    private init(slot: SecureSlot) { self.slot = slot }

    /// A fresh random key.
    public static func random(in arena: SecureArena) throws(CryptoError) -> SymmetricKey {
        let slot = try arena.allocate()
        randombytes_buf(slot.pointer, byteCount)
        return SymmetricKey(slot: slot)
    }

    /// A key whose bytes `fill` writes into the slot (used to read a key file or unwrap a key
    /// straight into locked memory). `fill` returns false to reject the material.
    static func filling(
        in arena: SecureArena,
        _ fill: (UnsafeMutableRawBufferPointer) -> Bool
    ) throws(CryptoError) -> SymmetricKey? {
        let slot = try arena.allocate()
        guard fill(UnsafeMutableRawBufferPointer(start: slot.pointer, count: byteCount)) else { return nil }
        return SymmetricKey(slot: slot)
    }

    /// A key copied from `bytes`, which the caller then zeroes. For key files and tests.
    public static func copying(_ bytes: [UInt8], in arena: SecureArena) throws(CryptoError) -> SymmetricKey {
        guard bytes.count == byteCount else {
            throw .invalidKeyLength(expected: byteCount, actual: bytes.count)
        }
        let slot = try arena.allocate()
        bytes.withUnsafeBytes { slot.pointer.copyMemory(from: $0.baseAddress!, byteCount: byteCount) }
        return SymmetricKey(slot: slot)
    }

    /// Reads a key straight from an open file descriptor into locked memory, demanding exactly
    /// `byteCount` bytes and nothing after them.
    public static func reading(
        fileDescriptor fd: Int32,
        in arena: SecureArena
    ) throws(CryptoError) -> SymmetricKey {
        let key = try filling(in: arena) { buffer in
            var total = 0
            while total < byteCount {
                let n = read(fd, buffer.baseAddress! + total, byteCount - total)
                if n <= 0 { return false }
                total += n
            }
            var extra: UInt8 = 0
            return read(fd, &extra, 1) == 0
        }
        guard let key else { throw .malformed("a master key file must hold exactly 32 bytes") }
        return key
    }

    /// Gives temporary read access to the key bytes.
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(start: slot.pointer, count: Self.byteCount))
    }

    var pointer: UnsafePointer<UInt8> { UnsafePointer(slot.pointer.assumingMemoryBound(to: UInt8.self)) }

    public static func == (lhs: SymmetricKey, rhs: SymmetricKey) -> Bool {
        sodium_memcmp(lhs.slot.pointer, rhs.slot.pointer, byteCount) == 0
    }
}
