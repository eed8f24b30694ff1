import CLibcrypto

/// Incremental SHA-256, the content hash recorded for every document.
///
/// SHA-256 rather than BLAKE2b so that an operator can check a fetched document with `sha256sum`.
/// Computed by OpenSSL's libcrypto rather than libsodium: libsodium has only portable C code for
/// SHA-256 (about 250–300 MB/s here), which kept a large store under half the speed of the disk;
/// libcrypto uses the CPU's SHA extensions (about 1.4 GB/s here, see docs/benchmarks.md). Every
/// other primitive stays libsodium's.
public final class SHA256Hasher {
    private let context: OpaquePointer

    /// Starts a new hash.
    public init() {
        // Allocation and initialisation fail only when memory runs out.
        guard let context = EVP_MD_CTX_new(), EVP_DigestInit_ex(context, EVP_sha256(), nil) == 1 else {
            fatalError("OpenSSL could not start a SHA-256 (out of memory)")
        }
        self.context = context
    }

    /// Feeds bytes.
    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        _ = EVP_DigestUpdate(context, base, bytes.count)
    }

    /// The 32-byte digest.
    public func finalize() -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        _ = EVP_DigestFinal_ex(context, &digest, &length)
        return digest
    }

    /// SHA-256 of a whole buffer.
    public static func hash(_ bytes: [UInt8]) -> [UInt8] {
        let hasher = SHA256Hasher()
        bytes.withUnsafeBytes { hasher.update($0) }
        return hasher.finalize()
    }

    // EVP_MD_CTX_free cleanses the context before freeing it.
    deinit { EVP_MD_CTX_free(context) }
}
