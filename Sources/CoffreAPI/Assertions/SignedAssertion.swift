public import CoffreCrypto
public import CoffreDomain
import Foundation

/// The compact, signed form of an actor assertion:
/// `v1.<base64url(claims JSON)>.<base64url(Ed25519 signature)>`.
///
/// The signature covers `coffre-assertion.v1.` followed by the encoded claims, so a signature
/// made for any other purpose with the same key never verifies as an assertion.
public enum SignedAssertion {
    static let prefix = "v1"
    static let signingLabel = "coffre-assertion.v1."
    /// Longest token accepted; anything longer is refused before any parsing.
    public static let maximumLength = 4096
    /// Longest lifetime (`exp - iat`) accepted: assertions are meant to live minutes.
    public static let maximumLifetime: Int64 = 60 * 60
    /// Longest `jti` accepted (the `coffre` client sends 32 hex digits).
    public static let maximumIdentifierLength = 128
    /// Tolerated clock difference between the issuer and the daemon.
    public static let clockSkew: Int64 = 60

    /// Signs `claims` with the issuer's key.
    public static func sign(_ claims: AssertionClaims, with key: Ed25519SigningKey) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let payload = Base64URL.encode(Array(try encoder.encode(claims)))
        let signature = key.sign(Array((signingLabel + payload).utf8))
        return "\(prefix).\(payload).\(Base64URL.encode(signature))"
    }

    /// Verifies a token against the trust store at time `now` (seconds since the epoch) and
    /// returns the actor it names.
    public static func verify(_ token: String, trust: TrustStore, now: Int64) throws(Problem) -> (Actor, AssertionClaims) {
        guard token.utf8.count <= maximumLength else { throw Problem(.assertionMalformed, detail: "the assertion is too long") }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == prefix,
            let payloadBytes = Base64URL.decode(String(parts[1])),
            let signature = Base64URL.decode(String(parts[2]))
        else {
            throw Problem(.assertionMalformed, detail: "an assertion is three dot-separated parts: v1.<claims>.<signature>")
        }
        let claims: AssertionClaims
        do {
            claims = try JSONDecoder().decode(AssertionClaims.self, from: Data(payloadBytes))
        } catch {
            throw Problem(.assertionMalformed, detail: "the assertion's claims are not valid JSON of the expected shape")
        }
        guard let issuer = trust.issuer(claims.iss) else {
            throw Problem(.assertionUnknownIssuer, detail: "no trusted issuer key named '\(TrustStore.printable(claims.iss))'")
        }
        guard issuer.key.isValidSignature(signature, for: Array((signingLabel + parts[1]).utf8)) else {
            throw Problem(.assertionBadSignature, detail: "the assertion's signature does not verify with its issuer's key")
        }
        // Subtract without trapping: the claims are the client's numbers.
        let (lifetime, overflow) = claims.exp.subtractingReportingOverflow(claims.iat)
        guard !overflow, lifetime > 0, lifetime <= maximumLifetime else {
            throw Problem(
                .assertionMalformed, detail: "an assertion must expire after it is issued and live at most \(maximumLifetime / 60) minutes")
        }
        guard (1...maximumIdentifierLength).contains(claims.jti.utf8.count) else {
            throw Problem(
                .assertionMalformed, detail: "an assertion's jti is 1 to \(maximumIdentifierLength) characters, unique per assertion")
        }
        guard claims.iat <= now + clockSkew else {
            throw Problem(.assertionExpired, detail: "the assertion is issued in the future; check the issuer's clock")
        }
        guard now - clockSkew < claims.exp else {
            throw Problem(.assertionExpired, detail: "the assertion has expired; ask the issuing software for a new one")
        }
        let actor = try claims.actor()
        if let uncovered = issuer.scope.uncovered(actor) {
            throw Problem(
                .assertionOutOfScope,
                detail: "issuer '\(claims.iss)' is not trusted to vouch for \(uncovered) (see its scope file in the trust directory)")
        }
        return (actor, claims)
    }
}

/// A software the daemon accepts assertions from: the key it signs with, and what it may
/// vouch for.
public struct TrustedIssuer: Sendable {
    public var key: Ed25519PublicKey
    public var scope: IssuerScope

    public init(key: Ed25519PublicKey, scope: IssuerScope) {
        self.key = key
        self.scope = scope
    }
}

/// The issuers whose assertions the daemon accepts, by issuer id.
public struct TrustStore: Sendable {
    private var trusted: [String: TrustedIssuer]

    public init(_ trusted: [String: TrustedIssuer] = [:]) { self.trusted = trusted }

    /// Issuer `id`, if trusted.
    public func issuer(_ id: String) -> TrustedIssuer? { trusted[id] }

    /// Issuer ids, sorted.
    public var issuers: [String] { trusted.keys.sorted() }

    /// Whether `id` can name an issuer: a safe file-name stem (letters, digits, `-`, `_`, `.`,
    /// not starting with a dot), at most 64 characters.
    public static func isValidIssuerID(_ id: String) -> Bool {
        guard (1...64).contains(id.utf8.count), id.first != "." else { return false }
        return id.utf8.allSatisfy { c in
            (48...57).contains(c) || (65...90).contains(c) || (97...122).contains(c) || c == 45 || c == 95 || c == 46
        }
    }

    static func printable(_ id: String) -> String {
        isValidIssuerID(id) ? id : "(invalid issuer id)"
    }
}
