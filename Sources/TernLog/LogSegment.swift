import Logging
import NIOConcurrencyHelpers
import NIOCore
import TernProtocol

#if canImport(Glibc)
    import Glibc
#endif

/// One segment of a partition log: `<base>.log` holding record batches back to back exactly as
/// stored (base offsets already assigned), plus its `.index` and `.timeindex`.
///
/// Invariants: batches are contiguous from position 0 to `size`; their offsets strictly increase
/// and are >= `baseOffset`; `nextOffset` is one past the last offset written.
///
/// Thread safety: not Sendable. The owning `PartitionLog` reads and changes the segment under its
/// lock; work done without that lock goes through a `SegmentSnapshot` (its own descriptor, a fixed
/// size). The index files are the one exception: a sealed segment's in-memory indexes no longer
/// change, and writing or deleting their files is serialised by `indexFiles`, so the log can
/// persist them without its lock while a cleaner or retention retires the segment.
final class LogSegment {
    let baseOffset: Int64
    let directory: String
    let fd: Int32
    private(set) var size: Int64 = 0
    private(set) var nextOffset: Int64
    private(set) var maxTimestamp: Int64 = -1
    /// Timestamp of the first batch, which `segment.ms` rolling counts from (-1 while empty).
    private(set) var firstTimestamp: Int64 = -1
    private var index: OffsetIndex
    private var timeIndex: TimeIndex
    private var bytesSinceIndexEntry = 0
    /// Guards writing and deleting the index files; once `indexFilesRetired` (the segment was
    /// deleted or cleaned), they are never written again — a late write would pair a stale index
    /// with a new log.
    private let indexFiles = NIOLock()
    private var indexFilesRetired = false
    /// One duplicate of `fd` shared by every snapshot and fetch response reading this segment at
    /// the same time: held weakly, so it is closed when the last reader lets go (an idle segment
    /// costs no second descriptor), and readers still holding it keep the file after `close`.
    private weak var readers: SharedDescriptor?

    static func fileName(_ base: Int64, _ ext: String) -> String {
        let digits = String(base)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits + ext
    }

    var logPath: String { "\(directory)/\(Self.fileName(baseOffset, ".log"))" }

    /// Opens (creating) `<base>.log` in `directory`, or `logFile` — a cleaned file that is renamed
    /// to `<base>.log` when it replaces the segment (its descriptor follows the rename).
    init(directory: String, baseOffset: Int64, logFile: String? = nil) throws {
        self.directory = directory
        self.baseOffset = baseOffset
        self.nextOffset = baseOffset
        self.fd = try PosixFile.open(logFile ?? "\(directory)/\(Self.fileName(baseOffset, ".log"))")
        self.index = OffsetIndex(path: "\(directory)/\(Self.fileName(baseOffset, ".index"))")
        self.timeIndex = TimeIndex(path: "\(directory)/\(Self.fileName(baseOffset, ".timeindex"))")
        self.size = try PosixFile.size(fd)
    }

    /// Opens a sealed (not active) segment: trusts its indexes when they are well formed, otherwise
    /// rebuilds them by scanning. `nextOffset` is taken from the last batch.
    func openSealed(io: DiskIO, config: LogConfig, logger: Logger) throws {
        let indexOK = try index.load(logSize: size, io: io)
        let timeOK = try timeIndex.load(io: io)
        if !indexOK || !timeOK || (size > 0 && index.entries.isEmpty && size > config.indexIntervalBytes) {
            logger.notice("rebuilding index", metadata: ["segment": "\(logPath)"])
            _ = try recover(io: io, config: config, logger: logger)
            try? persistIndexes()
            return
        }
        do {
            try loadEndFromIndexes(io: io)
        } catch {
            // Well-formed index files that do not describe this log (copied, stale, damaged):
            // rebuild them from the log itself rather than serve wrong positions.
            logger.warning("index does not match its log; rebuilding", metadata: ["segment": "\(logPath)", "error": "\(error)"])
            _ = try recover(io: io, config: config, logger: logger)
            try? persistIndexes()
        }
    }

