import CoffreStore
public import Logging
public import NIOPosix
public import ServiceLifecycle

/// Pings systemd's watchdog (`WATCHDOG=1`) at half the interval `WatchdogSec=` sets, but only
/// after a health probe through the daemon's own request path succeeds.
///
/// A daemon whose event loops, concurrency pool or index are wedged fails the probe (or never
/// finishes it), stops pinging, and systemd restarts it. A timer that pinged unconditionally
/// would only prove that one task still runs.
public struct Watchdog: Service {
    let interval: Duration
    let probe: HealthProbe
    let listening: Latch
    let stopping: Latch
    let logger: Logger

    /// A watchdog for the daemon listening on `socketPath`, if systemd asked for one
    /// (`WATCHDOG_USEC`, and `WATCHDOG_PID` naming this process when set); nil otherwise.
    ///
    /// Nothing is probed or pinged before `listening` is set (the server accepts). Once
    /// `stopping` is set (SIGTERM), the listener is closed and the probe cannot pass: the
    /// watchdog then pings without probing while requests drain, a time the server bounds.
    public static func fromSystemd(
        socketPath: String, pool: NIOThreadPool, listening: Latch, stopping: Latch, logger: Logger
    ) -> Watchdog? {
        guard let interval = SystemdNotifier.watchdogInterval() else { return nil }
        // The probe must finish well within one ping period, or a slow answer would look healthy.
        let timeout = max(1, Int((interval / 4).components.seconds))
        return Watchdog(
            interval: interval, probe: HealthProbe(socketPath: socketPath, pool: pool, timeoutSeconds: timeout),
            listening: listening, stopping: stopping, logger: logger)
    }

    /// Probes and pings until its own graceful shutdown, which the service group triggers only
    /// after the server has drained (the watchdog is listed before it).
    public func run() async {
        await cancelWhenGracefulShutdown { await self.loop() }
    }

    private func loop() async {
        let notifier = SystemdNotifier()
        let period = interval / 2
        logger.info("watchdog on", metadata: ["watchdog.period": "\(period)"])
        var healthy = true
        while !Task.isCancelled {
            if !listening.isSet {
                // Starting: READY=1 has not been sent, and systemd's start timeout applies.
            } else if stopping.isSet {
                notifier.watchdog()
            } else if await probe.run() {
                notifier.watchdog()
                if !healthy {
                    logger.notice("health probe succeeds again; watchdog pings resume")
                }
                healthy = true
            } else if healthy {
                healthy = false
                logger.error(
                    "health probe failed: not pinging the watchdog; systemd restarts coffred if this lasts",
                    metadata: CoffreEvent.watchdogUnhealthy.metadata())
            }
            do {
                try await Task.sleep(for: period)
            } catch {
                return
            }
        }
    }
}
