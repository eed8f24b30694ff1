public import CoffreDomain

/// A failure of the daemon outside the vault: its socket, its trust directory.
public typealias ServerError = SystemFailure<ServerFailure>

/// What kind of failure of the daemon a `ServerError` is.
public enum ServerFailure: String, Sendable {
    /// The listening socket: passed by systemd in a form coffred does not accept, or not bindable.
    case socket
    /// The trust directory holds a file that is not a valid issuer key.
    case trust
    /// The process itself: a protection the kernel refused (core dumps off).
    case process
}
