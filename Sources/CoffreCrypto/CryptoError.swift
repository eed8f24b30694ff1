/// Everything that can go wrong inside the cryptographic layer. A closed set: callers map each
/// case to an integrity, configuration or capacity failure.
public enum CryptoError: Error, Equatable, Sendable {
    /// Authentication failed: wrong key, wrong associated data, or tampered bytes.
    case authenticationFailed
    /// A stream ended before its FINAL record, or records continued after it.
    case truncated
    /// Bytes follow the FINAL record of a stream.
    case trailingData
    /// A stored structure does not start with what its format requires.
    case malformed(String)
    /// A stored structure carries a format version this build does not know.
    case unsupportedVersion(UInt8)
    /// Key material of the wrong length was supplied.
    case invalidKeyLength(expected: Int, actual: Int)
    /// The locked-memory arena has no free slot left.
    case arenaExhausted
    /// The key arena could not be allocated (out of memory or address space).
    case arenaUnavailable
    /// A signature did not verify.
    case badSignature
}
