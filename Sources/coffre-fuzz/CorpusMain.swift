#if !FUZZING
    import CoffreAPI
    import CoffreCrypto
    import CoffreDomain
    import Foundation

    /// Built without the fuzzer, `coffre-fuzz` writes the seed corpus (`make fuzz-corpus`) and
    /// replays inputs through a target (`coffre-fuzz replay TARGET FILE…`, to check a crash file
    /// or the corpus without libFuzzer).
    @main
    enum CorpusMain {
        static func main() throws {
            let arguments = CommandLine.arguments.dropFirst()
            switch arguments.first {
            case "corpus" where arguments.count == 2:
                try writeCorpus(into: arguments.last!)
            case "replay" where arguments.count >= 3:
                guard let target = FuzzTarget(rawValue: arguments[arguments.startIndex + 1]) else { usage() }
                for path in arguments.dropFirst(2) {
                    target.run(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
                }
                print("replayed \(arguments.count - 2) input(s) through \(target.rawValue): no crash")
            default:
                usage()
            }
        }

        static func usage() -> Never {
            FileHandle.standardError.write(
                Data("usage: coffre-fuzz corpus DIR | coffre-fuzz replay TARGET FILE…  (fuzzing: make fuzz)\n".utf8))
            exit(64)
        }

        static func writeCorpus(into directory: String) throws {
            var seeds: [FuzzTarget: [String: [UInt8]]] = [:]
            let claims = AssertionClaims(
                iss: "fuzz", sub: "184056312345658", role: .patient, software: "fuzz", iat: FuzzTarget.now - 10,
                exp: FuzzTarget.now + 290, jti: "seed")
            var professional = claims
            professional.sub = "10003123451"
            professional.role = .professional
            professional.profession = "10"
            professional.mode = .bris_de_glace
            professional.reason = "urgence vitale"
            seeds[.assertion] = [
                "patient": Array(try SignedAssertion.sign(claims, with: FuzzTarget.issuer).utf8),
                "professional": Array(try SignedAssertion.sign(professional, with: FuzzTarget.issuer).utf8),
                "claims": Array(try JSONEncoder().encode(professional)),
            ]
            seeds[.identifiers] = [
                "ins": Array("184056312345658".utf8), "ins-corsica": Array("2A0529934173285".utf8),
                "rpps": Array("10003123451".utf8), "finess": Array("750712184".utf8),
                "id": Array("0123456789abcdef0123456789abcdef".utf8), "date": Array("2026-02-29".utf8),
                "class": Array("CPT_REND".utf8), "base64": Array("eyJpc3MiOiJkZXYifQ".utf8),
            ]
            seeds[.json] = [
                "close": Array(#"{"delete":true,"death":false}"#.utf8), "hold": Array(#"{"reason":"contentieux"}"#.utf8),
                "retention": Array(#"{"after":"","limit":500,"dryRun":true}"#.utf8),
                "ack": Array(#"{"ids":["0123456789abcdef0123456789abcdef"]}"#.utf8),
                "preferences": Array(#"{"notifyEveryAccess":true,"maskNewDocuments":false}"#.utf8),
                "emergency": Array(#"{"brisDeGlace":false,"centre15":true,"masked":false}"#.utf8),
                "clock": Array(#"{"now":"2036-01-01T08:00:00Z"}"#.utf8), "rekey": Array(#"{"reencrypt":true}"#.utf8),
            ]
            seeds[.metadata] = [
                "title": Array("Compte%20rendu%20op%C3%A9ratoire".utf8), "type-code": Array("11502-2".utf8),
                "hidden-from": Array("patient, representatives".utf8), "media-type": Array("application/pdf".utf8),
            ]
            var blobs: [String: [UInt8]] = [:]
            for (name, size) in [("empty", 0), ("one-record", 100), ("three-records", 2 * 1024 + 10)] {
                var encryptor = try BlobEncryptor(
                    key: FuzzTarget.publicTestBlobKey, associatedData: FuzzTarget.blobAssociatedData, chunkSize: 1024,
                    arena: FuzzTarget.arena)
                var output = encryptor.header.encoded
                let plaintext = [UInt8](repeating: 0x42, count: size)
                plaintext.withUnsafeBytes { encryptor.append($0, to: &output) }
                _ = encryptor.finish(to: &output)
                blobs[name] = output
            }
            seeds[.blob] = blobs
            for (target, files) in seeds {
                let folder = directory + "/" + target.rawValue
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                for (name, bytes) in files {
                    try Data(bytes).write(to: URL(fileURLWithPath: folder + "/public-test-input-" + name))
                }
            }
            print("wrote \(seeds.values.reduce(0) { $0 + $1.count }) seeds under \(directory)")
        }
    }
#endif
