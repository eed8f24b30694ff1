#if canImport(Glibc)
    import Glibc
#endif
public import CoffreDomain
import Synchronization

/// The development clock: real time shifted by an offset an operator sets
/// (`coffre admin clock set DATE`), so that the dossier's time rules (hidden documents, notices,
/// retention) can be tried from a shell. The offset is kept in the state directory, so it
/// survives a restart. Never used outside development mode.
public final class SettableClock: VaultClock {
    private let offset: Mutex<Int64>
    private let path: String
    private let real = SystemClock()

    /// Loads the offset saved in `stateDirectory` (none: the real time).
    public init(stateDirectory: String) {
        path = stateDirectory + "/dev-clock"
        var saved: Int64 = 0
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd >= 0 {
            var buffer = [UInt8](repeating: 0, count: 32)
            let count = read(fd, &buffer, buffer.count)
            close(fd)
            if count > 0 {
                saved = Int64(String(decoding: buffer[0..<count].filter { $0 != 10 }, as: UTF8.self)) ?? 0
            }
        }
        offset = Mutex(saved)
    }

    public func now() -> Int64 { real.now() + offset.withLock { $0 } }

    /// Makes it `milliseconds` (since the epoch) now, and saves the offset durably.
    public func set(to milliseconds: Int64) throws(StoreError) {
        let newOffset = milliseconds - real.now()
        let temporary = path + ".tmp"
        let fd = try POSIX.open(temporary, flags: O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode: 0o600)
        do throws(StoreError) {
            try POSIX.writeAll(fd, Array("\(newOffset)\n".utf8))
            guard fsync(fd) == 0 else { throw POSIX.error("fsync of the development clock failed", errno) }
            close(fd)
        } catch {
            close(fd)
            throw error
        }
        guard rename(temporary, path) == 0 else { throw POSIX.error("cannot save the development clock", errno) }
        offset.withLock { $0 = newOffset }
    }
}
