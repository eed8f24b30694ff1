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
        let publicPath = configuration.trustDirectory + "/\(issuerID).pub"
        if !FileManager.default.fileExists(atPath: seedPath) {
            var seed = Ed25519SigningKey.generateSeed()
            defer { secureZero(&seed) }
            let arena = try SecureArena(slotCount: 1)
            let key = try Ed25519SigningKey(seed: seed, in: arena)
            try writeFile(seedPath, Hex.encode(seed) + "\n", mode: 0o600)
            try writeFile(publicPath, Hex.encode(key.publicKey.bytes) + "\n", mode: 0o644)
        }
    }

    static func makePrivateDirectory(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }

    static func writeFile(_ path: String, _ text: String, mode: mode_t) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw StoreError(.keys, "cannot write \(path)", errno: errno) }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        guard write(fd, bytes, bytes.count) == bytes.count, fsync(fd) == 0 else {
            throw StoreError(.keys, "cannot write \(path)", errno: errno)
        }
    }
}
