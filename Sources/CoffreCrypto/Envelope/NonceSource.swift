import CSodium
import Synchronization

/// Random nonces for key wrapping, drawn from libsodium's CSPRNG 4 KiB at a time.
///
/// A wrap needs 24 random bytes, and `randombytes_buf` costs a `getrandom` system call each
/// time: over a million rewraps (a master key rotation) the calls were a visible share of the
/// time. Nonces must be unique, not secret, and each byte handed out is erased from the buffer.
enum NonceSource {
    private struct Pool {
        var bytes = [UInt8](repeating: 0, count: 4096)
        var used = 4096
    }

    private static let pool = Mutex(Pool())

    /// Writes `count` (at most 4096) random bytes at `destination`.
    static func fill(_ destination: UnsafeMutablePointer<UInt8>, count: Int) {
        pool.withLock { pool in
            if pool.used + count > pool.bytes.count {
                randombytes_buf(&pool.bytes, pool.bytes.count)
                pool.used = 0
            }
            let start = pool.used
            pool.bytes.withUnsafeMutableBufferPointer { buffer in
                destination.update(from: buffer.baseAddress! + start, count: count)
                sodium_memzero(buffer.baseAddress! + start, count)
            }
            pool.used += count
        }
    }
}
