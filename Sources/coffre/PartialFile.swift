#if canImport(Glibc)
    import Glibc
#endif
import CLinux
import CoffreClient
import Foundation
import NIOCore
import Synchronization

/// An output file written atomically: content goes to a hidden temporary file beside the
/// destination, which is renamed into place only once the whole document arrived and matched
/// its hash. A failed fetch leaves nothing behind.
final class PartialFile: Sendable {
    let destination: String
    let temporary: String
    let fd: Int32
    /// Bytes written, and the offset up to which their write-back was started.
    private let progress = Mutex<(written: Int64, writingBack: Int64)>((0, 0))
    /// Write-back is started for every this many bytes written: the disk works while the rest
    /// arrives, and the final `fsync` has little left to wait for.
    static let writeBackStep: Int64 = 1 << 20

    init(destination: String) throws(ClientError) {
        self.destination = destination
        // Beside the destination, so that the final rename stays on one file system.
        let slash = destination.lastIndex(of: "/")
        let directory = slash.map { $0 == destination.startIndex ? "/" : String(destination[..<$0]) } ?? "."
        let name = destination.split(separator: "/").last.map(String.init) ?? destination
        temporary = (directory == "/" ? "" : directory) + "/.\(name).coffre-partial-\(getpid())"
        fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw ClientError(
                code: "output_unwritable", message: "cannot create \(destination): \(String(cString: strerror(errno)))",
                exitCode: ExitStatus.cannotCreate)
        }
    }

    func write(_ buffer: ByteBuffer) throws {
        try buffer.withUnsafeReadableBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw ClientError(
                        code: "output_failed", message: "cannot write \(destination): \(String(cString: strerror(errno)))",
                        exitCode: ExitStatus.ioFailure)
                }
                offset += n
            }
        }
        let range = progress.withLock { progress -> (Int64, Int64)? in
            progress.written += Int64(buffer.readableBytes)
            guard progress.written - progress.writingBack >= Self.writeBackStep else { return nil }
            defer { progress.writingBack = progress.written }
            return (progress.writingBack, progress.written - progress.writingBack)
        }
        if let (start, count) = range { _ = coffre_start_writeback(fd, start, count) }
    }

    func commit() throws(ClientError) {
        guard fsync(fd) == 0, close(fd) == 0, rename(temporary, destination) == 0 else {
            let message = String(cString: strerror(errno))
            unlink(temporary)
            throw ClientError(code: "output_failed", message: "cannot write \(destination): \(message)", exitCode: ExitStatus.ioFailure)
        }
    }

    func discard() {
        close(fd)
        unlink(temporary)
    }
}

/// A media type from a file name's extension; the daemon stores it as given.
enum MediaType {
    static func guess(_ path: String) -> String {
        switch path.split(separator: ".").last?.lowercased() {
        case "pdf": "application/pdf"
        case "txt": "text/plain"
        case "xml": "application/xml"
        case "json": "application/json"
        case "jpg", "jpeg": "image/jpeg"
        case "png": "image/png"
        case "dcm": "application/dicom"
        case "html", "htm": "text/html"
        default: "application/octet-stream"
        }
    }
}
