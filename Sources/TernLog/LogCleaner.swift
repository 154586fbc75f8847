import Foundation
import NIOCore
import TernProtocol

#if canImport(Glibc)
    import Glibc
#endif

/// Compaction (`cleanup.policy=compact`): keeps only the newest record of each key in sealed
/// segments, keeping every retained record's offset, and drops tombstones (null values) once they
/// are older than `delete.retention.ms`.
///
/// A pass builds a `CleanerOffsetMap` (key digest → newest offset) over the log from some offset
/// on, until the map's memory budget (`log.cleaner.dedupe.buffer.size`) is full or the log ends,
/// then rewrites every sealed segment before the point it reached: a record goes when the map
/// holds a newer offset for its key. A full map ends the pass early and the next one starts where
/// it stopped, so the budget bounds memory, not how much a compaction can clean.
///
/// Guarantees: the newest record of every key is never removed (only a newer offset of the same
/// key removes a record, and later appends only add newer ones); control batches are kept whole,
/// and so is a batch that does not decode (none is stored since produce validation, but older
/// logs may hold one); records without a key are kept; records of aborted or undecided
/// transactions neither count as a key's latest value nor are removed.
///
/// The log's lock is held only to take a snapshot of the segments and to swap cleaned ones in;
/// reading, deciding and writing the cleaned files happen without it, so appends and fetches of
/// the partition (and group commit for every partition) go on during a pass.
extension PartitionLog {
    public struct CleanStats: Equatable, Sendable {
        public var segmentsRewritten = 0
        public var recordsRemoved = 0
        /// Passes made: more than one when the key map filled up.
        public var passes = 0
    }

    @discardableResult
    public func compact(nowMs: Int64 = PartitionLog.nowMs()) throws -> CleanStats {
        let started = lock.withLock { () -> Bool in
            guard !isClosed, !compacting, config.cleanupPolicy.contains(.compact), segments.count > 1 else { return false }
            compacting = true
            return true
        }
        guard started else { return CleanStats() }
        defer { lock.withLock { compacting = false } }
        var stats = CleanStats()
        var from: Int64? = 0
        while let start = from {
            from = try compactionPass(from: start, nowMs: nowMs, stats: &stats)
        }
        if stats.segmentsRewritten > 0 {
            logger.info("compacted", metadata: ["segments": "\(stats.segmentsRewritten)", "removed": "\(stats.recordsRemoved)", "passes": "\(stats.passes)"])
        }
        return stats
    }

    /// One pass with a key map built from offset `from`; returns where the next pass starts, or nil
    /// when this one reached the end of the log.
    private func compactionPass(from: Int64, nowMs: Int64, stats: inout CleanStats) throws -> Int64? {
        // 1. Under the lock: the segments as they are now, each through a snapshot of its own
        //    (retention may delete one meanwhile; its descriptor must not be reused under us).
        let taken = try lock.withLock { () throws -> (views: [(LogSegment, SegmentSnapshot)], config: LogConfig)? in
            guard !isClosed, segments.count > 1 else { return nil }
            return (try segments.map { ($0, try SegmentSnapshot($0)) }, config)
        }
        guard let (snapshots, config) = taken else { return nil }
        let views = snapshots.map { ($0.0, $0.1.view) }
        stats.passes += 1

        // 2. Without the lock — appends, fetches and retention go on: which records survive, and
        //    the cleaned contents of each sealed segment, written beside it and synced.
        let undecidedOrAborted = try transactionalBatchesToKeep(views.map(\.1))
        var map = CleanerOffsetMap(budgetBytes: config.cleanerDedupeBufferBytes)
        var mapEnd: Int64?  // the first offset the map does not cover, when it filled up
        mapping: for (_, view) in views {
            var full = false
            try forEachBatch(in: view) { _, batch in
                guard !full, let batch, (batch.records.last?.offset ?? batch.baseOffset) >= from, !undecidedOrAborted.contains(batch.baseOffset) else { return }
                guard map.hasRoom(for: batch.records.count) else {
                    full = true
                    mapEnd = batch.baseOffset
                    return
                }
                for r in batch.records { if let k = r.key { map.record(k, at: r.offset) } }
            }
            if full { break mapping }
        }
        let tombstoneHorizon = nowMs - config.deleteRetentionMs
        var cleanedFiles: [(LogSegment, String)] = []
        defer { for (_, path) in cleanedFiles { unlink(path) } }  // those not swapped in
        for (segment, view) in views.dropLast() where segment.baseOffset < (mapEnd ?? Int64.max) {
            var out = ByteBuffer()
            var changed = false
            try forEachBatch(in: view) { raw, batch in
                guard var batch, !undecidedOrAborted.contains(batch.baseOffset) else {
                    // Control batches, batches that do not decode, and transactional batches
                    // that were aborted or are not decided yet: kept whole, never cleaned.
                    out.writeImmutableBuffer(raw)
                    return
                }
                let kept = batch.records.filter { r in
                    guard let key = r.key, let newest = map.newestOffset(of: key) else { return true }
                    if newest > r.offset { return false }
                    // The newest of its key (as far as this pass knows): a tombstone goes once
                    // it is past `delete.retention.ms`.
                    return newest < r.offset || r.value != nil || r.timestamp >= tombstoneHorizon
                }
                stats.recordsRemoved += batch.records.count - kept.count
                if kept.count == batch.records.count {
                    out.writeImmutableBuffer(raw)
                } else {
                    changed = true
                    if !kept.isEmpty {
                        batch.records = kept
                        try batch.encode(to: &out)
                    }
                }
            }
            if changed { cleanedFiles.append((segment, try writeCleaned(segment, out))) }
        }

        // 3. Swap each cleaned file in, if its segment is still this log's: the new segment is
        //    opened and indexed and the old index files retired without the lock; under it, only
        //    the rename and the list change.
        while let (segment, path) = cleanedFiles.first {
            cleanedFiles.removeFirst()
            if try swapIn(segment, cleaned: path, config: config) { stats.segmentsRewritten += 1 }
        }
        return mapEnd
    }

