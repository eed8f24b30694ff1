#if canImport(Glibc)
    import Glibc
#endif
public import CoffreDomain
public import CoffreCrypto

/// The master key files installed on this machine, by version, loaded into locked memory.
///
/// Master keys are provisioned by operators as files named `coffre-master-<version>` holding
/// exactly 32 random bytes, in a key directory readable only by the daemon or in systemd's
/// `$CREDENTIALS_DIRECTORY` (`LoadCredential=` / `LoadCredentialEncrypted=`). Which version is
/// active is the index's to say (`Vault+KeyVersions`); a new file becomes active only through
/// `coffre admin keys rotate`. A file that is group- or world-readable, of the wrong size, or
/// badly named stops the start: there is never a silent fallback.
public struct MasterKeyring: Sendable {
    /// File name prefix of a master key.
    public static let filePrefix = "coffre-master-"

    /// Every loaded key, by version.
    public let keys: [UInt32: SymmetricKey]

    /// The highest installed version, if any.
    public var newestVersion: UInt32? { keys.keys.max() }

    init(keys: [UInt32: SymmetricKey]) { self.keys = keys }

    /// A check value of a master key: a keyed hash of its version under the key itself. The
    /// index records it per version, so that a wrong file installed under a known version is
    /// caught at start instead of failing every unwrap; it reveals nothing of the key.
    static func checkValue(of key: SymmetricKey, version: UInt32) -> [UInt8] {
        KeyedHash.digest(Array(String(version).utf8), domain: "coffre/master-key-check/v1", key: key)
    }

    /// Loads every `coffre-master-<N>` file of `directories` (later directories win on a
    /// duplicate version, so systemd credentials override a key directory).
    public static func load(from directories: [String], arena: SecureArena) throws(StoreError) -> MasterKeyring {
        var keys: [UInt32: SymmetricKey] = [:]
        for directory in directories {
            let names: [String]
            do {
                names = try POSIX.listDirectory(directory)
            } catch  where error.errno == ENOENT {
                continue  // an absent directory simply holds no key
            } catch {
                throw StoreError(.keys, "cannot read the key directory \(directory): fix its permissions (\(error))")
            }
            for name in names where name.hasPrefix(filePrefix) {
                guard let version = version(inFileName: name) else {
                    throw StoreError(
                        .keys, "master key file \(name) is not named coffre-master-<version>: decimal, from 1, no sign or leading zero")
                }
                keys[version] = try loadKey(at: directory + "/" + name, arena: arena)
            }
        }
        guard !keys.isEmpty else {
            throw StoreError(
                .keys, "no master key found in \(directories.joined(separator: ", ")): provision coffre-master-1 (see keys/README.md)")
        }
        return MasterKeyring(keys: keys)
    }

    /// The version a key file's name gives, if it is exactly `coffre-master-<N>`: N in decimal
    /// digits, from 1, with no sign and no leading zero. So one version has one file name, and
    /// `coffre-master-01` or `coffre-master-+1` never shadows `coffre-master-1`.
    static func version(inFileName name: String) -> UInt32? {
        guard name.hasPrefix(filePrefix) else { return nil }
        let digits = name.utf8.dropFirst(filePrefix.utf8.count)
        guard let first = digits.first, (49...57).contains(first), digits.allSatisfy({ (48...57).contains($0) }) else { return nil }
        return UInt32(String(decoding: digits, as: UTF8.self))
    }

    static func loadKey(at path: String, arena: SecureArena) throws(StoreError) -> SymmetricKey {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { throw StoreError(.keys, "cannot open master key \(path)", errno: errno) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw StoreError(.keys, "cannot stat master key \(path)", errno: errno) }
        guard info.st_mode & 0o077 == 0 else {
            throw StoreError(.keys, "master key \(path) is readable by group or others: chmod 0400 it")
        }
        guard info.st_size == Int(SymmetricKey.byteCount) else {
            throw StoreError(.keys, "master key \(path) must hold exactly 32 bytes, it holds \(info.st_size)")
        }
        do {
            return try SymmetricKey.reading(fileDescriptor: fd, in: arena)
        } catch {
            throw StoreError(.keys, "cannot read master key \(path): \(error)")
        }
    }

    /// Writes a new random master key file `coffre-master-<version>` (mode 0400) in `directory`;
    /// for development mode and `coffre admin keys new`.
    public static func writeNewKey(version: UInt32, in directory: String) throws(StoreError) {
        try POSIX.makeDirectory(directory)
        let path = directory + "/" + filePrefix + String(version)
        var bytes = SecureRandom.bytes(SymmetricKey.byteCount)
        defer { secureZero(&bytes) }
        let fd = try POSIX.open(path, flags: O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode: 0o400)
        defer { close(fd) }
        try POSIX.writeAll(fd, bytes)
        guard fsync(fd) == 0 else { throw POSIX.error("fsync of a new master key failed", errno) }
        try POSIX.syncDirectory(directory)
    }
}
