/// Sparse offset index of one segment: entries (offset relative to the segment's base, byte
/// position in the .log file), each 8 bytes big-endian on disk, one every
/// `log.index.interval.bytes` of log data.
///
/// Entries live in memory; the file is read once at open and written whole when the segment is
/// sealed or closed. No descriptor stays open, so a segment costs one descriptor (its log), and an
/// active segment's index is never written piecemeal: after a crash it is rebuilt from the log
/// anyway, as every segment past the recovery point is re-validated.
///
/// Invariant: relative offsets and positions both strictly increase.
struct OffsetIndex {
    struct Entry: Equatable {
        var relativeOffset: UInt32
        var position: UInt32
    }

    private(set) var entries: [Entry] = []
    /// Entries not yet written to the file.
    private(set) var dirty = false
    let path: String

    init(path: String) { self.path = path }

    /// Loads the entries on disk; false when the file is not a valid index for a log of `logSize`
    /// bytes (a missing file is an empty, valid index).
    mutating func load(logSize: Int64, io: DiskIO) throws -> Bool {
        guard let bytes = try IndexFile.read(path, io: io) else {
            entries = []
            return true
        }
        guard bytes.count % 8 == 0 else { return false }
        var loaded: [Entry] = []
        loaded.reserveCapacity(bytes.count / 8)
        var i = 0
        while i < bytes.count {
            let e = Entry(relativeOffset: IndexFile.u32(bytes, i), position: IndexFile.u32(bytes, i + 4))
            if let last = loaded.last, e.relativeOffset <= last.relativeOffset || e.position <= last.position { return false }
            if Int64(e.position) >= logSize { return false }
            loaded.append(e)
            i += 8
        }
        entries = loaded
        dirty = false
        return true
    }

    mutating func reset() {
        entries.removeAll()
        dirty = true
    }

    mutating func append(relativeOffset: UInt32, position: UInt32) {
        if let last = entries.last, relativeOffset <= last.relativeOffset || position <= last.position { return }
        entries.append(Entry(relativeOffset: relativeOffset, position: position))
        dirty = true
    }

    /// Writes the entries to the file (replacing it) if they changed since the last load or write.
    mutating func persist() throws {
        guard dirty else { return }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(entries.count * 8)
        for e in entries { bytes += IndexFile.be(e.relativeOffset) + IndexFile.be(e.position) }
        try PosixFile.writeAtomically(path, bytes, durable: false)
        dirty = false
    }

    /// The last entry whose offset is <= `relativeOffset`, or nil (start of the segment).
    func floor(_ relativeOffset: UInt32) -> Entry? {
        entries.lastWhere { $0.relativeOffset <= relativeOffset }
    }
}

/// Reading and encoding the index files.
enum IndexFile {
    /// The whole file, or nil when there is none.
    static func read(_ path: String, io: DiskIO) throws -> [UInt8]? {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw LogError.io("open \(path)", errno)
        }
        defer { Glibc.close(fd) }
        return Array(try io.read(fd: fd, count: Int(try PosixFile.size(fd)), at: 0).readableBytesView)
    }

    static func u32(_ b: [UInt8], _ i: Int) -> UInt32 {
        UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3])
    }

    static func be(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
}

#if canImport(Glibc)
    import Glibc
#endif
