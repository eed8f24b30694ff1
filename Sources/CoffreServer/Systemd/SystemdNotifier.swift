import CSystemd

/// Tells systemd about the daemon's state through libsystemd's `sd_notify`. Without
/// `NOTIFY_SOCKET` (not started by systemd) every call is a no-op.
struct SystemdNotifier: Sendable {
    func ready(status: String) { send("READY=1\nSTATUS=\(status)") }
    func status(_ text: String) { send("STATUS=\(text)") }
    func stopping() { send("STOPPING=1\nSTATUS=stopping") }

    private func send(_ message: String) {
        _ = sd_notify(0, message)
    }
}
