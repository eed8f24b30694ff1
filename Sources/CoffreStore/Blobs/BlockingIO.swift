public import NIOPosix

/// Runs blocking system calls (open, write, fsync, rename, pread) off the Swift concurrency
/// pool, whose few threads must never wait on a disk.
public struct BlockingIO: Sendable {
    let pool: NIOThreadPool

    /// Uses `pool`, which the caller starts and shuts down.
    public init(pool: NIOThreadPool) { self.pool = pool }

    func run<T: Sendable>(_ body: @Sendable @escaping () throws(StoreError) -> T) async throws(StoreError) -> T {
        let result: Result<T, StoreError>
        do {
            result = try await pool.runIfActive { () -> Result<T, StoreError> in
                do throws(StoreError) { return .success(try body()) } catch { return .failure(error) }
            }
        } catch {
            throw StoreError(.io, "the I/O thread pool is shut down")
        }
        return try result.get()
    }

    /// Like `run`, but runs `body` even when the calling task is cancelled.
    ///
    /// For steps that must not be skipped once started: closing a descriptor, removing a
    /// temporary file or an unacknowledged blob, finishing a commit. A request aborted at shutdown
    /// is exactly a cancelled task, and `NIOThreadPool.runIfActive` drops cancelled work, which
    /// would leave the temporary file and the descriptor behind.
    func runUncancelled<T: Sendable>(_ body: @Sendable @escaping () throws(StoreError) -> T) async throws(StoreError) -> T {
        let result: Result<T, StoreError> = await withCheckedContinuation { continuation in
            pool.submit { state in
                guard case .active = state else {
                    continuation.resume(returning: .failure(StoreError(.io, "the I/O thread pool is shut down")))
                    return
                }
                do throws(StoreError) {
                    continuation.resume(returning: .success(try body()))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
        return try result.get()
    }
}
