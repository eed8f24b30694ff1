#if canImport(Glibc)
    import Glibc
#endif
import CSystemd
import CoffreStore
public import Logging

/// Sends log entries to the systemd journal as structured fields, through libsystemd's
/// `sd_journal_sendv`.
///
/// Fields: `MESSAGE`, `PRIORITY` (syslog levels), `SYSLOG_IDENTIFIER`, `CODE_FILE`/`CODE_LINE`/
/// `CODE_FUNC`, `MESSAGE_ID` when the entry carries a `CoffreEvent`, and every metadata key as an
/// upper-case field prefixed with `COFFRE_` (`document.id` → `COFFRE_DOCUMENT_ID`), so that
/// `journalctl COFFRE_DOCUMENT_ID=…` finds every entry about one document. Metadata never holds
/// personal data (the code that logs makes sure of that); this handler adds none.
public struct JournalLogHandler: LogHandler {
    /// Written as `SYSLOG_IDENTIFIER`.
    public let identifier: String
    /// Entries below this level are dropped by `Logger` before they get here.
    public var logLevel: Logger.Level = .info
    /// Metadata attached to every entry of this logger.
    public var metadata: Logger.Metadata = [:]
    /// Task-local metadata, if any.
    public var metadataProvider: Logger.MetadataProvider?

    /// A handler writing entries as `identifier`.
    public init(identifier: String) {
        self.identifier = identifier
    }

    /// Metadata of this logger, by key.
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Sends one entry.
    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let own = event.metadata { merged.merge(own) { _, new in new } }
        if let error = event.error { merged["error"] = "\(error)" }
        var fields = [
            "MESSAGE=\(event.message)",
            "PRIORITY=\(Self.priority(event.level))",
            "SYSLOG_IDENTIFIER=\(identifier)",
            "CODE_FILE=\(event.file)",
            "CODE_LINE=\(event.line)",
            "CODE_FUNC=\(event.function)",
        ]
        if case .string(let name) = merged[CoffreEvent.metadataKey], let kind = CoffreEvent(rawValue: name) {
            fields.append("MESSAGE_ID=\(kind.messageID)")
        }
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
            fields.append("\(Self.fieldName(key))=\(value)")
        }
        Self.send(fields)
    }

    /// syslog priorities (journald's `PRIORITY`) for swift-log's levels.
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// A journal field name for a metadata key: `COFFRE_` and the key in upper case, with every
    /// character other than A–Z, 0–9 and `_` replaced by `_` (journald accepts nothing else).
    static func fieldName(_ key: String) -> String {
        let body = key.uppercased().unicodeScalars.map { scalar -> Character in
            ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar) ? Character(scalar) : "_"
        }
        return "COFFRE_" + String(body)
    }

    private static func send(_ fields: [String]) {
        // All fields in one buffer; the iovecs point into it only inside `withUnsafeMutableBytes`.
        var storage: [UInt8] = []
        var ranges: [Range<Int>] = []
        for field in fields {
            let start = storage.count
            storage.append(contentsOf: field.utf8)
            ranges.append(start..<storage.count)
        }
        storage.withUnsafeMutableBytes { raw in
            let vectors = ranges.map { iovec(iov_base: raw.baseAddress! + $0.lowerBound, iov_len: $0.count) }
            _ = sd_journal_sendv(vectors, Int32(vectors.count))
        }
    }
}

extension JournalLogHandler {
    /// Where the daemon's log goes.
    public enum Target: String, Sendable, CaseIterable {
        /// The journal when stderr is connected to it (systemd's `JOURNAL_STREAM`), else stderr.
        case auto
        /// Always the journal.
        case journal
        /// Always plain text on stderr (swift-log's `StreamLogHandler`).
        case stderr
    }

    /// Whether the journal should get the log, for `target`.
    public static func usesJournal(_ target: Target) -> Bool {
        switch target {
        case .journal: true
        case .stderr: false
        case .auto: stderrIsJournal()
        }
    }

    /// A log handler for `label` going where `target` says.
    public static func handler(label: String, target: Target) -> any LogHandler {
        usesJournal(target) ? JournalLogHandler(identifier: label) : StreamLogHandler.standardError(label: label)
    }

    /// Whether stderr is the stream systemd connected to the journal: `JOURNAL_STREAM` holds
    /// `DEVICE:INODE` of that stream, and stays set in children whose stderr is something else,
    /// so the descriptor itself must match (the check systemd's documentation prescribes).
    static func stderrIsJournal() -> Bool {
        guard let variable = getenv("JOURNAL_STREAM") else { return false }
        let parts = String(cString: variable).split(separator: ":")
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return false }
        var info = stat()
        guard fstat(STDERR_FILENO, &info) == 0 else { return false }
        return UInt64(info.st_dev) == device && UInt64(info.st_ino) == inode
    }
}
