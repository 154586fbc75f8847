import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif
import NIOConcurrencyHelpers
import NIOCore
import TernProtocol

/// The append-only log of one partition: segments named by base offset in one directory.
///
/// The log's work is split by what it does, one file each: opening and recovery (here), appends
/// and rolls (`+Append`), reads (`+Read`), retention and DeleteRecords (`+Retention`), interval
/// flushes (`+Flush`), compaction (`LogCleaner`).
///
/// Concurrency: `lock` covers the log's metadata — the segment list, offsets, in-memory indexes,
/// producer state and transaction index — and nothing else. Disk work happens outside it: reads
/// walk a `SegmentSnapshot` (a duplicated descriptor, a fixed size), fsyncs go through a snapshot,
/// offset files are written by `PersistedOffset` under their own locks, a rolled segment's index
/// files and producer snapshot are written by the appender after it leaves the lock, deleted
/// segments' files are unlinked after they leave the list. The exceptions are bounded metadata
/// operations — creating the next segment's file at a roll, the cleaner's rename of a cleaned
/// file over the one it replaces (so the list and the directory never disagree) — and `close()`,
/// which ends the log's life.
/// Only the appender's thread prepares and completes appends (`LogAppender`), in the same order.
///
/// Invariants: segments are sorted by base offset and contiguous in offsets; `logStartOffset <=
/// logEndOffset`; only the last segment is written. Sendable: every mutable field is touched only
/// with `lock` held (asserted by `lock.withLock` at each entry), the rest is immutable.
public final class PartitionLog: @unchecked Sendable {
    public let directory: String
    let lock = NIOLock()
    let io: DiskIO
    let logger: Logger
    var config: LogConfig
    var segments: [LogSegment] = []
    var startOffset: Int64 = 0
    /// The log start offset on disk; it trails `startOffset` only while a move is being written.
    let persistedStart: PersistedOffset
    /// The recovery point on disk: segments entirely below it were synced after their roll.
    let recoveryPoint: PersistedOffset
    var unflushedMessages: Int64 = 0
    /// Appends prepared but not yet completed, and where the next one goes.
    var inFlight = 0
    var inFlightAppends: Int { inFlight }
    var reservedPosition: Int64 = 0
    var reservedNextOffset: Int64 = 0
    /// The producer-state changes of the appends in flight, in preparation order (each with its
    /// append's ticket). A failed append undoes its own and every later one's, newest first, so
    /// the table is what it was before the first failed batch — undoing each on its own, oldest
    /// first, put an earlier failed batch's sequence back (issue 22's lost record).
    var pendingProducerUndo: [(ticket: UInt64, undo: [(Int64, ProducerStateTable.Entry?)])] = []
    var nextAppendTicket: UInt64 = 0
    var lastFlushNanos: UInt64 = DispatchTime.now().uptimeNanoseconds
    var isClosed = false
    /// Deleted with writes in flight: their completion closes the segments.
    var closeWhenIdle = false
    /// A compaction pass is running (at most one per log).
    var compacting = false
    /// Idempotent producers' sequences; includes prepared, not yet completed, appends.
    var producerState = ProducerStateTable()
    var transactions = TransactionIndex()
    /// First offset of each leader epoch in this log (covers completed appends only).
    var epochs = LeaderEpochCache()
    /// The leader epoch stamped on leader appends: the one this replica leads in (cluster mode),
    /// else the log's latest (0 for a single broker's).
    var epochForAppends: Int32 = 0
    /// Who may append to a replicated log (see `ReplicaRole`). Under `lock`.
    var role: ReplicaRole = .unreplicated
    let epochFile: LeaderEpochFile
    /// Replicated partitions (cluster mode): the offset below which every in-sync replica has the
    /// records — what consumers may read. Without replication it is the log end offset.
    var tracksHighWatermark = false
    var hw: Int64 = 0
    /// The high watermark on disk, written now and then (`checkpointHighWatermark`) and at close:
    /// a restarted replica serves no further than it until its leader says more.
    let persistedHighWatermark: PersistedOffset

