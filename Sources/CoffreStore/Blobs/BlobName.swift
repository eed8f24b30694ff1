public import CoffreDomain

/// The name of one blob: its document and which encryption of it this is (0 for the first,
/// n after n re-encryptions by `coffre dossier rekey --reencrypt`).
///
/// A re-encrypted blob gets a new name, so that the old one stays whole until the index row
/// naming the new one is committed: a crash in between leaves an orphan, never a lost document.
public struct BlobName: Hashable, Sendable, CustomStringConvertible {
    public var document: DocumentID
    public var version: UInt32

    public init(_ document: DocumentID, version: UInt32 = 0) {
        self.document = document
        self.version = version
    }

    /// `<id>`, or `<id>.<version>` after a re-encryption: a single safe path component.
    public var fileName: String { version == 0 ? document.value : document.value + "." + String(version) }

    /// Parses a file name; anything else is nil and never becomes a path.
    public init?(fileName: String) {
        let parts = fileName.split(separator: ".", omittingEmptySubsequences: false)
        guard let first = parts.first, let id = DocumentID(String(first)) else { return nil }
        switch parts.count {
        case 1:
            self.init(id)
        case 2:
            guard let version = UInt32(parts[1]), version > 0, String(version) == parts[1] else { return nil }
            self.init(id, version: version)
        default:
            return nil
        }
    }

    public var description: String { fileName }
}