    /// Finds the end offset and max timestamp by walking from the last offset-index entry, after
    /// checking that the first and last entries point at batches with the offsets they claim and
    /// that the time index stays inside the segment's offsets.
    private func loadEndFromIndexes(io: DiskIO) throws {
        for entry in [index.entries.first, index.entries.last].compactMap({ $0 }) {
            let header = try readHeader(io: io, at: Int64(entry.position))
            guard header.baseOffset == baseOffset + Int64(entry.relativeOffset) else {
                throw LogError.corruptBatch("index entry \(entry) points at offset \(header.baseOffset)")
            }
        }
        firstTimestamp = size > 0 ? try readHeader(io: io, at: 0).baseTimestamp : -1
        var position = Int64(index.entries.last?.position ?? 0)
        var end = baseOffset
        var newest: Int64 = -1
        while position < size {
            let header = try readHeader(io: io, at: position)
            guard header.baseOffset >= end else { throw LogError.corruptBatch("offsets go back at position \(position)") }
            end = header.lastOffset + 1
            newest = max(newest, header.maxTimestamp)
            position += Int64(header.totalSize)
        }
        if let last = timeIndex.entries.last {
            guard baseOffset + Int64(last.relativeOffset) < max(end, baseOffset + 1) else {
                throw LogError.corruptBatch("time index entry \(last) is past the segment's last offset \(end - 1)")
            }
            newest = max(newest, last.timestamp)
        }
        nextOffset = end
        maxTimestamp = newest
    }

    /// Validates every batch from the start (length, magic, CRC, increasing offsets), rebuilds the
    /// indexes, and truncates a torn or corrupt tail. Returns the number of bytes cut off.
    @discardableResult
    func recover(io: DiskIO, config: LogConfig, logger: Logger) throws -> Int64 {
        index.reset()
        timeIndex.reset()
        bytesSinceIndexEntry = 0
        nextOffset = baseOffset
        maxTimestamp = -1
        firstTimestamp = -1
        var position: Int64 = 0
        let chunkSize = 4 << 20
        var chunk = ByteBuffer()
        var chunkStart: Int64 = 0
        var problem: String?
        while position < size {
            var at = Int(position - chunkStart) + chunk.readerIndex
            if position < chunkStart || at + RecordBatchHeader.logOverhead > chunk.writerIndex {
                chunk = try io.read(fd: fd, count: Int(min(Int64(chunkSize), size - position)), at: position)
                chunkStart = position
                at = chunk.readerIndex
            }
            guard chunk.writerIndex - at >= RecordBatchHeader.logOverhead else {
                problem = "truncated batch header"
                break
            }
            let length = Int(chunk.getInteger(at: at + 8, as: Int32.self)!)
            let total = length + RecordBatchHeader.logOverhead
            guard length >= RecordBatchHeader.size - RecordBatchHeader.logOverhead, Int64(total) <= size - position else {
                problem = length < 0 || Int64(total) <= size - position ? "invalid batch length \(length)" : "truncated batch"
                break
            }
            if at + total > chunk.writerIndex {
                chunk = try io.read(fd: fd, count: Int(min(Int64(max(chunkSize, total)), size - position)), at: position)
                chunkStart = position
                at = chunk.readerIndex
            }
            let header: RecordBatchHeader
            do {
                header = try RecordBatchHeader.validated(in: chunk, at: at)
            } catch {
                problem = "\(error)"
                break
            }
            guard header.baseOffset >= nextOffset else {
                problem = "offset \(header.baseOffset) does not follow \(nextOffset - 1)"
                break
            }
            // What the appender guarantees: relative offsets and positions fit the 32-bit index
            // entries, and a batch never claims fewer offsets than it holds records.
            guard header.lastOffset - baseOffset <= Int64(Int32.max), position <= Int64(UInt32.max),
                Int64(header.recordsCount) <= Int64(header.lastOffsetDelta) + 1
            else {
                problem = "batch at offset \(header.baseOffset) (last offset delta \(header.lastOffsetDelta), \(header.recordsCount) records) does not fit segment \(baseOffset)"
                break
            }
            indexBatch(header, at: position, config: config)
            nextOffset = header.lastOffset + 1
            position += Int64(total)
        }
        let cut = size - position
        if cut > 0 {
            logger.warning(
                "truncating corrupt or torn log tail",
                metadata: ["segment": "\(logPath)", "position": "\(position)", "bytes": "\(cut)", "reason": "\(problem ?? "?")"])
            try PosixFile.truncate(fd, to: position)
            size = position
        }
        return cut
    }