    public struct AppendResult: Equatable, Sendable {
        public var baseOffset: Int64
        public var lastOffset: Int64
        public var logStartOffset: Int64
    }

    /// Opens (creating if needed) the log in `directory`, recovering what a crash may have torn.
    public init(directory: String, config: LogConfig, io: DiskIO, logger: Logger) throws {
        self.directory = directory
        self.config = config
        self.io = io
        var logger = logger
        logger[metadataKey: "log"] = "\(URL(fileURLWithPath: directory).lastPathComponent)"
        self.logger = logger
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        persistedStart = PersistedOffset(directory: directory, name: "log-start-offset")
        recoveryPoint = PersistedOffset(directory: directory, name: "recovery-point")
        persistedHighWatermark = PersistedOffset(directory: directory, name: "high-watermark")
        epochFile = LeaderEpochFile(directory: directory)
        startOffset = persistedStart.current
        let files = try FileManager.default.contentsOfDirectory(atPath: directory)
        // A cleaner interrupted before its swap leaves a `.cleaned` file: the original is intact.
        for f in files where f.hasSuffix(".cleaned") { try? FileManager.default.removeItem(atPath: "\(directory)/\(f)") }
        let bases = files
            .filter { $0.hasSuffix(".log") }
            .compactMap { Int64($0.dropLast(4)) }
            .sorted()
        try openSegments(bases)
        if segments.isEmpty {
            segments.append(try LogSegment(directory: directory, baseOffset: startOffset))
        }
        startOffset = max(startOffset, segments[0].baseOffset)
        let end = segments[segments.count - 1].nextOffset
        if startOffset > end {
            // A start beyond the end would hide every record, new ones included. The file is
            // damaged or the log lost its tail: keep what is there readable and say so.
            logger.error("log start offset beyond the log end; clamping it", metadata: ["logStartOffset": "\(startOffset)", "logEndOffset": "\(end)"])
            startOffset = end
            try persistedStart.reset(to: end)
        }
        epochs = LeaderEpochCache.load(directory) ?? LeaderEpochCache()
        epochs.truncate(fromEnd: end)
        try rebuildProducerState()
        epochForAppends = max(epochs.latestEpoch, 0)
        hw = min(max(persistedHighWatermark.current, startOffset), end)
    }

    /// Segments wholly below the recovery point were synced after their roll and are trusted; the
    /// rest (the active one at least) may have lost or torn bytes in a crash and are re-validated.
    private func openSegments(_ bases: [Int64]) throws {
        for (i, base) in bases.enumerated() {
            let segment = try LogSegment(directory: directory, baseOffset: base)
            let isLast = i == bases.count - 1
            if !isLast && bases[i + 1] <= recoveryPoint.current {
                try segment.openSealed(io: io, config: config, logger: logger)
                segments.append(segment)
                continue
            }
            let cut = try segment.recover(io: io, config: config, logger: logger)
            segments.append(segment)
            if !isLast && (cut > 0 || segment.nextOffset != bases[i + 1]) {
                // Later segments were written after bytes that did not survive: keeping them would
                // leave a hole in the offsets. Drop them, as Kafka truncates after a corruption.
                for later in bases[(i + 1)...] {
                    for ext in [".log", ".index", ".timeindex"] { unlink("\(directory)/\(LogSegment.fileName(later, ext))") }
                }
                logger.warning("dropped segments after an unsynced one that lost data in a crash",
                               metadata: ["segment": "\(base)", "end": "\(segment.nextOffset)", "dropped": "\(bases.count - i - 1)"])
                return
            }
        }
    }

