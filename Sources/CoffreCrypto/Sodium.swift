import CSodium

/// libsodium must be initialised once before use; `sodium_init` is thread-safe and idempotent,
/// and a global `let` runs it exactly once, on first use.
private let sodiumInitialisation: Int32 = sodium_init()

/// Entry point every public operation of this module passes through first.
enum Sodium {
    /// Traps only if libsodium cannot initialise at all (no usable entropy source), where
    /// continuing would mean generating predictable keys.
    @inline(__always)
    static func ensureInitialised() {
        precondition(sodiumInitialisation >= 0, "libsodium failed to initialise")
    }
}

/// Random bytes and constant-time helpers from libsodium.
public enum SecureRandom {
    /// `count` bytes from the operating system's CSPRNG.
    public static func bytes(_ count: Int) -> [UInt8] {
        Sodium.ensureInitialised()
        var out = [UInt8](repeating: 0, count: count)
        out.withUnsafeMutableBytes { randombytes_buf($0.baseAddress!, $0.count) }
        return out
    }

    /// A random identifier of `byteCount` bytes, as lowercase hexadecimal.
    public static func hexIdentifier(byteCount: Int = 16) -> String {
        Hex.encode(bytes(byteCount))
    }
}

/// Overwrites a buffer with zeros in a way the compiler may not elide.
public func secureZero(_ bytes: inout [UInt8]) {
    bytes.withUnsafeMutableBytes { buffer in
        if let base = buffer.baseAddress { sodium_memzero(base, buffer.count) }
    }
}

/// Compares two byte strings in time that depends only on their length.
public func constantTimeEquals(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
    Sodium.ensureInitialised()
    guard lhs.count == rhs.count else { return false }
    if lhs.isEmpty { return true }
    return lhs.withUnsafeBytes { l in
        rhs.withUnsafeBytes { r in sodium_memcmp(l.baseAddress!, r.baseAddress!, l.count) == 0 }
    }
}
