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
}
