#if canImport(Glibc)
    import Glibc
#endif

/// Sparse time index of one segment: entries (largest timestamp seen so far, relative offset of
/// the batch that ends there), 12 bytes big-endian on disk, written alongside offset index entries.
///
/// Invariant: timestamps and offsets are both non-decreasing, so every record at or before an
/// entry's offset has a timestamp <= the entry's timestamp.
struct TimeIndex {
    struct Entry: Equatable {
        var timestamp: Int64
        var relativeOffset: UInt32
    }

    private(set) var entries: [Entry] = []
    let fd: Int32

    init(path: String) throws {
        self.fd = try PosixFile.open(path)
    }

    /// Reads the file through the C core's io_uring path.
    mutating func load(io: DiskIO) throws -> Bool {
        let bytes = Array(try io.read(fd: fd, count: Int(try PosixFile.size(fd)), at: 0).readableBytesView)
        guard bytes.count % 12 == 0 else { return false }
        var loaded: [Entry] = []
        var i = 0
        while i < bytes.count {
            let ts = Int64(bitPattern: UInt64(OffsetIndex.u32(bytes, i)) << 32 | UInt64(OffsetIndex.u32(bytes, i + 4)))
            let e = Entry(timestamp: ts, relativeOffset: OffsetIndex.u32(bytes, i + 8))
            if let last = loaded.last, e.timestamp < last.timestamp || e.relativeOffset < last.relativeOffset { return false }
            loaded.append(e)
            i += 12
        }
        entries = loaded
        return true
    }

    mutating func reset() throws {
        entries.removeAll()
        try PosixFile.truncate(fd, to: 0)
    }

    mutating func append(timestamp: Int64, relativeOffset: UInt32) throws {
        if let last = entries.last, timestamp <= last.timestamp || relativeOffset < last.relativeOffset { return }
        let ts = UInt64(bitPattern: timestamp)
        let bytes = OffsetIndex.be(UInt32(ts >> 32)) + OffsetIndex.be(UInt32(ts & 0xffff_ffff)) + OffsetIndex.be(relativeOffset)
        try PosixFile.pwriteAll(fd, bytes, at: Int64(entries.count * 12))
        entries.append(Entry(timestamp: timestamp, relativeOffset: relativeOffset))
    }

    /// The last entry with a timestamp strictly below `timestamp`: everything up to its offset is
    /// older than the target, so a search may start just after it.
    func lastBefore(_ timestamp: Int64) -> Entry? {
        entries.lastWhere { $0.timestamp < timestamp }
    }

    func close() { _ = Glibc.close(fd) }
}