    /// Base offsets of transactional batches whose transaction was aborted or has no marker yet.
    /// Their records never count as a key's latest value — an aborted write must not make the
    /// cleaner delete the committed one — and the batches themselves are kept as they are.
    private func transactionalBatchesToKeep(_ views: [SegmentView]) throws -> Set<Int64> {
        var pending: [Int64: [Int64]] = [:]  // producer id → its batches awaiting a marker
        var keep = Set<Int64>()
        for view in views {
            var position: Int64 = 0
            while position < view.size {
                let header = try view.readHeader(io: io, at: position)
                if header.isTransactional && header.producerId >= 0 {
                    if header.isControl {
                        let marker = TransactionIndex.markerType(try view.read(io: io, at: position, count: header.totalSize))
                        let batches = pending.removeValue(forKey: header.producerId) ?? []
                        if marker != TransactionIndex.commitMarker { keep.formUnion(batches) }
                    } else {
                        pending[header.producerId, default: []].append(header.baseOffset)
                    }
                }
                position += Int64(header.totalSize)
            }
        }
        for batches in pending.values { keep.formUnion(batches) }
        return keep
    }

    /// Calls `body` with each stored batch's bytes and, unless it is a control batch or does not
    /// decode, its decoded form (any codec).
    private func forEachBatch(in segment: SegmentView, _ body: (ByteBuffer, RecordBatch?) throws -> Void) throws {
        var position: Int64 = 0
        while position < segment.size {
            let header = try segment.readHeader(io: io, at: position)
            let raw = try segment.read(io: io, at: position, count: header.totalSize)
            var decoding = raw
            try body(raw, header.isControl ? nil : try? RecordBatch.read(from: &decoding))
            position += Int64(header.totalSize)
        }
    }

    /// Writes a sealed segment's cleaned contents beside it (`.cleaned`, synced); returns the path.
    private func writeCleaned(_ segment: LogSegment, _ contents: ByteBuffer) throws -> String {
        let cleaned = segment.logPath + ".cleaned"
        let fd = try PosixFile.open(cleaned)
        defer { _ = Glibc.close(fd) }
        try PosixFile.truncate(fd, to: 0)
        if contents.readableBytes > 0 { try io.write(fd: fd, buffers: [contents], at: 0, sync: true) }
        return cleaned
    }

    /// Swaps a cleaned file in for its segment; false when the segment left the log meanwhile
    /// (retention, deletion, shutdown). The old index files go first (and are never written
    /// again), so a crash at any point leaves either the old log with no index (rebuilt on open)
    /// or the new log with no index — never an index that points into the wrong file. Readers
    /// holding the old file (a fetch's sendfile, a snapshot) keep reading it until they close it.
    private func swapIn(_ segment: LogSegment, cleaned: String, config: LogConfig) throws -> Bool {
        let fresh: LogSegment
        do {
            fresh = try LogSegment(directory: directory, baseOffset: segment.baseOffset, logFile: cleaned)
            try fresh.recover(io: io, config: config, logger: logger)
        } catch {
            unlink(cleaned)
            throw error
        }
        segment.retireIndexFiles()
        do { try io.syncDirectory(directory) } catch {
            fresh.close(persisting: false)
            unlink(cleaned)
            throw error
        }
        let swapped = try lock.withLock { () throws -> Bool in
            guard !isClosed, let index = segments.firstIndex(where: { $0 === segment }), index < segments.count - 1 else { return false }
            if rename(cleaned, segment.logPath) != 0 { throw LogError.io("rename \(cleaned)", errno) }
            segments[index] = fresh
            return true
        }
        guard swapped else {
            fresh.close(persisting: false)
            unlink(cleaned)
            return false
        }
        // The swap is made: whatever the directory's fsync says (a failure takes the directory
        // offline), the replaced segment's descriptor closes here; snapshots taken before hold
        // their own.
        let synced = Result { try io.syncDirectory(directory) }
        segment.close(persisting: false)
        try? fresh.persistIndexes()
        try synced.get()
        return true
    }
}
