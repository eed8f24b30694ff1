import CoffreCrypto
import Dispatch

/// Runs the stream encryptor's hashing on a libdispatch worker while the calling thread seals.
///
/// The caller's thread (an event loop, since the daemon's tasks run there) waits for the worker
/// at the end of each piece: a wait on CPU work only, a few hundred microseconds for the largest
/// piece a connection reads (1 MiB), and nothing the worker does can wait on that thread.
struct DispatchSideBySide: SideBySide {
    func run(_ side: @escaping @Sendable () -> Void, alongside main: () -> Void) {
        let done = DispatchGroup()
        DispatchQueue.global().async(group: done, execute: side)
        main()
        done.wait()
    }
}
