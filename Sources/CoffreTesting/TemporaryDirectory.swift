import Foundation

/// A fresh directory under the system's temporary directory, removed when released.
public final class TemporaryDirectory: Sendable {
    /// Its absolute path (short, so that a socket path inside it fits in `sun_path`).
    public let path: String

    public init(prefix: String = "coffre") throws {
        var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
        guard let result = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw CocoaError(.fileWriteUnknown)
        }
        path = String(cString: result)
    }

    /// Every regular file below the directory, recursively (not sockets, not directories).
    public func allFiles() -> [String] {
        guard let enumerator = FileManager.default.enumerator(atPath: path) else { return [] }
        var files: [String] = []
        while let relative = enumerator.nextObject() as? String {
            let full = path + "/" + relative
            var info = stat()
            if lstat(full, &info) == 0, info.st_mode & S_IFMT == S_IFREG {
                files.append(full)
            }
        }
        return files
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}
