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
/// Guarantees: the newest record of every key is never removed (the offset map is built over the
/// whole log, active segment included); control batches are kept whole, and so is a batch that does
/// not decode (none is stored since produce validation, but older logs may hold one); records
/// without a key are kept; records of aborted or undecided transactions neither count as a key's
/// latest value nor are removed.
///
/// The log's lock is held only to take a snapshot of the segments and to swap cleaned ones in;
/// reading, deciding and writing the cleaned files happen without it, so appends and fetches of
/// the partition (and group commit for every partition) go on during a pass.
extension PartitionLog {
    public struct CleanStats: Equatable, Sendable {
        public var segmentsRewritten = 0
        public var recordsRemoved = 0
    }

    @discardableResult
    public func compact(nowMs: Int64 = PartitionLog.nowMs()) throws -> CleanStats {
        var stats = CleanStats()
        // 1. Under the lock: the segments as they are now, each through a duplicated descriptor
        //    (retention may delete one meanwhile; its number must not be reused under us).
        let snapshot: (views: [(LogSegment, SegmentView)], config: LogConfig)? = try lock.withLock {
            guard !isClosed, !compacting, config.cleanupPolicy.contains(.compact), segments.count > 1 else { return nil }
            var views: [(LogSegment, SegmentView)] = []
            do {
                for segment in segments {
                    let copy = dup(segment.fd)
                    if copy < 0 { throw LogError.io("dup", errno) }
                    views.append((segment, segment.view(fd: copy)))
                }
            } catch {
                for (_, view) in views { Glibc.close(view.fd) }
                throw error
            }
            compacting = true
            return (views, config)
        }
        guard let (views, config) = snapshot else { return stats }
        defer {
            for (_, view) in views { Glibc.close(view.fd) }
            lock.withLock { compacting = false }
        }

        // 2. Without the lock — appends, fetches and retention go on: which records survive, and
        //    the cleaned contents of each sealed segment, written beside it and synced.
        let undecidedOrAborted = try transactionalBatchesToKeep(views.map(\.1))
        var latest: [ByteBuffer: Int64] = [:]
        for (_, view) in views {
            try forEachBatch(in: view) { _, batch in
                guard let batch, !undecidedOrAborted.contains(batch.baseOffset) else { return }
                for r in batch.records { if let k = r.key { latest[k] = r.offset } }
            }
        }
        let tombstoneHorizon = nowMs - config.deleteRetentionMs
        var cleanedFiles: [(LogSegment, String)] = []
        defer { for (_, path) in cleanedFiles { unlink(path) } }  // those not swapped in
        for (segment, view) in views.dropLast() {
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
                    guard let key = r.key else { return true }
                    if latest[key] != r.offset { return false }
                    return r.value != nil || r.timestamp >= tombstoneHorizon
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

        // 3. Under the lock, briefly: swap in each cleaned segment that is still this log's.
        try lock.withLock {
            guard !isClosed else { return }
            while let (segment, path) = cleanedFiles.first {
                cleanedFiles.removeFirst()
                guard let index = segments.firstIndex(where: { $0 === segment }), index < segments.count - 1 else {
                    unlink(path)
                    continue
                }
                segments[index] = try swapIn(segment, cleaned: path, config: config)
                stats.segmentsRewritten += 1
            }
        }
        if stats.segmentsRewritten > 0 {
            logger.info("compacted", metadata: ["segments": "\(stats.segmentsRewritten)", "removed": "\(stats.recordsRemoved)"])
        }
        return stats
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

    /// Swaps a cleaned file in for its segment. Lock held. The old index files go first, so a
    /// crash at any point leaves either the old log with no index (rebuilt on open) or the new log
    /// with no index — never an index that points into the wrong file. Readers holding the old
    /// file (a fetch's sendfile) keep reading it until they close it.
    private func swapIn(_ segment: LogSegment, cleaned: String, config: LogConfig) throws -> LogSegment {
        segment.deleteIndexFiles()
        PosixFile.fsyncDirectory(directory)
        if rename(cleaned, segment.logPath) != 0 { throw LogError.io("rename \(cleaned)", errno) }
        PosixFile.fsyncDirectory(directory)
        let fresh = try LogSegment(directory: directory, baseOffset: segment.baseOffset)
        try fresh.openSealed(io: io, config: config, logger: logger)
        return fresh
    }
}
