#if canImport(Glibc)
    import Glibc
#endif
public import CoffreCrypto

/// The master keys the daemon holds, by version, in locked memory.
///
/// Master keys are provisioned by operators as files named `coffre-master-<version>` holding
/// exactly 32 random bytes, in a key directory readable only by the daemon or in systemd's
/// `$CREDENTIALS_DIRECTORY` (`LoadCredential=` / `LoadCredentialEncrypted=`). The newest version
/// is active: it wraps every new dossier key. A file that is group- or world-readable, of the
/// wrong size, or a missing key stops the start: there is never a silent fallback.
public struct MasterKeyring: Sendable {
    /// File name prefix of a master key.
    public static let filePrefix = "coffre-master-"

    /// Every loaded key, by version.
    public let keys: [UInt32: SymmetricKey]
    /// The version that wraps new dossier keys.
    public let activeVersion: UInt32

    /// The active key.
    public var activeKey: SymmetricKey { keys[activeVersion]! }

    /// The key of `version`, if loaded.
    public func key(version: UInt32) -> SymmetricKey? { keys[version] }

    init(keys: [UInt32: SymmetricKey]) throws(StoreError) {
        guard let newest = keys.keys.max() else {
            throw StoreError(.keys, "no master key found: provision coffre-master-1 (see keys/README.md)")
        }
        self.keys = keys
        self.activeVersion = newest
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
                guard let version = UInt32(name.dropFirst(filePrefix.count)), version > 0 else {
                    throw StoreError(.keys, "master key file \(name) is not named coffre-master-<version ≥ 1>")
                }
                keys[version] = try loadKey(at: directory + "/" + name, arena: arena)
            }
        }
        return try MasterKeyring(keys: keys)
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
