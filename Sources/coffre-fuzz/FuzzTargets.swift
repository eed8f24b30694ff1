import CoffreAPI
import CoffreCrypto
import CoffreDomain
import Foundation

/// The parsers that see client (or disk) bytes, each as one libFuzzer target. A target must
/// never crash, whatever the input: it may only accept or refuse.
///
/// The keys here are fixed and public on purpose: the corpus holds assertions and blobs made
/// with them, so that the fuzzer starts from inputs that get past the signature and the
/// authentication tag, and mutates the parsing behind them.
enum FuzzTarget: String, CaseIterable {
    /// `Authorization: Coffre-Assertion v1.<claims>.<signature>`: split, base64url, JSON claims,
    /// issuer look-up, signature, lifetimes, the actor the claims name.
    case assertion
    /// Identifiers from paths, headers and bodies: INS, RPPS, FINESS, document and dossier ids,
    /// dates of care, professions, document classes, blob file names.
    case identifiers
    /// The JSON bodies of every request that has one.
    case json
    /// A blob as read from disk: the header, then every record through the stream decryptor.
    case blob
    /// An upload's `Coffre-*` metadata headers: title (percent-encoded), type code, hidden-from
    /// flags, media type (the rest are identifiers).
    case metadata

    func run(_ bytes: [UInt8]) {
        switch self {
        case .assertion: Self.assertion(bytes)
        case .identifiers: Self.identifiers(bytes)
        case .json: Self.json(bytes)
        case .blob: Self.blob(bytes)
        case .metadata: Self.metadata(bytes)
        }
    }

    // MARK: Fixed, public test keys

    static let arena = try! SecureArena(slotCount: 16)
    static let publicTestIssuerSeed = [UInt8](repeating: 0x5A, count: 32)
    static let issuer = try! Ed25519SigningKey(seed: publicTestIssuerSeed, in: arena)
    static let trust = TrustStore(["fuzz": TrustedIssuer(key: issuer.publicKey, scope: .everything)])
    static let publicTestBlobKey = try! SymmetricKey.copying([UInt8](repeating: 0xA5, count: 32), in: arena)
    static let blobAssociatedData = Array("0123456789abcdef0123456789abcdef".utf8)
    /// Assertion times are checked against this fixed "now", so the corpus never expires.
    static let now: Int64 = 1_800_000_000

    // MARK: Targets

    static func assertion(_ bytes: [UInt8]) {
        let token = String(decoding: bytes, as: UTF8.self)
        _ = try? SignedAssertion.verify(token, trust: trust, now: now)
        if let claims = try? JSONDecoder().decode(AssertionClaims.self, from: Data(bytes)) {
            _ = try? claims.actor()
        }
    }

    static func metadata(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        if let title = UploadFields.title(percentEncoded: text) {
            precondition(title.utf8.count <= UploadFields.maxTitleBytes, "a title over the limit was accepted")
        }
        if UploadFields.isValidTypeCode(text) { precondition(!text.contains("/") && !text.contains(" ")) }
        _ = UploadFields.hiddenFrom(text)
        _ = UploadFields.isValidMediaType(text)
    }

    static func identifiers(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        _ = INS(text)
        _ = RPPS(text)
        _ = FINESS(text)
        _ = DocumentID(text)
        _ = DossierID(text)
        _ = CareDate(text)
        _ = Profession(text)
        _ = DocumentClass(rawValue: text)
        _ = DocumentStatus(rawValue: text)
        _ = Hex.decode(text)
        _ = Base64URL.decode(text)
        _ = TrustStore.isValidIssuerID(text)
    }

    static func json(_ bytes: [UInt8]) {
        let data = Data(bytes)
        let decoder = JSONDecoder()
        _ = try? decoder.decode(CreateDossierRequest.self, from: data)
        _ = try? decoder.decode(CloseDossierRequest.self, from: data)
        _ = try? decoder.decode(HoldRequest.self, from: data)
        _ = try? decoder.decode(RetentionRunRequest.self, from: data)
        _ = try? decoder.decode(AcknowledgeRequest.self, from: data)
        _ = try? decoder.decode(AttendingDoctorRequest.self, from: data)
        _ = try? decoder.decode(PreferencesRequest.self, from: data)
        _ = try? decoder.decode(EmergencyRequest.self, from: data)
        _ = try? decoder.decode(SetClockRequest.self, from: data)
        _ = try? decoder.decode(RekeyRequest.self, from: data)
    }

    static func blob(_ bytes: [UInt8]) {
        let headerCount = BlobHeader.byteCount
        guard
            var decryptor = try? BlobDecryptor(
                header: bytes.prefix(headerCount), key: publicTestBlobKey, associatedData: blobAssociatedData, arena: arena)
        else { return }
        var offset = headerCount
        var output: [UInt8] = []
        let recordSize = decryptor.header.recordSize
        while offset < bytes.count {
            let end = min(offset + recordSize, bytes.count)
            let failed = bytes[offset..<end].withUnsafeBytes { record in
                do {
                    try decryptor.open(record: record, isLast: end == bytes.count, to: &output)
                    return false
                } catch {
                    return true
                }
            }
            if failed { return }
            output.removeAll(keepingCapacity: true)
            offset = end
        }
        _ = try? decryptor.finish()
    }
}
