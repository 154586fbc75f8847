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
/// Thread safety: every public method takes the log's lock, so appends are totally ordered and a
/// read never sees a half-indexed batch. Invariants: segments are sorted by base offset and
/// contiguous in offsets; `logStartOffset <= logEndOffset`; only the last segment is written.
public final class PartitionLog: @unchecked Sendable {
    public let directory: String
    let lock = NIOLock()
    let io: DiskIO
    let logger: Logger
    var config: LogConfig
    var segments: [LogSegment] = []
    private var startOffset: Int64 = 0
    /// The recovery point last written to disk: segments entirely below it were synced after
    /// their roll. Its own lock, so the file is written outside the log's lock, in order.
    private let persistedRecoveryPoint = NIOLockedValueBox<Int64>(0)
    private var unflushedMessages: Int64 = 0
    /// Appends prepared but not yet completed, and where the next one goes.
    private var inFlight = 0
    var inFlightAppends: Int { inFlight }
    private var reservedPosition: Int64 = 0
    private var reservedNextOffset: Int64 = 0
    private var lastFlushNanos: UInt64 = DispatchTime.now().uptimeNanoseconds
    var isClosed = false
    /// Deleted with writes in flight: their completion closes the segments.
    private var closeWhenIdle = false
    /// A compaction pass is running (at most one per log).
    var compacting = false
    /// Idempotent producers' sequences; includes prepared, not yet completed, appends.
    var producerState = ProducerStateTable()
    var transactions = TransactionIndex()

    public struct AppendResult: Equatable, Sendable {
        public var baseOffset: Int64
        public var lastOffset: Int64
        public var logStartOffset: Int64
    }

    public struct ReadResult: Sendable {
        /// Whole stored batches (the last one may be cut short by `maxBytes`; clients skip it), as a
        /// slice of the segment file for zero-copy sending.
        public var records: KafkaRecords
        public var highWatermark: Int64
        public var logStartOffset: Int64
        public var lastStableOffset: Int64 = -1
        /// read_committed: aborted transactions (producer id, first offset) in the returned range.
        public var abortedTransactions: [(producerId: Int64, firstOffset: Int64)] = []
    }

