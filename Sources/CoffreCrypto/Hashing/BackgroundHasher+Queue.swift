import Dispatch

extension BackgroundHasher {
    /// A hasher on a serial queue of its own (one per document, so that two large documents
    /// are hashed side by side): the daemon's stores and the client's fetches use it.
    public static func onOwnQueue() -> BackgroundHasher {
        let queue = DispatchQueue(label: "coffre.content-hash")
        return BackgroundHasher { queue.async(execute: $0) }
    }
}

/// Bytes that `owner` keeps alive and unchanged (a NIO buffer, say) while a hashing thread
/// reads them through `read`.
public struct RetainedBytes<Owner: Sendable>: HashableBytes {
    let owner: Owner
    let read: @Sendable (Owner, (UnsafeRawBufferPointer) -> Void) -> Void

    public init(_ owner: Owner, read: @escaping @Sendable (Owner, (UnsafeRawBufferPointer) -> Void) -> Void) {
        self.owner = owner
        self.read = read
    }

    public func withHashableBytes(_ body: (UnsafeRawBufferPointer) -> Void) { read(owner, body) }
}