    private func indexBatch(_ header: RecordBatchHeader, at position: Int64, config: LogConfig) {
        if position == 0 { firstTimestamp = header.baseTimestamp }
        if bytesSinceIndexEntry >= config.indexIntervalBytes {
            index.append(relativeOffset: UInt32(header.baseOffset - baseOffset), position: UInt32(position))
            bytesSinceIndexEntry = 0
        }
        bytesSinceIndexEntry += header.totalSize
        if header.maxTimestamp > maxTimestamp {
            maxTimestamp = header.maxTimestamp
            timeIndex.append(timestamp: header.maxTimestamp, relativeOffset: UInt32(header.lastOffset - baseOffset))
        }
    }

    /// Records batches just written at `position` (`headers` with their assigned offsets):
    /// indexes them and makes them visible to readers.
    func commit(headers: [RecordBatchHeader], at position: Int64, byteCount: Int, config: LogConfig) throws {
        precondition(position == size, "commits must be contiguous")
        var p = position
        for h in headers {
            indexBatch(h, at: p, config: config)
            p += Int64(h.totalSize)
        }
        size += Int64(byteCount)
        if let last = headers.last { nextOffset = last.lastOffset + 1 }
    }

    /// Cuts the segment at a batch boundary (a divergent tail) and rebuilds its indexes and end
    /// from what remains.
    func truncate(toPosition position: Int64, io: DiskIO, config: LogConfig, logger: Logger) throws {
        precondition(position >= 0 && position <= size, "truncation stays inside the segment")
        try PosixFile.truncate(fd, to: position)
        size = position
        try recover(io: io, config: config, logger: logger)
    }

    /// Cuts the file back to the committed size (after a failed write left partial bytes).
    func discardUncommitted() {
        try? PosixFile.truncate(fd, to: size)
    }

    /// The header of the batch at `position`, checked to be plausible (magic 2, a length that
    /// fits the segment, offsets inside the segment's range) so that a damaged index or file is
    /// reported as a corrupt batch, never walked into a loop or a trap.
    func readHeader(io: DiskIO, at position: Int64) throws -> RecordBatchHeader {
        try view(fd: fd).readHeader(io: io, at: position)
    }

    /// The segment's committed bytes as of now, read through `fd` (its own, or a duplicate that
    /// outlives the segment for work done without the log's lock).
    func view(fd: Int32) -> SegmentView {
        SegmentView(fd: fd, size: size, baseOffset: baseOffset, logPath: logPath)
    }

    /// Where a walk for `offset` starts: the nearest offset-index entry at or below it (memory only).
    func indexedPosition(atOrBefore offset: Int64) -> Int64 {
        Int64(index.floor(UInt32(clamping: max(0, offset - baseOffset)))?.position ?? 0)
    }

    /// Where a walk for the first batch with a max timestamp >= `timestamp` starts (memory only):
    /// past the last time-index entry below it.
    func indexedPosition(forTimestamp timestamp: Int64) -> Int64 {
        let start = timeIndex.lastBefore(timestamp).map { baseOffset + Int64($0.relativeOffset) + 1 } ?? baseOffset
        return indexedPosition(atOrBefore: start)
    }

    /// Position of the first batch containing an offset >= `offset`, or nil when none in this segment.
    func position(of offset: Int64, io: DiskIO) throws -> (position: Int64, header: RecordBatchHeader)? {
        guard offset < nextOffset else { return nil }
        return try view(fd: fd).firstBatch(containing: offset, from: indexedPosition(atOrBefore: offset), io: io)
    }

    func read(io: DiskIO, at position: Int64, count: Int) throws -> ByteBuffer {
        try io.read(fd: fd, count: Int(min(Int64(count), size - position)), at: position)
    }

    func flush(io: DiskIO) throws { try io.sync(fd: fd) }

    /// Writes the in-memory indexes to their files if they changed (at seal and close). Not
    /// synced: a lost or stale index is detected at open and rebuilt from the log.
    func persistIndexes() throws {
        try indexFiles.withLock {
            guard !indexFilesRetired else { return }
            try index.persist()
            try timeIndex.persist()
        }
    }

    /// Closes the log file, first writing the indexes when `persisting`.
    func close(persisting: Bool = true) {
        if persisting { try? persistIndexes() }
        readers = nil
        _ = Glibc.close(fd)
    }

