#if canImport(Glibc)
    import Glibc
#endif

/// An exclusive lock on the state directory, held for the daemon's whole life.
///
/// Two daemons on one state directory would each sweep the other's temporary files at start and
/// take over each other's socket; the second one must refuse to start instead.
final class StateLock: Sendable {
    private let fd: Int32

    init(directory: String) throws(StoreError) {
        let path = directory + "/coffred.lock"
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StoreError(.io, "cannot open \(path)", errno: errno) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw StoreError(.io, "another coffred is already using the state directory \(directory)")
        }
    }

    deinit { close(fd) }
}
