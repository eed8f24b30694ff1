#if canImport(Glibc)
    import Glibc
#endif
public import Foundation
import Synchronization

/// Where the built `coffred` and `coffre` are: `$COFFRE_BIN_DIR` (set by `make test`), else the
/// package's `.build/debug`.
public enum Binaries {
    public static var directory: String {
        if let directory = ProcessInfo.processInfo.environment["COFFRE_BIN_DIR"], !directory.isEmpty {
            return directory
        }
        return packageRoot + "/.build/debug"
    }

    /// The package's root directory (where `systemd/` and `docs/` are).
    public static var packageRoot: String {
        // Sources/CoffreTesting/Binaries.swift → package root
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    public static var coffred: String { directory + "/coffred" }
    public static var coffre: String { directory + "/coffre" }

    /// A directory holding `coffred` and `coffre` (with their resource bundles) that any user
    /// can reach: the build's own when every directory above it lets others through, else a
    /// copy made once per test process. A checkout may sit where only root may enter (a home
    /// directory of mode 0700), and some tests run the programs as another user.
    public static let reachableByAnyUser: String = {
        if isReachableByAnyUser(directory) { return directory }
        var template = Array("/tmp/coffre-bin-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else { return directory }
        let staged = String(cString: made)
        chmod(staged, 0o755)
        let resources = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".resources") }
        for name in ["coffred", "coffre"] + resources { copy(directory + "/" + name, to: staged + "/" + name) }
        atexit { removeStagedCopies() }
        stagedCopies.withLock { $0.append(staged) }
        return staged
    }()

    /// Whether every directory from `/` down to `path` lets others through (o+x).
    static func isReachableByAnyUser(_ path: String) -> Bool {
        var current = URL(fileURLWithPath: path).standardizedFileURL
        while true {
            var info = stat()
            guard stat(current.path, &info) == 0, info.st_mode & S_IXOTH != 0 else { return false }
            if current.path == "/" { return true }
            current.deleteLastPathComponent()
        }
    }

    /// Copies a file or a directory (recursively) so that others may read it, and enter or run
    /// what the source lets its owner enter or run. Files are written through descriptors opened
    /// with O_CLOEXEC: a program another test spawns meanwhile must not inherit one open for
    /// writing, or running the copy fails with ETXTBSY until that program has exec'd.
    private static func copy(_ source: String, to target: String) {
        var info = stat()
        guard lstat(source, &info) == 0 else { return }
        let executable = info.st_mode & S_IXUSR != 0
        if info.st_mode & S_IFMT == S_IFDIR {
            mkdir(target, 0o755)
            chmod(target, 0o755)
            for name in (try? FileManager.default.contentsOfDirectory(atPath: source)) ?? [] {
                copy(source + "/" + name, to: target + "/" + name)
            }
            return
        }
        guard info.st_mode & S_IFMT == S_IFREG, let bytes = FileManager.default.contents(atPath: source) else { return }
        let fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, executable ? 0o755 : 0o644)
        guard fd >= 0 else { return }
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if written <= 0 { break }
                offset += written
            }
        }
        fchmod(fd, executable ? 0o755 : 0o644)
        close(fd)
    }

    private static let stagedCopies = Mutex<[String]>([])

    private static func removeStagedCopies() {
        for path in stagedCopies.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: path) }
    }
}

/// The result of running a program to completion.
public struct ProgramResult: Sendable {
    public var status: Int32
    public var stdout: Data
    public var stderr: String

    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
}

/// Runs programs without blocking the cooperative thread pool: output goes to temporary files
/// (no pipe can fill up and stall the child), and the exit is polled (`ChildProcess`, not
/// Foundation's `Process`: see there why).
public enum Program {
    /// Runs `executable` (an absolute path) and returns its exit status (128 + signal if a
    /// signal ended it) and output.
    public static func run(
        _ executable: String, _ arguments: [String], environment: [String: String] = [:], stdin: String? = nil
    ) async throws -> ProgramResult {
        let scratch = try TemporaryDirectory(prefix: "coffre-run")
        let outPath = scratch.path + "/stdout"
        let errPath = scratch.path + "/stderr"
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "COFFRE_SOCKET")
        env.removeValue(forKey: "COFFRE_ISSUER_KEY")
        env.removeValue(forKey: "COFFRE_ISSUER_ID")
        for (key, value) in environment { env[key] = value }
        var inPath = "/dev/null"
        if let stdin {
            inPath = scratch.path + "/stdin"
            _ = FileManager.default.createFile(atPath: inPath, contents: Data(stdin.utf8))
        }
        let child = try ChildProcess(
            [executable] + arguments, environment: env, stdin: inPath, stdout: outPath, stderr: errPath, appending: false)
        // A program that never ends (a client looping on a bug) must fail its test, not hang the
        // whole suite: it is killed after two minutes.
        let deadline = ContinuousClock.now + .seconds(120)
        var status: Int32
        while true {
            if let exited = child.exitStatus {
                status = exited
                break
            }
            if ContinuousClock.now > deadline { kill(child.pid, SIGKILL) }
            try await Task.sleep(for: .milliseconds(5))
        }
        return ProgramResult(
            status: status,
            stdout: (try? Data(contentsOf: URL(fileURLWithPath: outPath))) ?? Data(),
            stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
    }
}
