public import CoffreCrypto
import Foundation

/// The development issuer key `coffre` signs assertions with: `$COFFRE_ISSUER_KEY`, or
/// `dev-issuer.key` beside the socket (where `coffred --dev` writes it). Hex seed, one line.
public enum IssuerKey {
    /// Loads the signing key, or explains where it was looked for.
    public static func load(socketPath: String, environment: [String: String], arena: SecureArena) throws(ClientError) -> Ed25519SigningKey
    {
        let path = environment["COFFRE_ISSUER_KEY"] ?? (directory(of: socketPath) + "/dev-issuer.key")
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ClientError(
                code: "issuer_key_missing",
                message: "no development issuer key at \(path); start coffred --dev, set COFFRE_ISSUER_KEY, or pass --assertion FILE",
                exitCode: ExitStatus.notPermitted)
        }
        guard var seed = Hex.decode(text.trimmingCharacters(in: .whitespacesAndNewlines)),
            let key = try? Ed25519SigningKey(seed: seed, in: arena)
        else {
            throw ClientError(
                code: "issuer_key_invalid", message: "\(path) does not hold a 32-byte hex seed", exitCode: ExitStatus.notPermitted)
        }
        secureZero(&seed)
        return key
    }

    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}
