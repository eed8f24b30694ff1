public import Foundation

/// A real `coffred --dev` on a private state directory and socket, for end-to-end tests.
public final class Daemon: @unchecked Sendable {
    // @unchecked: `process` is replaced only by `start`, and `extraArguments` only by a test
    // between a stop and a start, while no other task uses the daemon; ChildProcess itself is
    // Sendable.

    /// Its state directory (a fresh temporary directory unless one is given).
    public let state: TemporaryDirectory
    /// Extra flags (e.g. `--max-document-bytes`); a test may change them before a restart.
    public var extraArguments: [String]
    /// How the process is started: directly, or the way systemd would.
    public let launch: DaemonLaunch
    /// Whether the daemon runs with `--dev`. Without it, it runs as in production, with a
    /// configuration file pointing at the keys and trust directory a development run made.
    public let development: Bool
    /// Where the daemon's stderr (its log) goes.
    public var logPath: String { state.path + "-daemon.log" }
    /// The daemon's socket: in its state directory unless told otherwise.
    public let socketPath: String
    private var process: ChildProcess?

    /// Starts a daemon and, unless told not to, waits until it answers `/v1/health`.
    public init(
        state: TemporaryDirectory? = nil, arguments: [String] = [], launch: DaemonLaunch = DaemonLaunch(), waitUntilReady: Bool = true,
        development: Bool = true, socketPath: String? = nil
    ) async throws {
        let state = try state ?? TemporaryDirectory(prefix: "coffred")
        self.state = state
        self.socketPath = socketPath ?? state.path + "/coffred.sock"
        self.extraArguments = arguments
        self.launch = launch
        self.development = development
        try await start(waitUntilReady: waitUntilReady)
    }

    /// (Re)starts the daemon process on the same state directory.
    public func start(waitUntilReady: Bool = true) async throws {
        var arguments = ["--dev", "--state-dir", state.path, "--socket", socketPath]
        if !development {
            let configuration = state.path + "/coffred.json"
            let text = """
                {"stateDirectory": "\(state.path)", "socket": "\(socketPath)", "keyDirectories": ["\(state.path)/keys"],
                 "trustDirectory": "\(state.path)/trust"}
                """
            try text.write(toFile: configuration, atomically: true, encoding: .utf8)
            arguments = ["--config", configuration]
        }
        let command = launch.command(
            coffred: launch.coffred ?? Binaries.coffred, arguments: arguments + extraArguments, socketPath: socketPath)
        let environment = ProcessInfo.processInfo.environment.merging(launch.environment) { _, new in new }
        let process = try ChildProcess(command, environment: environment, logPath: logPath)
        self.process = process
        guard waitUntilReady else {
            // Socket activation: the socket appears before the daemon exists; wait for it only.
            for _ in 0..<200 where access(socketPath, F_OK) != 0 && process.isRunning {
                try await Task.sleep(for: .milliseconds(25))
            }
            return
        }
        // Up to a minute: the whole suite starts its daemons at once on CI's two cores.
        let answered = await eventually(every: .milliseconds(50)) {
            if let response = try? RawHTTP.exchange(socketPath: socketPath, request: RawHTTP.request("GET", "/v1/health")),
                response.status == 200
            {
                return true
            }
            return !process.isRunning
        }
        guard answered, process.isRunning else {
            throw DaemonFailed(log: (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "")
        }
    }

    /// Stops the daemon with SIGTERM (graceful) or SIGKILL, and waits for it to exit.
    public func stop(signal: Int32 = SIGTERM) async {
        guard let process, process.isRunning else { return }
        kill(process.pid, signal)
        await waitForExit()
    }

    /// Waits (up to 60 s: a loaded CI machine is slow to drain) for the process to exit; its exit
    /// status, or nil if it still runs.
    @discardableResult
    public func waitForExit() async -> Int32? {
        guard let process else { return nil }
        for _ in 0..<2400 where process.isRunning {
            try? await Task.sleep(for: .milliseconds(25))
        }
        return process.exitStatus
    }

    /// Sends `signal` without waiting (SIGHUP: reload).
    public func send(_ signal: Int32) {
        if let process, process.isRunning { kill(process.pid, signal) }
    }

    /// The daemon's process id (the shell's and systemd-socket-activate's too: both exec it).
    public var pid: Int32? { process?.pid }

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
            kill(process.pid, SIGKILL)
            _ = process.exitStatus
        }
        try? FileManager.default.removeItem(atPath: logPath)
    }

    /// Runs `coffre` against this daemon.
    public func coffre(_ arguments: [String], environment: [String: String] = [:]) async throws -> ProgramResult {
        try await Program.run(Binaries.coffre, ["--socket", socketPath] + arguments, environment: environment)
    }
}

/// How a test daemon is started.
public struct DaemonLaunch: Sendable {
    /// Variables added to coffred's environment (`NOTIFY_SOCKET`, `WATCHDOG_USEC`, …).
    public var environment: [String: String]
    /// Start under `systemd-socket-activate -l SOCKET`, which binds the socket, waits for the first
    /// connection, then execs coffred with the socket as fd 3 — what `coffred.socket` does. Only
    /// `environment` reaches coffred then, as under systemd.
    public var socketActivated: Bool
    /// Set `WATCHDOG_PID` to coffred's own pid, as systemd does (through a shell that execs).
    public var watchdogPID: Bool

    /// A command that confines coffred and then execs it (keeping the pid), such as
    /// `scripts/hardened-exec.py UNIT UID GID --`.
    public var wrapper: [String]
    /// The daemon binary to run, if not the build's (`Binaries.reachableByAnyUser` for a daemon
    /// that runs as another user).
    public var coffred: String?

    /// A launch; the defaults start coffred directly.
    public init(
        environment: [String: String] = [:], socketActivated: Bool = false, watchdogPID: Bool = false, wrapper: [String] = [],
        coffred: String? = nil
    ) {
        self.coffred = coffred
        self.environment = environment
        self.socketActivated = socketActivated
        self.watchdogPID = watchdogPID
        self.wrapper = wrapper
    }

    /// The command line that starts coffred this way.
    func command(coffred: String, arguments: [String], socketPath: String) -> [String] {
        var command = wrapper + [coffred] + arguments
        if socketActivated {
            unlink(socketPath)
            let variables = environment.keys.sorted().flatMap { ["-E", "\($0)=\(environment[$0]!)"] }
            command =
                ["/usr/bin/systemd-socket-activate", "-l", socketPath] + variables + (watchdogPID ? ["-E", "WATCHDOG_PID"] : []) + command
        }
        guard watchdogPID else { return command }
        // `exec` keeps the shell's pid, so $$ is the daemon's pid (systemd-socket-activate execs too).
        return ["/bin/sh", "-c", "WATCHDOG_PID=$$; export WATCHDOG_PID; exec \"$0\" \"$@\""] + command
    }
}

/// The daemon did not become ready; its log says why.
public struct DaemonFailed: Error, CustomStringConvertible {
    public var log: String
    public var description: String { "coffred did not become ready:\n\(log)" }
}
