public import Foundation

/// A real `coffred --dev` on a private state directory and socket, for end-to-end tests.
public final class Daemon: @unchecked Sendable {
    // @unchecked: `process` is set once in `start` before the daemon is shared, and only
    // read afterwards; Process itself is thread-safe for terminate/isRunning.

    /// Its state directory (a fresh temporary directory unless one is given).
    public let state: TemporaryDirectory
    /// Extra flags (e.g. `--max-document-bytes`).
    public let extraArguments: [String]
    /// Where the daemon's stderr (its log) goes.
    public var logPath: String { state.path + "-daemon.log" }
    public var socketPath: String { state.path + "/coffred.sock" }
    private var process: Process?

    /// Whether the daemon runs with `--dev`. Without it, it runs as in production, with a
    /// configuration file pointing at the keys and trust directory a development run made.
    public let development: Bool

    /// Starts a daemon and waits until it answers `/v1/health`.
    public init(state: TemporaryDirectory? = nil, arguments: [String] = [], development: Bool = true) async throws {
        self.state = try state ?? TemporaryDirectory(prefix: "coffred")
        self.extraArguments = arguments
        self.development = development
        try await start()
    }

    /// (Re)starts the daemon process on the same state directory.
    public func start() async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Binaries.coffred)
        if development {
            process.arguments = ["--dev", "--state-dir", state.path] + extraArguments
        } else {
            let configuration = state.path + "/coffred.json"
            let text = """
                {"stateDirectory": "\(state.path)", "socket": "\(socketPath)", "keyDirectories": ["\(state.path)/keys"],
                 "trustDirectory": "\(state.path)/trust"}
                """
            try text.write(toFile: configuration, atomically: true, encoding: .utf8)
            process.arguments = ["--config", configuration] + extraArguments
        }
        if !FileManager.default.fileExists(atPath: logPath) {
            _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        log.seekToEndOfFile()
        process.standardError = log
        process.standardOutput = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        self.process = process
        for _ in 0..<200 {
            if let response = try? RawHTTP.exchange(socketPath: socketPath, request: RawHTTP.request("GET", "/v1/health")),
                response.status == 200
            {
                return
            }
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw DaemonFailed(log: (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "")
    }

    /// Stops the daemon with SIGTERM (graceful) or SIGKILL, and waits for it to exit.
    public func stop(signal: Int32 = SIGTERM) async {
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, signal)
        for _ in 0..<400 where process.isRunning {
            try? await Task.sleep(for: .milliseconds(25))
        }
    }

    /// The daemon's process id.
    public var pid: Int32? { process?.processIdentifier }

    /// A field of `/proc/<pid>/status` in kibibytes (e.g. `VmHWM`, peak resident memory).
    public func memoryKiB(_ field: String) -> Int? {
        guard let pid, let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix(field + ":") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        }
        return nil
    }

    /// The daemon's log so far.
    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    deinit {
        if let process, process.isRunning {
            kill(process.processIdentifier, SIGKILL)
        }
        try? FileManager.default.removeItem(atPath: logPath)
    }

    /// Runs `coffre` against this daemon.
    public func coffre(_ arguments: [String], environment: [String: String] = [:]) async throws -> ProgramResult {
        try await Program.run(Binaries.coffre, ["--socket", socketPath] + arguments, environment: environment)
    }
}

/// The daemon did not become ready; its log says why.
public struct DaemonFailed: Error, CustomStringConvertible {
    public var log: String
    public var description: String { "coffred did not become ready:\n\(log)" }
}
