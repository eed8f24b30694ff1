#if canImport(Glibc)
    import Glibc
#endif
import CoffreDomain

/// An exclusive lock on the state directory, held for the daemon's whole life.
///
/// Two daemons on one state directory would each sweep the other's temporary files at start and
/// take over each other's socket; the second one must refuse to start instead.
final class StateLock: Sendable {
    private let fd: Int32

    /// Only a locked descriptor makes a `StateLock`, which closes it once, when it goes.
    private init(lockedDescriptor fd: Int32) {
        self.fd = fd
    }

    /// A failed lock closes its descriptor here, before any object exists: a class whose
    /// initialiser throws once its properties are set runs its `deinit` too, and a second
    /// `close` of the same number can close a descriptor another thread has just been given.
    static func acquire(directory: String) throws(StoreError) -> StateLock {
        let path = directory + "/coffred.lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StoreError(.io, "cannot open \(path)", errno: errno) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw StoreError(.io, "another coffred is already using the state directory \(directory)")
        }
        return StateLock(lockedDescriptor: fd)
    }

    deinit { close(fd) }
}
