import ArgumentParser
import CoffreAPI
import CoffreClient
import CoffreCrypto
import CoffreDomain
import Foundation

/// Options every command accepts, before or after the command words (scripts write them
/// either way). `hoist` moves them behind the command words before ArgumentParser sees them.
struct GlobalOptions: ParsableArguments {
    @Option(help: "The daemon's socket (default: $COFFRE_SOCKET, then /run/coffre/coffred.sock).")
    var socket: String?

    @Option(
        name: .customLong("as"), help: "Act as patient:INS, pro:RPPS:PROFESSION[:SPECIALTY][@FINESS] or rep:INS:PATIENT_INS.")
    var actor: String?

    @Option(help: "Access mode: normal, bris_de_glace (with --reason) or centre_15.")
    var mode: String = AccessMode.normal.rawValue

    @Option(help: "Written reason for an emergency access.")
    var reason: String?

    @Option(help: "A file holding a signed actor assertion from real software (instead of --as).")
    var assertion: String?

    @Flag(help: "Machine-readable output on stdout.")
    var json = false

    @Option(help: "The patient's INS (default: the acting patient's own).")
    var patient: String?

    /// Names of the options above, and whether each takes a value.
    static let names: [String: Bool] = [
        "--socket": true, "--as": true, "--mode": true, "--reason": true, "--assertion": true,
        "--patient": true, "--json": false,
    ]

    var socketPath: String {
        socket ?? ProcessInfo.processInfo.environment["COFFRE_SOCKET"] ?? "/run/coffre/coffred.sock"
    }

    /// A client with the right assertions for this invocation: the file's token, or one minted
    /// per request with the development issuer key.
    func client() throws(ClientError) -> VaultClient {
        VaultClient(socketPath: socketPath, assertion: try assertionSource())
    }

    private func assertionSource() throws(ClientError) -> AssertionSource? {
        if let assertion {
            guard let text = try? String(contentsOfFile: assertion, encoding: .utf8) else {
                throw ClientError(
                    code: "assertion_unreadable", message: "cannot read the assertion file \(assertion)", exitCode: ExitStatus.notFound)
            }
            return .token(text.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        guard let spec = try actorSpec() else { return nil }
        let arena: SecureArena
        do { arena = try SecureArena(slotCount: 4) } catch {
            throw ClientError(
                code: "locked_memory", message: "cannot allocate locked memory for the issuer key", exitCode: ExitStatus.serverFailure)
        }
        let key: Ed25519SigningKey
        do {
            key = try IssuerKey.load(socketPath: socketPath, environment: ProcessInfo.processInfo.environment, arena: arena)
        } catch {
            // No key beside a socket that is not there either: the daemon is what is missing.
            if access(socketPath, F_OK) != 0 {
                throw ClientError(
                    code: "socket_unreachable",
                    message: "no daemon socket at \(socketPath); start coffred (make run) or pass --socket / COFFRE_SOCKET",
                    exitCode: ExitStatus.unavailable)
            }
            throw error
        }
        let issuer = ProcessInfo.processInfo.environment["COFFRE_ISSUER_ID"] ?? "dev"
        return .minting(for: spec, mode: try accessMode(), reason: reason, issuer: issuer, key: key)
    }

    /// With `--assertion FILE` and no `--patient`: the patient the assertion names (its subject
    /// for a patient, the represented patient for a representative). The daemon verifies the
    /// assertion; this only reads which dossier it is about.
    func assertionPatient() -> String? {
        guard let assertion, let token = try? String(contentsOfFile: assertion, encoding: .utf8) else { return nil }
        let parts = token.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ".")
        guard parts.count == 3, let payload = Base64URL.decode(String(parts[1])),
            let claims = try? JSONDecoder().decode(AssertionClaims.self, from: Data(payload))
        else { return nil }
        switch claims.role {
        case .patient: return claims.sub
        case .representative: return claims.patient
        case .professional: return nil
        }
    }

    func accessMode() throws(ClientError) -> AccessMode {
        guard let parsed = AccessMode(rawValue: mode) else {
            throw ClientError(code: "invalid_mode", message: "--mode is normal, bris_de_glace or centre_15", exitCode: ExitStatus.usage)
        }
        return parsed
    }

    func actorSpec() throws(ClientError) -> ActorSpec? {
        try actor.map { (text) throws(ClientError) in try ActorSpec(parsing: text) }
    }

    /// The dossier this command works on: `--patient`, else the acting patient's own.
    func patientINS() throws(ClientError) -> INS {
        let own = try actorSpec()?.defaultPatient ?? assertionPatient()
        guard let text = patient ?? own else {
            throw ClientError(
                code: "patient_missing", message: "say whose dossier with --patient INS (or act as the patient with --as patient:INS)",
                exitCode: ExitStatus.usage)
        }
        guard let ins = INS(text) else {
            throw ClientError(
                code: ErrorCode.invalidINS.rawValue,
                message: "\(text.count) characters given; an INS is 15: the NIR and its key 97 − (NIR mod 97)",
                exitCode: ExitStatus.invalidRequest)
        }
        return ins
    }
}
