/// A failure of the daemon outside the vault: its socket, its trust directory, its logging.
///
/// Same shape as `StoreError`: a stable `code`, a message an operator can act on, and errno when
/// a system call failed. Messages never carry personal data.
public struct ServerError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is.
    public enum Code: String, Sendable {
        /// The listening socket: passed by systemd in a form coffred does not accept, or not bindable.
        case socket
        /// The trust directory holds a file that is not a valid issuer key.
        case trust
    }

    /// What kind of failure this is.
    public var code: Code
    /// What failed and how to fix it.
    public var message: String
    /// errno, for failed system calls.
    public var errno: Int32?

    /// A failure of kind `code`.
    public init(_ code: Code, _ message: String, errno: Int32? = nil) {
        self.code = code
        self.message = message
        self.errno = errno
    }

    /// The message, with errno when there is one.
    public var description: String {
        if let errno { return "\(message) (errno \(errno))" }
        return message
    }
}
