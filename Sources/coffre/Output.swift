// Output conventions of `coffre`, written down once:
// - results go to stdout: plain text for people, or one JSON document with --json;
// - messages and errors go to stderr, prefixed "coffre: ", with a hint on how to fix;
// - with --json, an error is also a JSON object on stderr: {"code": …, "message": …};
// - the exit code says what kind of failure it was (see ExitStatus in CoffreClient).
import CoffreAPI
import CoffreClient
import Foundation

enum Output {
    static func json<T: Encodable>(_ value: T) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(value) else { return }
        write(data + Data("\n".utf8))
    }

    /// One compact JSON document per line, for streams (`trace --follow --json`).
    static func jsonLine<T: Encodable>(_ value: T) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(value) else { return }
        write(data + Data("\n".utf8))
    }

    static func line(_ text: String) {
        write(Data((text + "\n").utf8))
    }

    static func message(_ text: String) {
        write(Data(("coffre: " + text + "\n").utf8), to: .standardError)
    }

    static func error(_ error: ClientError, json: Bool) {
        if json {
            struct ErrorJSON: Encodable { var code: String; var message: String }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            if let data = try? encoder.encode(ErrorJSON(code: error.code, message: error.message)) {
                write(data + Data("\n".utf8), to: .standardError)
                return
            }
        }
        message("error: \(error.message) [\(error.code)]")
    }

    /// Writes to stdout (or stderr). A reader that went away (`coffre trace | head`) ends the
    /// command quietly with status 74, rather than the crash Foundation's non-throwing write
    /// would give on EPIPE.
    static func write(_ data: Data, to handle: FileHandle = .standardOutput) {
        do {
            try handle.write(contentsOf: data)
        } catch {
            exit(ExitStatus.ioFailure)
        }
    }

    /// `key: value` lines, aligned.
    static func fields(_ pairs: [(String, String?)]) {
        let width = pairs.map(\.0.count).max() ?? 0
        for (key, value) in pairs {
            guard let value else { continue }
            line(key.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + value)
        }
    }

    static func byteCount(_ bytes: Int64) -> String {
        ByteCountFormatter.string(fromByteCount: bytes, countStyle: .binary)
    }
}
