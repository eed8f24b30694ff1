#if canImport(Glibc)
    import Glibc
#endif
import Foundation
import Synchronization

/// A process started with `posix_spawn` and reaped with `waitpid(WNOHANG)`, for daemons and
/// every program a test runs.
///
/// Foundation's `Process` is avoided twice over:
/// - it watches a descriptor it passes to the child and takes the child for dead once that
///   descriptor is closed, then blocks its only monitoring thread in `waitpid`.
///   `systemd-socket-activate` closes every descriptor it inherits, as systemd's activation
///   does: under `Process` that froze every other child's termination in the test run;
/// - on Linux, `Process.run()` reads past the end of `readdir`'s buffer while it lists
///   `/proc/self/fd`, and the test run crashed with SIGSEGV in it (swift-corelibs-foundation
///   #5472, Swift 6.3.1): the more descriptors the test process holds, the likelier.
final class ChildProcess: Sendable {
    /// The child's pid.
    let pid: Int32
    private let status = Mutex<Int32?>(nil)

    /// Starts `arguments[0]` (an absolute path) with `environment`, stdin from /dev/null and
    /// stdout and stderr appended to `logPath`.
    convenience init(_ arguments: [String], environment: [String: String], logPath: String) throws {
        try self.init(arguments, environment: environment, stdin: "/dev/null", stdout: logPath, stderr: nil, appending: true)
    }

    /// Starts `arguments[0]` (an absolute path) with `environment`, stdin read from the file
    /// `stdin`, stdout written to the file `stdout` and stderr to `stderr` (or with stdout when
    /// nil), created if absent, appended to or truncated.
    init(_ arguments: [String], environment: [String: String], stdin: String, stdout: String, stderr: String?, appending: Bool) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        let output = O_WRONLY | O_CREAT | (appending ? O_APPEND : O_TRUNC)
        posix_spawn_file_actions_addopen(&actions, 0, stdin, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, output, 0o600)
        if let stderr {
            posix_spawn_file_actions_addopen(&actions, 2, stderr, output, 0o600)
        } else {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, arguments[0], &actions, nil, argv, envp)
        guard result == 0 else { throw POSIXError(POSIXErrorCode(rawValue: result) ?? .EIO) }
        self.pid = pid
    }

    /// The exit status once the child has exited (128 + signal if a signal ended it), else nil.
    var exitStatus: Int32? {
        status.withLock { status in
            if status == nil {
                var raw: Int32 = 0
                if waitpid(pid, &raw, WNOHANG) == pid {
                    let signal = raw & 0x7f
                    status = signal == 0 ? (raw >> 8) & 0xff : 128 + signal
                }
            }
            return status
        }
    }

    /// Whether the child still runs.
    var isRunning: Bool { exitStatus == nil }
}
