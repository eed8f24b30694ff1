#if canImport(Glibc)
    import Glibc
#endif
import NIOCore

/// A file read as a sequence of buffers, for streaming uploads in bounded memory.
struct FileChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let fd: Int32
    let chunkSize: Int
    let progress: (@Sendable (Int) -> Void)?

    struct AsyncIterator: AsyncIteratorProtocol {
        let fd: Int32
        let chunkSize: Int
        let progress: (@Sendable (Int) -> Void)?

        mutating func next() async throws -> ByteBuffer? {
            var buffer = ByteBuffer()
            buffer.reserveCapacity(chunkSize)
            let n = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: chunkSize) { raw in
                var total = 0
                while total < chunkSize {
                    let got = read(fd, raw.baseAddress! + total, chunkSize - total)
                    if got < 0 && errno == EINTR { continue }
                    if got <= 0 { break }
                    total += got
                }
                return total
            }
            if n == 0 { return nil }
            progress?(n)
            return buffer
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(fd: fd, chunkSize: chunkSize, progress: progress) }
}
