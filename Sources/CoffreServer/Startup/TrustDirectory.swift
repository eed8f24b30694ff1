import CoffreAPI
import CoffreCrypto
import CoffreDomain
import Foundation

/// Loads the trusted assertion issuers. For each issuer the trust directory holds two files:
/// - `<issuer>.pub`: its Ed25519 public key, in hexadecimal;
/// - `<issuer>.scope`: what it may vouch for, as JSON, for instance
///   `{"roles": ["professional"], "modes": ["normal", "bris_de_glace"], "professions": ["10"]}`.
///   `roles` is required; `modes` defaults to `["normal"]`; `professions` (two-digit codes, or
///   `["*"]` for all) is required when `roles` names `professional`.
///
/// Every file is judged alone: a bad file keeps its issuer out and is reported, and the other
/// issuers load. So a reload never leaves a revoked issuer trusted because of another file's
/// mistake. An issuer with no scope file is not trusted; in development mode only, the
/// development issuer without one may vouch for everyone.
enum TrustDirectory {
    /// What a load found: the issuers to trust, and the files left out, with why.
    struct Loaded {
        var store: TrustStore
        var problems: [String]
    }

    static func load(_ directory: String, developmentIssuer: String? = nil) -> Loaded {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch CocoaError.fileReadNoSuchFile {
            return Loaded(store: TrustStore(), problems: [])
        } catch {
            return Loaded(store: TrustStore(), problems: ["\(directory) cannot be read: no issuer is trusted"])
        }
        var problems: [String] = []
        var keys: [String: Ed25519PublicKey] = [:]
        var scopes: [String: IssuerScope] = [:]
        // Issuers with a file reported already: no second complaint, and never a default scope.
        var reported: Set<String> = []
        for name in names.sorted() {
            let isKey = name.hasSuffix(".pub")
            guard isKey || name.hasSuffix(".scope") else { continue }
            let issuer = String(name.dropLast(isKey ? 4 : 6))
            guard TrustStore.isValidIssuerID(issuer) else {
                problems.append("\(name): not <issuer>.pub or <issuer>.scope with a plain issuer name")
                continue
            }
            guard let text = try? String(contentsOfFile: directory + "/" + name, encoding: .utf8) else {
                problems.append("\(name): cannot be read as text")
                reported.insert(issuer)
                continue
            }
            do throws(ScopeFileError) {
                if isKey {
                    guard let bytes = Hex.decode(text.trimmingCharacters(in: .whitespacesAndNewlines)),
                        let key = try? Ed25519PublicKey(bytes: bytes)
                    else { throw ScopeFileError("does not hold a 32-byte Ed25519 key in hex") }
                    keys[issuer] = key
                } else {
                    scopes[issuer] = try scope(from: text)
                }
            } catch {
                problems.append("\(name): \(error.reason)")
                reported.insert(issuer)
            }
        }
        var trusted: [String: TrustedIssuer] = [:]
        for (issuer, key) in keys where !reported.contains(issuer) {
            if let scope = scopes[issuer] ?? (issuer == developmentIssuer ? .everything : nil) {
                trusted[issuer] = TrustedIssuer(key: key, scope: scope)
            } else {
                problems.append("\(issuer).pub: no \(issuer).scope says what this issuer may vouch for")
            }
        }
        for issuer in scopes.keys where keys[issuer] == nil && !reported.contains(issuer) {
            problems.append("\(issuer).scope: no \(issuer).pub holds this issuer's key")
        }
        return Loaded(store: TrustStore(trusted), problems: problems.sorted())
    }

    /// Parses a scope file; strict, so that a misspelt key is an error, never a silent default.
    static func scope(from text: String) throws(ScopeFileError) -> IssuerScope {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw ScopeFileError("is not a JSON object")
        }
        let known: Set = ["roles", "modes", "professions"]
        if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
            throw ScopeFileError("unknown key \"\(unknown)\" (roles, modes and professions are known)")
        }
        func strings(_ key: String) throws(ScopeFileError) -> [String]? {
            guard let value = object[key] else { return nil }
            guard let list = value as? [String], !list.isEmpty else { throw ScopeFileError("\(key) must be a non-empty list of strings") }
            return list
        }
        guard let roleNames = try strings("roles") else { throw ScopeFileError("roles is required") }
        var roles: Set<Role> = []
        for name in roleNames {
            guard let role = Role(rawValue: name) else { throw ScopeFileError("unknown role \"\(name)\"") }
            roles.insert(role)
        }
        var modes: Set<AccessMode> = []
        for name in try strings("modes") ?? ["normal"] {
            guard let mode = AccessMode(rawValue: name) else { throw ScopeFileError("unknown mode \"\(name)\"") }
            modes.insert(mode)
        }
        var professions: Set<Profession>? = []
        switch try strings("professions") {
        case nil:
            guard !roles.contains(.professional) else {
                throw ScopeFileError("professions is required for the professional role (two-digit codes, or [\"*\"])")
            }
        case ["*"]?:
            professions = nil
        case let codes?:
            for code in codes {
                guard let profession = Profession(code) else { throw ScopeFileError("\"\(code)\" is not a two-digit profession code") }
                professions?.insert(profession)
            }
        }
        return IssuerScope(roles: roles, modes: modes, professions: professions)
    }

    struct ScopeFileError: Error {
        let reason: String
        init(_ reason: String) { self.reason = reason }
    }
}