    /// Loads the last producer-state snapshot and replays the batch headers written after it, so a
    /// retried idempotent batch is still recognised after a restart (clean or not).
    func rebuildProducerState() throws {
        producerState = ProducerStateTable()
        transactions = TransactionIndex()
        let end = segments[segments.count - 1].nextOffset
        var from = startOffset
        if let snapshot = ProducerStateSnapshot.load(directory, logger: logger), snapshot.offset <= end, snapshot.offset >= startOffset {
            producerState = snapshot.table
            transactions = snapshot.transactions ?? TransactionIndex()
            from = snapshot.offset
        }
        var i = segmentIndex(for: from)
        while i < segments.count && from < end {
            if var (position, _) = try segments[i].position(of: from, io: io) {
                while position < segments[i].size {
                    let h = try segments[i].readHeader(io: io, at: position)
                    // Epochs written after the checkpoint (a crash before it was saved).
                    if h.lastOffset >= from { epochs.observe(epoch: h.partitionLeaderEpoch, at: h.baseOffset) }
                    if h.producerId >= 0 && h.lastOffset >= from {
                        let marker = h.isControl ? TransactionIndex.marker(try segments[i].read(io: io, at: position, count: h.totalSize)) : nil
                        producerState.record(h, firstOffset: h.baseOffset, lastOffset: h.lastOffset, coordinatorEpoch: marker?.coordinatorEpoch)
                        transactions.observe(h, marker: marker?.type)
                    }
                    position += Int64(h.totalSize)
                }
            }
            i += 1
        }
    }

    /// Applies new settings (topic config change); they take effect from the next append/check.
    public func update(config: LogConfig) { lock.withLock { self.config = config } }
    /// The settings the log runs with now (topic configs over the broker's defaults).
    public var currentConfig: LogConfig { lock.withLock { config } }

    public var logEndOffset: Int64 { lock.withLock { segments[segments.count - 1].nextOffset } }
    /// The flush policy syncs appends (`flush.messages` set): the appender groups more per sync.
    public var syncsOnAppend: Bool { lock.withLock { config.flushIntervalMessages != Int64.max } }
    /// `tern.replication.fsync`: acks=all writes (and followers' copies) are synced.
    public var syncsReplication: Bool { lock.withLock { config.replicationFsync } }
    public var logStartOffset: Int64 { lock.withLock { startOffset } }
    public var sizeInBytes: Int64 { lock.withLock { segments.reduce(0) { $0 + $1.size } } }
    public var segmentCount: Int { lock.withLock { segments.count } }

    public static func nowMs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    /// Index of the last segment whose base offset is <= `offset` (the first one if none). Lock held.
    func segmentIndex(for offset: Int64) -> Int {
        var lo = 0, hi = segments.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if segments[mid].baseOffset <= offset { lo = mid } else { hi = mid - 1 }
        }
        return lo
    }

    /// Flushes and closes every segment; later calls fail with `LogError.closed`. The broker calls
    /// it after the appender has drained.
    public func close() {
        // Background syncs of sealed segments finish first (they take this log's lock to record
        // the recovery point, so they must not be waited for while holding it).
        io.background.drain()
        lock.withLock {
            guard !isClosed else { return }
            do { try segments[segments.count - 1].flush(io: io) } catch { logger.error("flush on close failed: \(error)") }
            if inFlight == 0 {
                try? ProducerStateSnapshot(offset: segments[segments.count - 1].nextOffset, table: producerState, transactions: transactions).save(directory)
            }
            try? epochFile.write(epochs)
            if tracksHighWatermark { try? persistedHighWatermark.reset(to: hw) }
            segments.forEach { $0.close() }
            isClosed = true
        }
    }

    /// Closes the log and removes its directory.
    public func delete() {
        lock.withLock {
            if !isClosed {
                // A prepared write holds the active segment's raw descriptor until the appender
                // completes it: closing now could let the number be reused by another file and the
                // write land there. The last completion closes them instead.
                if inFlight == 0 { segments.forEach { $0.close(persisting: false) } } else { closeWhenIdle = true }
            }
            isClosed = true
        }
        try? FileManager.default.removeItem(atPath: directory)
    }
}
