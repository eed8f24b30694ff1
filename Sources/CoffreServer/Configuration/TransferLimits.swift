/// What keeps slow or many clients from holding the daemon's memory and key slots: a minimum
/// rate for transfers in progress, and caps on transfers in flight.
public struct TransferLimits: Sendable, Equatable {
    /// A transfer slower than this, judged over `rateWindow` while the daemon waits for its
    /// client, is closed; 0 turns the rule off.
    public var minimumBytesPerSecond: Int
    public var rateWindow: Duration
    /// Uploads and downloads of content in flight for the whole daemon; nil: a quarter of the key
    /// arena's slots (a transfer holds three), so that transfers alone never fill it.
    public var maxInFlight: Int?
    /// In flight for one caller (one person through one issuer).
    public var maxPerCaller: Int

    public init(minimumBytesPerSecond: Int = 1024, rateWindow: Duration = .seconds(10), maxInFlight: Int? = nil, maxPerCaller: Int = 16) {
        self.minimumBytesPerSecond = minimumBytesPerSecond
        self.rateWindow = rateWindow
        self.maxInFlight = maxInFlight
        self.maxPerCaller = maxPerCaller
    }

    /// The daemon's cap with an arena of `arenaSlots`.
    func maxInFlight(arenaSlots: Int) -> Int { maxInFlight ?? max(1, arenaSlots / 4) }
}
