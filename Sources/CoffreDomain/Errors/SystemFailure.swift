/// A failure of the system around the rules (the store, the daemon's socket, its trust
/// directory), in one shape: a stable `code` to switch on, a message an operator can act on,
/// and errno when a system call failed. Messages never carry personal data (no INS, no title).
///
/// Modelled on swift-nio's `FileSystemError`. Each module names its codes (`StoreError`,
/// `ServerError`); the rules' own refusals are `Refusal`.
public struct SystemFailure<Code: Hashable & Sendable>: Error, Sendable, CustomStringConvertible {
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
