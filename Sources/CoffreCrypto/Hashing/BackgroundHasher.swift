import Synchronization

/// Bytes that a hashing thread may read later: a value that keeps them alive and unchanged
/// (an array, or a wrapper around a NIO buffer).
public protocol HashableBytes: Sendable {
    /// Calls `body` with the bytes.
    func withHashableBytes(_ body: (UnsafeRawBufferPointer) -> Void)
}

extension Array: HashableBytes where Element == UInt8 {
    public func withHashableBytes(_ body: (UnsafeRawBufferPointer) -> Void) { withUnsafeBytes { body($0) } }
}

/// The SHA-256 of a large document's content, computed on a thread of its own.
///
/// A document's hash and its encryption are each one sequential pass over the plaintext. Done
/// one after the other on one thread, they bound a large store or fetch to what one core does
/// for both; with this, that thread encrypts (or decrypts, or writes) while another hashes
/// what it has passed on. At most `maximumBacklog` bytes wait to be hashed: `update` waits
/// beyond that, so memory stays bounded whatever the document's size. Used by one task at a
/// time.
///
/// The thread is the caller's: a serial queue passed in (this module imports no Dispatch, whose
/// C module would then own libc's structures for every module above, as `MemberImportVisibility`
/// sees them).
public final class BackgroundHasher: Sendable {
    /// Content from this size on is worth hashing in the background: below it, the hand-offs
    /// between threads cost more than the hashing.
    public static let threshold: Int64 = 1 << 20
    /// Bytes passed to the hashing thread and not hashed yet, at most.
    public static let maximumBacklog = 2 << 20

    private struct Backlog {
        var bytes = 0
        /// The task waiting for the backlog to shrink.
        var waiter: CheckedContinuation<Void, Never>?
    }

    /// The hasher, touched only on `queue`.
    private final class Confined: @unchecked Sendable {
        let hasher = SHA256Hasher()
    }

    private let run: @Sendable (@escaping @Sendable () -> Void) -> Void
    private let confined = Confined()
    private let backlog = Mutex(Backlog())

    /// `serially` runs each job it is given after the previous one, on a thread other than the
    /// caller's: `{ queue.async(execute: $0) }` for a serial `DispatchQueue` made once.
    public init(serially: @escaping @Sendable (@escaping @Sendable () -> Void) -> Void) {
        run = serially
    }

    /// Hashes `bytes` after everything passed before; `count` is their length (for the
    /// backlog). Nothing is copied: the hashing thread holds `bytes` until it is done.
    public func update(_ bytes: some HashableBytes, count: Int) async {
        if backlog.withLock({ $0.bytes >= Self.maximumBacklog }) {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let full = backlog.withLock { backlog in
                    guard backlog.bytes >= Self.maximumBacklog else { return false }
                    backlog.waiter = continuation
                    return true
                }
                if !full { continuation.resume() }
            }
        }
        backlog.withLock { $0.bytes += count }
        run { [self] in
            bytes.withHashableBytes { confined.hasher.update($0) }
            // The waiting task goes on once half the backlog is hashed, not at every piece.
            let waiter = backlog.withLock { backlog -> CheckedContinuation<Void, Never>? in
                backlog.bytes -= count
                guard backlog.bytes <= Self.maximumBacklog / 2 else { return nil }
                defer { backlog.waiter = nil }
                return backlog.waiter
            }
            waiter?.resume()
        }
    }

    /// The digest of everything passed, once it is all hashed.
    public func finalize() async -> [UInt8] {
        await withCheckedContinuation { continuation in
            run { [self] in continuation.resume(returning: confined.hasher.finalize()) }
        }
    }
}
