import CoffreDomain
public import NIOPosix
import Synchronization

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

extension BlockingIO {
    /// Starts `body` on the pool and returns at once; `wait()` on the result gives its outcome.
    ///
    /// For a blob's writes: the next batch is encrypted while this one is written. Like
    /// `runUncancelled`, a started job runs to its end whatever happens to the task that
    /// started it, so whoever owns the descriptor must wait for it (or hand it the clean-up,
    /// `whenFinished`) before closing it.
    func start(_ body: @Sendable @escaping () throws(StoreError) -> Void) -> PendingIO {
        let pending = PendingIO()
        pool.submit { state in
            guard case .active = state else {
                pending.finish(StoreError(.io, "the I/O thread pool is shut down"))
                return
            }
            do throws(StoreError) {
                try body()
                pending.finish(nil)
            } catch {
                pending.finish(error)
            }
        }
        return pending
    }
}

/// A job `BlockingIO.start` started: waited for by one task at most.
final class PendingIO: Sendable {
    private enum State {
        case running(waiter: CheckedContinuation<StoreError?, Never>?, then: (@Sendable () -> Void)?)
        case finished(StoreError?)
    }

    private let state = Mutex<State>(.running(waiter: nil, then: nil))

    /// Returns once the job has finished; throws what it threw.
    func wait() async throws(StoreError) {
        let failure: StoreError? = await withCheckedContinuation { continuation in
            let finished: StoreError?? = state.withLock { state in
                switch state {
                case .finished(let failure): return .some(failure)
                case .running(_, let then):
                    state = .running(waiter: continuation, then: then)
                    return .none
                }
            }
            if case .some(let failure) = finished { continuation.resume(returning: failure) }
        }
        if let failure { throw failure }
    }

    /// Runs `cleanUp` once the job has finished: now, if it has, or on the pool's thread after
    /// it (for an owner that goes away without waiting, as in a `deinit`).
    func whenFinished(_ cleanUp: @escaping @Sendable () -> Void) {
        let now = state.withLock { state in
            switch state {
            case .finished: return true
            case .running(let waiter, _):
                state = .running(waiter: waiter, then: cleanUp)
                return false
            }
        }
        if now { cleanUp() }
    }

    fileprivate func finish(_ failure: StoreError?) {
        let (waiter, then) = state.withLock { state -> (CheckedContinuation<StoreError?, Never>?, (@Sendable () -> Void)?) in
            guard case .running(let waiter, let then) = state else { return (nil, nil) }
            state = .finished(failure)
            return (waiter, then)
        }
        then?()
        waiter?.resume(returning: failure)
    }
}
