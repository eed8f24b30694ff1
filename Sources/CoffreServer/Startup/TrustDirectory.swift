import CoffreDomain
import CoffreAPI
import CoffreCrypto
import Foundation

/// Loads the trusted assertion issuers: every `<issuer>.pub` file of the trust directory holds an
/// Ed25519 public key in hexadecimal.
enum TrustDirectory {
    static func load(_ directory: String) throws(ServerError) -> TrustStore {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        var keys: [String: Ed25519PublicKey] = [:]
        for name in names where name.hasSuffix(".pub") {
            let issuer = String(name.dropLast(4))
            guard TrustStore.isValidIssuerID(issuer) else {
                throw ServerError(.trust, "trust directory: \(name) is not <issuer>.pub with a plain issuer name")
            }
            guard let text = try? String(contentsOfFile: directory + "/" + name, encoding: .utf8) else {
                throw ServerError(.trust, "trust directory: \(name) cannot be read as text")
            }
            guard let bytes = Hex.decode(text.trimmingCharacters(in: .whitespacesAndNewlines)),
                let key = try? Ed25519PublicKey(bytes: bytes)
            else {
                throw ServerError(.trust, "trust directory: \(name) does not hold a 32-byte Ed25519 key in hex")
            }
            keys[issuer] = key
        }
        return TrustStore(keys: keys)
    }
}
