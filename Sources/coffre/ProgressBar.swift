import Foundation
import Synchronization

/// A one-line progress bar on stderr for long transfers, drawn only when stderr is a terminal.
///
/// No listed package draws progress bars without pulling in a console framework, and this is
/// all `coffre` needs: percentage, bytes and rate, redrawn at most ten times a second.
final class ProgressBar: Sendable {
    private struct State {
        var done: Int64 = 0
        var lastDraw: Double = 0
    }

    enum Unit { case bytes, items }

    private let total: Int64
    private let label: String
    private let unit: Unit
    private let start = Date().timeIntervalSince1970
    private let state = Mutex(State())

    /// A bar for `total` bytes, or nil when stderr is not a terminal or the transfer is small.
    static func make(total: Int64, label: String) -> ProgressBar? {
        guard isatty(STDERR_FILENO) == 1, total >= 1 << 20 else { return nil }
        return ProgressBar(total: total, label: label, unit: .bytes)
    }

    private init(total: Int64, label: String, unit: Unit) {
        self.total = total
        self.label = label
        self.unit = unit
    }

    func advance(_ bytes: Int) {
        let now = Date().timeIntervalSince1970
        let snapshot: Int64? = state.withLock { state in
            state.done += Int64(bytes)
            guard now - state.lastDraw >= 0.1 || state.done >= total else { return nil }
            state.lastDraw = now
            return state.done
        }
        if let snapshot { draw(snapshot, now: now) }
    }

    /// Moves the bar to `done` items (for progress reported as totals so far).
    func advance(to done: Int) {
        let delta = state.withLock { Int(Int64(done) - $0.done) }
        if delta > 0 { advance(delta) }
    }

    /// Whether a bar would be drawn at all (stderr is a terminal).
    static var isAvailable: Bool { isatty(STDERR_FILENO) == 1 }

    /// A bar counting items rather than bytes (the retention run), or nil off a terminal.
    static func make(count: Int, label: String) -> ProgressBar? {
        guard isatty(STDERR_FILENO) == 1, count > 0 else { return nil }
        return ProgressBar(total: Int64(count), label: label, unit: .items)
    }

    /// The bar's `advance` as a callback, or nil without a bar.
    static func callback(_ bar: ProgressBar?) -> (@Sendable (Int) -> Void)? {
        guard let bar else { return nil }
        return { bytes in bar.advance(bytes) }
    }

    func finish() {
        Output.write(Data("\n".utf8), to: .standardError)
    }

    private func draw(_ done: Int64, now: Double) {
        let fraction = total > 0 ? min(1, Double(done) / Double(total)) : 1
        let width = 30
        let filled = Int(fraction * Double(width))
        let rate = Double(done) / max(now - start, 0.001)
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let line: String
        switch unit {
        case .bytes:
            line = String(
                format: "\r%@ [%@] %3d%%  %@ / %@  %@/s ", label, bar, Int(fraction * 100), Output.byteCount(done), Output.byteCount(total),
                Output.byteCount(Int64(rate)))
        case .items:
            line = String(format: "\r%@ [%@] %3d%%  %lld / %lld  %.0f/s ", label, bar, Int(fraction * 100), done, total, rate)
        }
        Output.write(Data(line.utf8), to: .standardError)
    }
}

/// A bar drawn once the total is known: the daemon says how much there is to do with its first
/// progress report (`coffre admin verify`).
final class LateProgressBar: Sendable {
    private let label: String
    private let bar = Mutex<ProgressBar?>(nil)

    init(label: String) { self.label = label }

    @Sendable func update(done: Int, total: Int) {
        let current: ProgressBar? = bar.withLock { bar in
            if bar == nil { bar = ProgressBar.make(count: total, label: label) }
            return bar
        }
        current?.advance(to: done)
    }

    func finish() { bar.withLock { $0?.finish() } }
}
