public import CoffreAPI
import CoffreCrypto
import CoffreDomain
import Foundation

/// Valid identifiers for tests, made the way the real ones are.
public enum Identities {
    /// A valid INS from a 13-character NIR (key appended).
    public static func ins(nir: String) -> String {
        let numeric = nir.replacingOccurrences(of: "2A", with: "19").replacingOccurrences(of: "2B", with: "18")
        let value = numeric.reduce(0) { ($0 * 10 + Int(String($1))!) % 97 }
        let key = 97 - value
        return nir + (key < 10 ? "0\(key)" : "\(key)")
    }

    /// A valid INS distinct for each `n`.
    public static func ins(_ n: Int) -> String {
        ins(nir: "18405631" + String(format: "%05d", n % 100_000))
    }

    /// A valid RPPS distinct for each `n`.
    public static func rpps(_ n: Int) -> String {
        RPPS.withCheckDigit("1000" + String(format: "%06d", n % 1_000_000))!.value
    }

    /// Signs `claims` with the development issuer key of a daemon's state directory.
    public static func sign(_ claims: AssertionClaims, seedPath: String) throws -> String {
        let text = try String(contentsOfFile: seedPath, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let arena = try SecureArena(slotCount: 2)
        let key = try Ed25519SigningKey(seed: Hex.decode(text)!, in: arena)
        return try SignedAssertion.sign(claims, with: key)
    }
}
