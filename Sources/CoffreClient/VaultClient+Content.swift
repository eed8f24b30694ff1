#if canImport(Glibc)
    import Glibc
#endif
public import CoffreAPI
import CoffreCrypto
public import CoffreDomain
import AsyncHTTPClient
import Foundation
public import NIOCore
import NIOHTTP1

/// Document content: stored from a file, fetched to one, streamed in bounded memory.
extension VaultClient {
    /// Streams the file at `path` into the dossier, as a new document or as a new version of
    /// `replacing`.
    public func putDocument(
        _ ins: INS, path: String, upload: Upload, replacing: DocumentID? = nil, progress: (@Sendable (Int) -> Void)? = nil
    ) async throws(ClientError) -> DocumentView {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw ClientError(
                code: "input_unreadable", message: "cannot read \(path): \(String(cString: strerror(errno)))", exitCode: ExitStatus.notFound
            )
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            throw ClientError(code: "input_unreadable", message: "\(path) is not a regular file", exitCode: ExitStatus.notFound)
        }
        let route = replacing.map { "/v1/patients/\(ins.value)/documents/\($0.value)/replace" } ?? "/v1/patients/\(ins.value)/documents"
        var request = try makeRequest(.POST, route)
        if let mediaType = upload.mediaType { request.headers.replaceOrAdd(name: "Content-Type", value: mediaType) }
        if let documentClass = upload.documentClass { request.headers.add(name: CoffreHeader.documentClass, value: documentClass.rawValue) }
        if let title = upload.title {
            request.headers.add(
                name: CoffreHeader.title, value: title.addingPercentEncoding(withAllowedCharacters: Self.unreservedASCII) ?? "")
        }
        if let typeCode = upload.typeCode { request.headers.add(name: CoffreHeader.typeCode, value: typeCode) }
        if let careDate = upload.careDate { request.headers.add(name: CoffreHeader.careDate, value: careDate.value) }
        let hidden = [upload.hiddenFromPatient ? "patient" : nil, upload.hiddenFromRepresentatives ? "representatives" : nil].compactMap {
            $0
        }
        if !hidden.isEmpty { request.headers.add(name: CoffreHeader.hiddenFrom, value: hidden.joined(separator: ",")) }
        request.body = .stream(FileChunks(fd: fd, chunkSize: 256 * 1024, progress: progress), length: .known(Int64(info.st_size)))
        let response = try await send(request)
        return try await decode(response)
    }

    /// Streams a document's content into `sink`, checking its length and SHA-256 against what
    /// the daemon recorded. Returns the document's id, size and hash.
    /// `progress`, if given, is called once the answer's head arrives, with the content's length,
    /// and returns what to call with each chunk's size (one request: no metadata call first).
    public func fetchContent(
        _ ins: INS, id: DocumentID, into sink: (ByteBuffer) throws -> Void,
        progress: ((_ expectedLength: Int64?) -> (@Sendable (Int) -> Void)?)? = nil
    ) async throws(ClientError) -> (size: Int64, sha256: String) {
        let response = try await send(try makeRequest(.GET, "/v1/patients/\(ins.value)/documents/\(id.value)/content"))
        guard response.status == .ok else { throw await problem(from: response) }
        let expectedHash = response.headers.first(name: CoffreHeader.contentSHA256) ?? ""
        let expectedLength = response.headers.first(name: "Content-Length").flatMap(Int64.init)
        let progress = progress?(expectedLength)
        // A large document is hashed on a thread of its own while this one writes it out.
        let background = (expectedLength ?? 0) >= BackgroundHasher.threshold ? BackgroundHasher.onOwnQueue() : nil
        let hasher = SHA256Hasher()  // used when `background` is nil
        var received: Int64 = 0
        do {
            for try await buffer in response.body {
                if let background {
                    await background.update(RetainedBytes(buffer) { $0.withUnsafeReadableBytes($1) }, count: buffer.readableBytes)
                } else {
                    buffer.withUnsafeReadableBytes { hasher.update($0) }
                }
                received += Int64(buffer.readableBytes)
                try sink(buffer)
                progress?(buffer.readableBytes)
            }
        } catch let error as ClientError {
            throw error  // the sink failed to write
        } catch {
            // The daemon authenticates every record before sending it, and stops the stream
            // short of Content-Length when one fails: what arrived is a true prefix, and is
            // refused whole.
            throw ClientError(
                code: "integrity_error",
                message:
                    "the content stream stopped early: the stored document failed its integrity check (or the daemon stopped); the output is incomplete and was discarded",
                exitCode: ExitStatus.integrity)
        }
        let digest = Hex.encode(await background?.finalize() ?? hasher.finalize())
        guard received == expectedLength ?? received, digest == expectedHash else {
            throw ClientError(
                code: "integrity_error", message: "the content received does not match the document's recorded length and SHA-256",
                exitCode: ExitStatus.integrity)
        }
        return (received, digest)
    }
}
