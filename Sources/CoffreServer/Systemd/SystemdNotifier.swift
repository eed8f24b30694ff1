#if canImport(Glibc)
    import Glibc
#endif
import CSystemd
import Dispatch
import Synchronization

/// Tells systemd about the daemon's state through libsystemd's `sd_notify`. Without
/// `NOTIFY_SOCKET` (not started by systemd) every call is a no-op.
///
/// `sd_notify` blocks while the manager's socket has a full queue (ten datagrams by default,
/// `net.unix.max_dgram_qlen`), and the daemon's tasks run on its event loops: a blocked send
/// would stop every connection of that loop. So messages are handed to one serial queue of their
/// own, in order, and the caller never waits; a watchdog ping is skipped while the previous one
/// is still waiting to be sent.
///
/// The `STATUS=` texts are for people: `systemctl status coffred` shows the latest one.
struct SystemdNotifier: Sendable {
    /// The one thread that may wait on systemd's socket; a process-wide resource, like the
    /// `NOTIFY_SOCKET` it writes to.
    private static let sender = DispatchQueue(label: "coffred.sd-notify")
    /// A watchdog ping is queued and not yet sent.
    private static let watchdogQueued = Atomic<Bool>(false)

    /// Start-up is done: keys loaded, index open, recovery done, socket listening.
    func ready(status: String) { send("READY=1\nSTATUS=\(status)") }
    /// A new human-readable status line.
    func status(_ text: String) { send("STATUS=\(text)") }
    /// Start-up is making progress and needs `time` more from now, whatever `TimeoutStartSec=`
    /// says (systemd ≥ 236); if it stops saying so, the start times out as usual.
    func extendStart(by time: Duration, status: String) {
        let microseconds = time.components.seconds * 1_000_000 + time.components.attoseconds / 1_000_000_000_000
        send("EXTEND_TIMEOUT_USEC=\(microseconds)\nSTATUS=\(status)")
    }
    /// SIGTERM received: the stop has begun.
    func stopping(status: String) { send("STOPPING=1\nSTATUS=\(status)") }
    /// SIGHUP received: reloading configuration. systemd ≥ 253 wants the monotonic time of the
    /// reload's start with it, to match the reload with the request that caused it.
    func reloading() {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let microseconds = Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1_000
        send("RELOADING=1\nMONOTONIC_USEC=\(microseconds)\nSTATUS=reloading the trust directory")
    }
    /// The reload is over (whether it succeeded or not, the daemon serves again).
    func reloaded(status: String) { send("READY=1\nSTATUS=\(status)") }
    /// The daemon is alive and healthy (`WatchdogSec=`).
    func watchdog() {
        guard Self.watchdogQueued.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else {
            return
        }
        Self.sender.async {
            _ = sd_notify(0, "WATCHDOG=1")
            Self.watchdogQueued.store(false, ordering: .releasing)
        }
    }

    /// The watchdog interval systemd expects pings within, if the watchdog is on for this
    /// process (`WATCHDOG_USEC`, and `WATCHDOG_PID` when set, names this process).
    static func watchdogInterval() -> Duration? {
        var microseconds: UInt64 = 0
        guard sd_watchdog_enabled(0, &microseconds) > 0, microseconds > 0 else { return nil }
        return .microseconds(Int64(clamping: microseconds))
    }

    private func send(_ message: String) {
        Self.sender.async { _ = sd_notify(0, message) }
    }
}
