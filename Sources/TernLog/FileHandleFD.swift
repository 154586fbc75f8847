#if canImport(Glibc)
    import Glibc
#endif

/// Thin POSIX file helpers used by segments and indexes; each throws `LogError.io` with errno.
public enum PosixFile {
    static func open(_ path: String, create: Bool = true) throws -> Int32 {
        let flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0)
        let fd = Glibc.open(path, flags, 0o644)
        if fd < 0 { throw LogError.io("open \(path)", errno) }
        return fd
    }

    static func size(_ fd: Int32) throws -> Int64 {
        var st = stat()
        if fstat(fd, &st) != 0 { throw LogError.io("fstat", errno) }
        return Int64(st.st_size)
    }

    static func truncate(_ fd: Int32, to length: Int64) throws {
        if ftruncate(fd, off_t(length)) != 0 { throw LogError.io("ftruncate", errno) }
    }

    static func pwriteAll(_ fd: Int32, _ bytes: [UInt8], at offset: Int64) throws {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { raw in
                pwrite(fd, raw.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done))
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw LogError.io("pwrite", errno)
            }
            done += n
        }
    }

    /// Replaces `path` with `bytes` so a crash leaves either the old or the new contents. With
    /// `durable: false` nothing is fsynced (for files that can be rebuilt): on ext4 an fsync forces
    /// a journal commit that may wait for every dirty data block of the file system.
    public static func writeAtomically(_ path: String, _ bytes: [UInt8], durable: Bool = true) throws {
        let tmp = path + ".tmp"
        let fd = try open(tmp)
        defer { close(fd) }
        try truncate(fd, to: 0)
        try pwriteAll(fd, bytes, at: 0)
        if durable && fsync(fd) != 0 { throw LogError.io("fsync \(tmp)", errno) }
        if rename(tmp, path) != 0 { throw LogError.io("rename \(tmp)", errno) }
        if durable { try fsyncDirectory(String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)])) }
    }

    /// Makes the directory's entries (files created, renamed, removed) durable. A failed fsync
    /// throws `.io("fsync …")`: the entries may never reach the disk, and the caller's rule for a
    /// failed fsync applies (`DiskIO.syncDirectory` takes the log directory offline).
    static func fsyncDirectory(_ path: String) throws {
        let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { throw LogError.io("open \(path)", errno) }
        defer { close(fd) }
        while fsync(fd) != 0 {
            if errno == EINTR { continue }
            throw LogError.io("fsync \(path)", errno)
        }
    }
}
