#if canImport(Glibc)
    import Glibc
#endif

/// Sparse time index of one segment: entries (largest timestamp seen so far, relative offset of
/// the batch that ends there), 12 bytes big-endian on disk, written alongside offset index entries.
/// Kept in memory and written whole when the segment is sealed or closed, like `OffsetIndex`.
///
/// Invariant: timestamps and offsets are both non-decreasing, so every record at or before an
/// entry's offset has a timestamp <= the entry's timestamp.
struct TimeIndex {
    struct Entry: Equatable {
        var timestamp: Int64
        var relativeOffset: UInt32
    }

    private(set) var entries: [Entry] = []
    private(set) var dirty = false
    let path: String

    init(path: String) { self.path = path }

    mutating func load(io: DiskIO) throws -> Bool {
        guard let bytes = try IndexFile.read(path, io: io) else {
            entries = []
            return true
        }
        guard bytes.count % 12 == 0 else { return false }
        var loaded: [Entry] = []
        var i = 0
        while i < bytes.count {
            let ts = Int64(bitPattern: UInt64(IndexFile.u32(bytes, i)) << 32 | UInt64(IndexFile.u32(bytes, i + 4)))
            let e = Entry(timestamp: ts, relativeOffset: IndexFile.u32(bytes, i + 8))
            if let last = loaded.last, e.timestamp < last.timestamp || e.relativeOffset < last.relativeOffset { return false }
            loaded.append(e)
            i += 12
        }
        entries = loaded
        dirty = false
        return true
    }

    mutating func reset() {
        entries.removeAll()
        dirty = true
    }

    mutating func append(timestamp: Int64, relativeOffset: UInt32) {
        if let last = entries.last, timestamp <= last.timestamp || relativeOffset < last.relativeOffset { return }
        entries.append(Entry(timestamp: timestamp, relativeOffset: relativeOffset))
        dirty = true
    }

    mutating func persist() throws {
        guard dirty else { return }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(entries.count * 12)
        for e in entries {
            let ts = UInt64(bitPattern: e.timestamp)
            bytes += IndexFile.be(UInt32(ts >> 32)) + IndexFile.be(UInt32(ts & 0xffff_ffff)) + IndexFile.be(e.relativeOffset)
        }
        try PosixFile.writeAtomically(path, bytes, durable: false)
        dirty = false
    }

    /// The last entry with a timestamp strictly below `timestamp`: everything up to its offset is
    /// older than the target, so a search may start just after it.
    func lastBefore(_ timestamp: Int64) -> Entry? {
        entries.lastWhere { $0.timestamp < timestamp }
    }
}
