#if canImport(Glibc)
    import Glibc
#endif
import CoffreDomain
import CoffreCrypto
import CoffreStore
import Foundation

/// First start in development mode: a master key and an assertion issuer of its own, so that
/// `coffre --as patient:INS …` works with no other set-up. Never used outside `--dev`.
enum DevelopmentSetup {
    /// Issuer id of the development issuer in the trust directory.
    static let issuerID = "dev"

    static func prepare(_ configuration: ServerConfiguration) throws {
        try makePrivateDirectory(configuration.stateDirectory)
        let keyDirectory = configuration.keyDirectories[0]
        try makePrivateDirectory(keyDirectory)
        let hasMasterKey = ((try? FileManager.default.contentsOfDirectory(atPath: keyDirectory)) ?? [])
            .contains { $0.hasPrefix(MasterKeyring.filePrefix) }
        if !hasMasterKey {
            try MasterKeyring.writeNewKey(version: 1, in: keyDirectory)
        }
        try makePrivateDirectory(configuration.trustDirectory)
        let seedPath = configuration.developmentIssuerKeyPath
        // Created only if absent, never through a link, and only the daemon's user may read it;
        // one found there must be as this would have made it.
        let fd = open(seedPath, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            guard errno == EEXIST else { throw StoreError(.keys, "cannot create \(seedPath)", errno: errno) }
            try checkPrivate(seedPath)
            return
        }
        defer { close(fd) }
        var seed = Ed25519SigningKey.generateSeed()
        defer { secureZero(&seed) }
        let arena = try SecureArena(slotCount: 1)
        let key = try Ed25519SigningKey(seed: seed, in: arena)
        var text = Array((Hex.encode(seed) + "\n").utf8)
        defer { secureZero(&text) }
        guard write(fd, text, text.count) == text.count, fsync(fd) == 0 else {
            throw StoreError(.keys, "cannot write \(seedPath)", errno: errno)
        }
        try writeFile(configuration.trustDirectory + "/\(issuerID).pub", Hex.encode(key.publicKey.bytes) + "\n", mode: 0o644)
    }

    /// Refuses a development issuer key that is a link, not a regular file, not the daemon's
    /// user's, or readable by anyone else: another user could have put it there to be trusted.
    static func checkPrivate(_ path: String) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else { throw StoreError(.keys, "cannot inspect \(path)", errno: errno) }
        guard info.st_mode & S_IFMT == S_IFREG, info.st_uid == geteuid(), info.st_mode & 0o077 == 0 else {
            throw StoreError(
                .keys, "\(path) is not a regular file of this user with mode 0600: remove it, and the next --dev start makes a new one")
        }
    }

    static func makePrivateDirectory(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }

    static func writeFile(_ path: String, _ text: String, mode: mode_t) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else { throw StoreError(.keys, "cannot write \(path)", errno: errno) }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        guard write(fd, bytes, bytes.count) == bytes.count, fsync(fd) == 0 else {
            throw StoreError(.keys, "cannot write \(path)", errno: errno)
        }
    }
}
