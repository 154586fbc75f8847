/// Sparse offset index of one segment: entries (offset relative to the segment's base, byte
/// position in the .log file), each 8 bytes big-endian on disk, appended every
/// `log.index.interval.bytes` of log data.
///
/// Invariant: relative offsets and positions both strictly increase.
struct OffsetIndex {
    struct Entry: Equatable {
        var relativeOffset: UInt32
        var position: UInt32
    }

    private(set) var entries: [Entry] = []
    let fd: Int32
    let path: String

    init(path: String) throws {
        self.path = path
        self.fd = try PosixFile.open(path)
    }

    /// Loads the entries on disk; false when the file is not a valid index for a log of `logSize` bytes.
    /// Reads the file through the C core's io_uring path.
    mutating func load(logSize: Int64, io: DiskIO) throws -> Bool {
        let bytes = Array(try io.read(fd: fd, count: Int(try PosixFile.size(fd)), at: 0).readableBytesView)
        guard bytes.count % 8 == 0 else { return false }
        var loaded: [Entry] = []
        loaded.reserveCapacity(bytes.count / 8)
        var i = 0
        while i < bytes.count {
            let e = Entry(relativeOffset: Self.u32(bytes, i), position: Self.u32(bytes, i + 4))
            if let last = loaded.last, e.relativeOffset <= last.relativeOffset || e.position <= last.position { return false }
            if Int64(e.position) >= logSize { return false }
            loaded.append(e)
            i += 8
        }
        entries = loaded
        return true
    }

    mutating func reset() throws {
        entries.removeAll()
        try PosixFile.truncate(fd, to: 0)
    }

    mutating func append(relativeOffset: UInt32, position: UInt32) throws {
        if let last = entries.last, relativeOffset <= last.relativeOffset || position <= last.position { return }
        try PosixFile.pwriteAll(fd, Self.be(relativeOffset) + Self.be(position), at: Int64(entries.count * 8))
        entries.append(Entry(relativeOffset: relativeOffset, position: position))
    }

    /// The last entry whose offset is <= `relativeOffset`, or nil (start of the segment).
    func floor(_ relativeOffset: UInt32) -> Entry? {
        entries.lastWhere { $0.relativeOffset <= relativeOffset }
    }

    func close() { _ = Glibc.close(fd) }

    static func u32(_ b: [UInt8], _ i: Int) -> UInt32 {
        UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3])
    }

    static func be(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
}

#if canImport(Glibc)
    import Glibc
#endif
