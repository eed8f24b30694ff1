#if canImport(Glibc)
    import Glibc
#endif
import CoffreDomain

/// The few system calls the stores need, with errors turned into `StoreError`.
enum POSIX {
    static func error(_ message: String, _ code: Int32) -> StoreError {
        switch code {
        case ENOSPC, EDQUOT: StoreError(.noSpace, "the disk is full: " + message, errno: code)
        default: StoreError(.io, message, errno: code)
        }
    }

    static func open(_ path: String, flags: Int32, mode: mode_t) throws(StoreError) -> Int32 {
        while true {
            let fd = Glibc.open(path, flags, mode)
            if fd >= 0 { return fd }
            if errno == EINTR { continue }
            throw error("cannot open a file in the state directory", errno)
        }
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws(StoreError) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                throw error("write of a blob failed", errno)
            }
            offset += n
        }
    }

    static func makeDirectory(_ path: String) throws(StoreError) {
        if mkdir(path, 0o700) != 0 && errno != EEXIST {
            throw error("cannot create directory \(path)", errno)
        }
    }

    static func syncDirectory(_ path: String) throws(StoreError) {
        let fd = try open(path, flags: O_RDONLY | O_DIRECTORY | O_CLOEXEC, mode: 0)
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw error("fsync of a directory failed", errno) }
    }

    static func unlinkIfPresent(_ path: String) throws(StoreError) {
        if unlink(path) != 0 && errno != ENOENT {
            throw error("cannot remove a file in the state directory", errno)
        }
    }

    /// Calls `body` with each entry's name (not `.` or `..`), as the bytes `readdir` returns
    /// (valid only during the call), and whether it is a directory. A failed read of the
    /// directory throws rather than look like its end.
    static func forEachEntry(of path: String, _ body: (_ name: UnsafeRawBufferPointer, _ isDirectory: Bool) -> Void)
        throws(StoreError)
    {
        guard let directory = opendir(path) else { throw error("cannot list directory \(path)", errno) }
        defer { closedir(directory) }
        while true {
            errno = 0
            guard let entry = readdir(directory) else {
                if errno != 0 { throw error("cannot list directory \(path)", errno) }
                return
            }
            let isDirectory = entry.pointee.d_type == UInt8(DT_DIR)
            withUnsafeBytes(of: &entry.pointee.d_name) { raw in
                let name = UnsafeRawBufferPointer(
                    start: raw.baseAddress, count: strlen(raw.baseAddress!.assumingMemoryBound(to: CChar.self)))
                if !(name.elementsEqual(".".utf8) || name.elementsEqual("..".utf8)) { body(name, isDirectory) }
            }
        }
    }

    static func listDirectory(_ path: String) throws(StoreError) -> [String] {
        var names: [String] = []
        try forEachEntry(of: path) { name, _ in names.append(String(decoding: name, as: UTF8.self)) }
        return names
    }
}
