import CoffreCrypto
import Dispatch
import NIOCore

extension BackgroundHasher {
    /// A hasher on a serial queue of its own (one per document, so that two large documents
    /// are hashed side by side).
    static func onOwnQueue() -> BackgroundHasher {
        let queue = DispatchQueue(label: "coffre.content-hash")
        return BackgroundHasher { queue.async(execute: $0) }
    }
}

/// A NIO buffer's readable bytes, handed to a `BackgroundHasher` (the buffer keeps them alive).
struct HashedBuffer: HashableBytes {
    let buffer: ByteBuffer

    init(_ buffer: ByteBuffer) { self.buffer = buffer }

    func withHashableBytes(_ body: (UnsafeRawBufferPointer) -> Void) { buffer.withUnsafeReadableBytes { body($0) } }
}