    /// The descriptor readers share (see `readers`). With the log's lock held.
    func readerDescriptor() throws -> SharedDescriptor {
        if let readers { return readers }
        let copy = dup(fd)
        if copy < 0 { throw LogError.io("dup", errno) }
        let shared = SharedDescriptor(taking: copy)
        readers = shared
        return shared
    }

    /// Removes the index files for good (the segment is being replaced by a cleaned one); the log
    /// file and the descriptor stay.
    func retireIndexFiles() {
        indexFiles.withLock {
            indexFilesRetired = true
            for ext in [".index", ".timeindex"] { unlink("\(directory)/\(Self.fileName(baseOffset, ext))") }
        }
    }

    /// Closes the segment and removes its files. Readers holding a snapshot keep reading the data.
    func deleteFiles() {
        retireIndexFiles()
        close(persisting: false)
        unlink(logPath)
    }
}

/// A segment's batches up to a fixed size, read through one descriptor: what the cleaner works on
/// while the log keeps taking appends.
struct SegmentView {
    let fd: Int32
    let size: Int64
    let baseOffset: Int64
    let logPath: String

    /// The header of the batch at `position`, checked to be plausible (magic 2, a length that
    /// fits the segment, offsets inside the segment's range) so that a damaged index or file is
    /// reported as a corrupt batch, never walked into a loop or a trap.
    func readHeader(io: DiskIO, at position: Int64) throws -> RecordBatchHeader {
        let bytes = try io.read(fd: fd, count: RecordBatchHeader.size, at: position)
        let header = try RecordBatchHeader(from: bytes, at: bytes.readerIndex)
        guard header.magic == 2, header.batchLength >= Int32(RecordBatchHeader.size - RecordBatchHeader.logOverhead),
            position + Int64(header.totalSize) <= size, header.lastOffsetDelta >= 0, header.baseOffset >= baseOffset,
            header.lastOffset - baseOffset <= Int64(Int32.max)
        else {
            throw LogError.corruptBatch("no valid batch at position \(position) of \(logPath)")
        }
        return header
    }

    func read(io: DiskIO, at position: Int64, count: Int) throws -> ByteBuffer {
        try io.read(fd: fd, count: Int(min(Int64(count), size - position)), at: position)
    }

    /// The first batch whose last offset is >= `offset`, walking headers from `start` (a batch
    /// boundary), or nil when the view ends first.
    func firstBatch(containing offset: Int64, from start: Int64, io: DiskIO) throws -> (position: Int64, header: RecordBatchHeader)? {
        try firstBatch(from: start, io: io) { $0.lastOffset >= offset }
    }

    /// The first batch whose max timestamp is >= `timestamp`, walking headers from `start`.
    func firstBatch(withTimestampAtLeast timestamp: Int64, from start: Int64, io: DiskIO) throws -> (position: Int64, header: RecordBatchHeader)? {
        try firstBatch(from: start, io: io) { $0.maxTimestamp >= timestamp }
    }

    private func firstBatch(from start: Int64, io: DiskIO, where matches: (RecordBatchHeader) -> Bool) throws -> (position: Int64, header: RecordBatchHeader)? {
        var position = start
        while position < size {
            let header = try readHeader(io: io, at: position)
            if matches(header) { return (position, header) }
            position += Int64(header.totalSize)
        }
        return nil
    }
}

/// A segment's committed bytes as of one moment, through the segment's shared reader descriptor,
/// which the snapshot keeps open: what work done without the log's lock reads (fetches,
/// timestamp searches, compaction, interval flushes). The segment may be rolled, cleaned,
/// deleted or closed meanwhile — the descriptor keeps the file it saw, and its number cannot be
/// reused under the reader. Every reader of a segment shares one descriptor: a client keeping
/// thousands of fetch responses unread costs no more descriptors than the segments they name.
/// Not Sendable: one thread uses a snapshot, then drops it.
final class SegmentSnapshot {
    let view: SegmentView
    private let file: SharedDescriptor

    /// Takes the snapshot; call with the log's lock held so size and file agree.
    init(_ segment: LogSegment) throws {
        file = try segment.readerDescriptor()
        view = segment.view(fd: file.fd)
    }

    /// Up to `count` bytes from `position`, for sendfile; the slice keeps the descriptor open.
    func slice(at position: Int64, count: Int) -> FileSlice {
        FileSlice(file: file, offset: position, length: Int(min(Int64(count), view.size - position)))
    }
}
