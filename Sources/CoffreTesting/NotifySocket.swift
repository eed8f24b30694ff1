import Foundation
import Synchronization

/// A datagram socket standing in for systemd's `NOTIFY_SOCKET`: pass `path` to the daemon in
/// that variable and read what it sent through `sd_notify` (`READY=1`, `STATUS=…`, …).
public final class NotifySocket: Sendable {
    /// The socket's path, for `NOTIFY_SOCKET`.
    public let path: String
    private let descriptor: Int32
    private let received = Mutex<[String]>([])
    private let directory: TemporaryDirectory?

    /// Binds a fresh socket in a private temporary directory.
    public convenience init() throws {
        let directory = try TemporaryDirectory(prefix: "coffre-notify")
        try self.init(path: directory.path + "/notify", directory: directory)
    }

    /// Binds a fresh socket at `path` (e.g. `/run/systemd/journal/socket`, to read what
    /// `sd_journal_send` sends).
    public convenience init(path: String) throws {
        try self.init(path: path, directory: nil)
    }

    private init(path: String, directory: TemporaryDirectory?) throws {
        self.path = path
        self.directory = directory
        unlink(path)
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        let bound: Int32
        do {
            bound = try UnixSocketAddress.with(path) { bind(fd, $0, $1) }
        } catch {
            close(fd)
            throw error
        }
        guard bound == 0 else {
            close(fd)
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
        descriptor = fd
    }

    /// Every message received so far, oldest first (each one or more `KEY=value` lines).
    public func messages() -> [String] {
        received.withLock { messages in
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = recv(descriptor, &buffer, buffer.count, 0)
                if n <= 0 { break }
                messages.append(String(decoding: buffer[0..<n], as: UTF8.self))
            }
            return messages
        }
    }

    /// Every `KEY=value` line received so far, in order.
    public func lines() -> [String] {
        messages().flatMap { $0.split(separator: "\n").map(String.init) }
    }

    /// Waits until a line equal to `line` (e.g. `READY=1`) arrives; false after `timeout`.
    public func waitFor(_ line: String, timeout: Duration = .seconds(20)) async -> Bool {
        await waitUntil(timeout: timeout) { $0.contains(line) }
    }

    /// Waits until `condition` holds for the lines received; false after `timeout`.
    public func waitUntil(timeout: Duration = .seconds(20), _ condition: ([String]) -> Bool) async -> Bool {
        await eventually(timeout: timeout, every: .milliseconds(20)) { condition(lines()) }
    }

    deinit {
        close(descriptor)
        unlink(path)
    }
}