    /// Opens (creating if needed) the log in `directory`, recovering the active segment.
    public init(directory: String, config: LogConfig, io: DiskIO, logger: Logger) throws {
        self.directory = directory
        self.config = config
        self.io = io
        var logger = logger
        logger[metadataKey: "log"] = "\(URL(fileURLWithPath: directory).lastPathComponent)"
        self.logger = logger
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        startOffset = Self.readOffsetFile(directory, "log-start-offset") ?? 0
        let files = try FileManager.default.contentsOfDirectory(atPath: directory)
        // A cleaner interrupted before its swap leaves a `.cleaned` file: the original is intact.
        for f in files where f.hasSuffix(".cleaned") { try? FileManager.default.removeItem(atPath: "\(directory)/\(f)") }
        let bases = files
            .filter { $0.hasSuffix(".log") }
            .compactMap { Int64($0.dropLast(4)) }
            .sorted()
        // Segments wholly below the recovery point were synced after their roll; the rest (the
        // active one at least) may have lost or torn bytes in a crash and are re-validated.
        let recoveryPoint = Self.readOffsetFile(directory, "recovery-point") ?? 0
        persistedRecoveryPoint.withLockedValue { $0 = recoveryPoint }
        for (i, base) in bases.enumerated() {
            let segment = try LogSegment(directory: directory, baseOffset: base)
            let isLast = i == bases.count - 1
            if !isLast && bases[i + 1] <= recoveryPoint {
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
                break
            }
        }
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
            try PosixFile.writeAtomically("\(directory)/log-start-offset", Array("\(end)\n".utf8))
        }
        try rebuildProducerState()
    }

    /// Loads the last producer-state snapshot and replays the batch headers written after it, so a
    /// retried idempotent batch is still recognised after a restart (clean or not).
    private func rebuildProducerState() throws {
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
                    if h.producerId >= 0 && h.lastOffset >= from {
                        producerState.record(h, firstOffset: h.baseOffset, lastOffset: h.lastOffset)
                        let marker = h.isControl ? TransactionIndex.markerType(try segments[i].read(io: io, at: position, count: h.totalSize)) : nil
                        transactions.observe(h, marker: marker)
                    }
                    position += Int64(h.totalSize)
                }
            }
            i += 1
        }
    }

    /// Applies new settings (topic config change); they take effect from the next append/check.
    public func update(config: LogConfig) { lock.withLock { self.config = config } }

    public var logEndOffset: Int64 { lock.withLock { segments[segments.count - 1].nextOffset } }
    /// The flush policy syncs appends (`flush.messages` set): the appender groups more per sync.
    public var syncsOnAppend: Bool { lock.withLock { config.flushIntervalMessages != Int64.max } }
    public var logStartOffset: Int64 { lock.withLock { startOffset } }
    public var sizeInBytes: Int64 { lock.withLock { segments.reduce(0) { $0 + $1.size } } }
    public var segmentCount: Int { lock.withLock { segments.count } }

    /// An append whose offsets and file position are reserved and whose write is ready to submit.
    public struct PreparedAppend {
        fileprivate let segment: LogSegment
        fileprivate let headers: [RecordBatchHeader]
        /// Producer state to put back if the write fails.
        fileprivate let producerUndo: [(Int64, ProducerStateTable.Entry?)]
        public var write: DiskIO.Write
        public let result: AppendResult
    }

    public enum Preparation {
        case ready(PreparedAppend)
        /// The append needs a new segment while writes to the current one are still in flight:
        /// retry once they complete.
        case afterInFlightWrites
        /// A retried idempotent batch already in the log: its original offsets, nothing written.
        case duplicate(AppendResult)
    }

    /// Reserves offsets and file space for already validated batches and builds their write.
    /// Offsets are assigned by a fresh 16-byte prefix per batch (base offset, length, leader
    /// epoch — all outside the CRC); the record bytes go to disk as received, never copied.
    /// Every `prepareAppend` must be followed, in order, by `completeAppend`.
    public func prepareAppend(_ records: ByteBuffer, headers: [RecordBatchHeader], leaderEpoch: Int32 = 0) throws -> Preparation {
        try lock.withLock {
            guard !isClosed else { throw LogError.closed }
            if let reason = io.offlineReason { throw LogError.offline(reason) }
            // Idempotence: a retried batch is answered with its original offsets.
            if headers.count == 1, case .duplicate(let d) = try producerState.check(headers[0]) {
                return .duplicate(AppendResult(baseOffset: d.firstOffset, lastOffset: d.lastOffset, logStartOffset: startOffset))
            }
            for h in headers.dropFirst() where h.producerId >= 0 {
                if case .duplicate = try producerState.check(h) { throw LogError.outOfOrderSequence }
            }
            var active = segments[segments.count - 1]
            var position = inFlight > 0 ? reservedPosition : active.size
            let first = inFlight > 0 ? reservedNextOffset : active.nextOffset
            let total = headers.reduce(0) { $0 + $1.totalSize }
            // Kafka's rule for segment.ms: compare the incoming batch's timestamp (not the wall
            // clock) with the segment's first, so replayed old data does not roll on every append.
            let newest = headers.map(\.maxTimestamp).max() ?? -1
            let tooOld = active.firstTimestamp >= 0 && newest - active.firstTimestamp > config.rollMs
            // Index entries hold offsets relative to the segment's base as 32 bits: a batch whose
            // last offset would not fit starts a new segment, as Kafka rolls on offset overflow.
            let lastOffset = first + headers.reduce(Int64(0)) { $0 + Int64($1.lastOffsetDelta) + 1 } - 1
            let offsetOverflow = lastOffset - active.baseOffset > Int64(Int32.max)
            if position > 0 && (position + Int64(total) > Int64(config.segmentBytes) || tooOld || offsetOverflow) {
                if inFlight > 0 { return .afterInFlightWrites }
                active = try roll(at: first)
                position = 0
            }
            var next = first
            var buffers: [ByteBuffer] = []
            var assigned: [RecordBatchHeader] = []
            buffers.reserveCapacity(headers.count * 2)
            assigned.reserveCapacity(headers.count)
            var at = records.readerIndex
            for var h in headers {
                var prefix = ByteBuffer()
                prefix.reserveCapacity(16)
                prefix.writeInteger(next)
                prefix.writeInteger(h.batchLength)
                prefix.writeInteger(leaderEpoch)
                buffers.append(prefix)
                buffers.append(records.getSlice(at: at + 16, length: h.totalSize - 16)!)
                h.baseOffset = next
                h.partitionLeaderEpoch = leaderEpoch
                assigned.append(h)
                next = h.lastOffset + 1
                at += h.totalSize
            }
            var undo: [(Int64, ProducerStateTable.Entry?)] = []
            for h in assigned where h.producerId >= 0 {
                undo.append((h.producerId, producerState.producers[h.producerId]))
                producerState.record(h, firstOffset: h.baseOffset, lastOffset: h.lastOffset)
            }
            unflushedMessages += next - first
            let sync = unflushedMessages >= config.flushIntervalMessages
            if sync { unflushedMessages = 0 }
            inFlight += 1
            reservedPosition = position + Int64(total)
            reservedNextOffset = next
            return .ready(PreparedAppend(
                segment: active, headers: assigned, producerUndo: undo,
                write: DiskIO.Write(fd: active.fd, buffers: buffers, offset: position, sync: sync, linkNext: false),
                result: AppendResult(baseOffset: first, lastOffset: next - 1, logStartOffset: startOffset)))
        }
    }

    /// Makes a written append visible (indexes, end offset), or, when its write failed, cuts the
    /// file back to the last good batch. Appends prepared after a failed one fail too: they
    /// would leave a gap.
    public func completeAppend(_ prepared: PreparedAppend, error: LogError?) throws -> AppendResult {
        try lock.withLock {
            inFlight -= 1
            defer {
                if closeWhenIdle && inFlight == 0 {
                    segments.forEach { $0.close(persisting: false) }
                    closeWhenIdle = false
                }
            }
            let segment = prepared.segment
            func undo(_ failure: Error) -> Error {
                if !isClosed { segment.discardUncommitted() }
                for (pid, entry) in prepared.producerUndo.reversed() { producerState.restore(pid, entry) }
                reservedPosition = segment.size
                reservedNextOffset = segment.nextOffset
                return failure
            }
            guard error == nil, !isClosed, prepared.write.offset == segment.size else {
                throw undo(error ?? LogError.io("an earlier append to this log failed", EIO))
            }
            do {
                // Indexing can fail too (ENOSPC on an index file): then the batch is not visible,
                // its bytes are cut back and the next append takes its place, offsets unchanged.
                try segment.commit(headers: prepared.headers, at: prepared.write.offset, byteCount: prepared.write.byteCount, config: config)
            } catch {
                throw undo(error)
            }
            for h in prepared.headers where h.isTransactional {
                var marker: Int16?
                if h.isControl {
                    var whole = ByteBuffer()
                    for b in prepared.write.buffers { whole.writeImmutableBuffer(b) }
                    marker = TransactionIndex.markerType(whole)
                }
                transactions.observe(h, marker: marker)
            }
            if prepared.write.sync { lastFlushNanos = DispatchTime.now().uptimeNanoseconds }
            var result = prepared.result
            result.logStartOffset = startOffset
            return result
        }
    }

    /// Appends and waits for the write: the unbatched path (tests, tools). The broker goes through
    /// `LogAppender`, which submits many logs' appends at once.
    public func append(_ records: ByteBuffer, headers: [RecordBatchHeader], leaderEpoch: Int32 = 0) throws -> AppendResult {
        switch try prepareAppend(records, headers: headers, leaderEpoch: leaderEpoch) {
        case .ready(let prepared): return try completeAppend(prepared, error: io.submit([prepared.write])[0])
        case .duplicate(let result): return result
        case .afterInFlightWrites: throw LogError.io("append raced with a group commit", EBUSY)
        }
    }

    /// Seals the active segment and starts a new one. The sealed segment is synced in the
    /// background (inline when the background queue is full); once it is, the recovery point moves
    /// to `offset`, so a restart re-validates only what may not have reached the disk. Nothing here
    /// waits for the disk unless the flush policy asks for durability (then the new segment's
    /// directory entry is synced before any append to it can be acknowledged as durable).
    private func roll(at offset: Int64) throws -> LogSegment {
        let sealed = segments[segments.count - 1]
        try sealed.persistIndexes()
        try ProducerStateSnapshot(offset: offset, table: producerState, transactions: transactions).save(directory, durable: false)
        let segment = try LogSegment(directory: directory, baseOffset: offset)
        segments.append(segment)
        let durable = config.flushIntervalMessages != Int64.max || config.flushIntervalMs != Int64.max
        if durable { PosixFile.fsyncDirectory(directory) }
        let fd = dup(sealed.fd)
        let directory = self.directory
        let queued = fd >= 0 && io.background.enqueue(fd: fd) { [weak self] error in
            if error == 0 { PosixFile.fsyncDirectory(directory) }
            self?.sealedSegmentSynced(upTo: offset, error: error)
        }
        if !queued {
            if fd >= 0 { _ = Glibc.close(fd) }
            try sealed.flush(io: io)
            PosixFile.fsyncDirectory(directory)
            try persistRecoveryPoint(offset)
        }
        logger.debug("rolled segment", metadata: ["base": "\(offset)", "syncedInline": "\(!queued)"])
        return segment
    }

    /// Called on the background sync thread once a sealed segment (and the directory) is on disk.
    private func sealedSegmentSynced(upTo offset: Int64, error: Int32) {
        // A closed log was drained first (close) or deleted: nothing left to record.
        guard !lock.withLock({ isClosed }) else { return }
        if error != 0 {
            io.markOffline("syncing a sealed segment of \(directory) failed: errno \(error)")
            return
        }
        do { try persistRecoveryPoint(offset) } catch {
            logger.error("persisting the recovery point failed", metadata: ["error": "\(error)"])
        }
    }

    /// Everything below `offset` is on disk. Never moves back, whichever thread calls first.
    private func persistRecoveryPoint(_ offset: Int64) throws {
        try persistedRecoveryPoint.withLockedValue { persisted in
            guard offset > persisted else { return }
            try PosixFile.writeAtomically("\(directory)/recovery-point", Array("\(offset)\n".utf8))
            persisted = offset
        }
    }

    /// Reads from the first batch containing `offset`, up to `maxBytes`, but always at least one whole
    /// batch so a consumer can make progress past a batch larger than its limit (KIP-74).
    /// With `readCommitted`, nothing at or past the last stable offset (the first offset of a
    /// still-open transaction) is returned, and the aborted transactions in range are listed.
    public func read(from offset: Int64, maxBytes: Int, readCommitted: Bool = false) throws -> ReadResult {
        try lock.withLock {
            let end = segments[segments.count - 1].nextOffset
            guard offset >= startOffset, offset <= end else {
                throw LogError.offsetOutOfRange(requested: offset, logStart: startOffset, logEnd: end)
            }
            let stable = transactions.lastStableOffset(logEnd: end)
            var result = ReadResult(records: .empty, highWatermark: end, logStartOffset: startOffset, lastStableOffset: stable)
            let upTo = readCommitted ? stable : end
            guard offset < upTo else { return result }
            var i = segmentIndex(for: offset)
            while i < segments.count {
                if let (position, header) = try segments[i].position(of: offset, io: io) {
                    var count = max(maxBytes, header.totalSize)
                    if readCommitted, stable < end, let (stablePosition, _) = try segments[i].position(of: stable, io: io) {
                        count = min(count, Int(stablePosition - position))
                    }
                    guard count > 0 else { return result }
                    result.records = .file(try segments[i].slice(at: position, count: count))
                    if readCommitted {
                        result.abortedTransactions = transactions.aborted(from: offset, to: upTo).map { ($0.producerId, $0.firstOffset) }
                    }
                    return result
                }
                i += 1
            }
            return result
        }
    }

    /// First offset of the oldest open transaction, or the log end offset.
    public var lastStableOffset: Int64 {
        lock.withLock { transactions.lastStableOffset(logEnd: segments[segments.count - 1].nextOffset) }
    }

    /// Kafka's ListOffsets by timestamp: the first batch whose max timestamp is >= `timestamp`,
    /// reported as (base offset of that batch refined to the first such record, its timestamp).
    public func offset(forTimestamp timestamp: Int64) throws -> (offset: Int64, timestamp: Int64)? {
        try lock.withLock {
            for segment in segments where segment.maxTimestamp >= timestamp {
                guard let (position, header) = try segment.position(ofTimestamp: timestamp, io: io) else { continue }
                let bytes = try segment.read(io: io, at: position, count: header.totalSize)
                // Look inside the batch for the exact record, without materialising its records.
                if let found = try? Self.firstRecord(in: bytes, header: header, atOrAfter: timestamp) { return found }
                return (header.baseOffset, header.maxTimestamp)
            }
            return nil
        }
    }

    /// The first record of a stored batch whose timestamp is >= `timestamp`, read in place.
    static func firstRecord(in batch: ByteBuffer, header: RecordBatchHeader, atOrAfter timestamp: Int64) throws -> (offset: Int64, timestamp: Int64)? {
        guard let codec = header.compression, header.totalSize <= batch.readableBytes else { return nil }
        let payload = batch.getSlice(at: batch.readerIndex + RecordBatchHeader.size, length: header.totalSize - RecordBatchHeader.size)!
        var reader = RecordReader(body: try RecordCompression.decompress(payload, codec: codec))
        for _ in 0..<header.recordsCount {
            let record = try reader.next()
            let recordTimestamp = header.baseTimestamp &+ record.timestampDelta
            if recordTimestamp >= timestamp { return (header.baseOffset + Int64(record.offsetDelta), recordTimestamp) }
        }
        return nil
    }

    // MARK: retention

    /// Deletes whole sealed segments past `retention.ms` (by their newest record's timestamp) or
    /// beyond `retention.bytes`, oldest first, and moves the log start offset past them. The
    /// active segment is never deleted; `segment.ms` rolls it so it can age out.
    @discardableResult
    public func enforceRetention(nowMs: Int64 = PartitionLog.nowMs()) throws -> Int {
        try lock.withLock {
            guard !isClosed else { return 0 }
            let expired = producerState.expire(nowMs: nowMs, expirationMs: config.producerIdExpirationMs, keep: Set(transactions.open.keys))
            if expired > 0 { logger.debug("expired idle producer ids", metadata: ["count": "\(expired)"]) }
            guard config.cleanupPolicy.contains(.delete) else { return 0 }
            var total = segments.reduce(0) { $0 + $1.size }
            var deleted = 0
            while segments.count > 1 {
                let oldest = segments[0]
                let expired = config.retentionMs >= 0 && oldest.maxTimestamp >= 0 && nowMs - oldest.maxTimestamp > config.retentionMs
                let oversize = config.retentionBytes >= 0 && total - oldest.size >= config.retentionBytes
                guard expired || oversize || oldest.size == 0 else { break }
                segments.removeFirst()
                oldest.deleteFiles()
                total -= oldest.size
                deleted += 1
            }
            if deleted > 0 {
                try advanceStart(to: segments[0].baseOffset)
                logger.info("retention deleted segments", metadata: ["count": "\(deleted)", "logStartOffset": "\(startOffset)"])
            }
            return deleted
        }
    }

    /// DeleteRecords: makes `offset` the log start offset (-1 = the high watermark) and deletes
    /// segments entirely below it. Returns the new log start offset.
    public func deleteRecords(before offset: Int64) throws -> Int64 {
        try lock.withLock {
            guard !isClosed else { throw LogError.closed }
            let end = segments[segments.count - 1].nextOffset
            let target = offset == -1 ? end : offset
            guard target >= 0, target <= end else {
                throw LogError.offsetOutOfRange(requested: offset, logStart: startOffset, logEnd: end)
            }
            while segments.count > 1 && segments[1].baseOffset <= target {
                segments.removeFirst().deleteFiles()
            }
            try advanceStart(to: target)
            return startOffset
        }
    }

    /// Moves the log start offset forward (never back) and persists it before returning.
    private func advanceStart(to offset: Int64) throws {
        guard offset > startOffset else { return }
        startOffset = offset
        // Aborted transactions wholly below the start describe records no one can read any more.
        transactions.dropBefore(offset)
        try PosixFile.writeAtomically("\(directory)/log-start-offset", Array("\(offset)\n".utf8))
    }

    public static func nowMs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    private func segmentIndex(for offset: Int64) -> Int {
        var lo = 0, hi = segments.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if segments[mid].baseOffset <= offset { lo = mid } else { hi = mid - 1 }
        }
        return lo
    }

    /// fdatasync the active segment if `log.flush.interval.ms` has passed with unflushed data.
    public func flushIfDue(nowNanos: UInt64 = DispatchTime.now().uptimeNanoseconds) throws {
        try lock.withLock {
            guard !isClosed, unflushedMessages > 0, config.flushIntervalMs != Int64.max else { return }
            if nowNanos - lastFlushNanos >= UInt64(config.flushIntervalMs) * 1_000_000 {
                try segments[segments.count - 1].flush(io: io)
                markFlushed()
            }
        }
    }

    public func flush() throws {
        try lock.withLock {
            guard !isClosed else { return }
            try segments[segments.count - 1].flush(io: io)
            markFlushed()
        }
    }

    private func markFlushed() {
        unflushedMessages = 0
        lastFlushNanos = DispatchTime.now().uptimeNanoseconds
    }

    /// Flushes and closes every segment; later calls fail with `LogError.closed`.
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
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    private static func readOffsetFile(_ directory: String, _ name: String) -> Int64? {
        guard let text = try? String(contentsOfFile: "\(directory)/\(name)", encoding: .utf8) else { return nil }
        return Int64(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
