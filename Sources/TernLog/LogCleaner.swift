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
/// latest value nor are removed. The log's lock is held while
/// cleaning, so a partition does not take appends during its own cleaning pass.
extension PartitionLog {
    public struct CleanStats: Equatable, Sendable {
        public var segmentsRewritten = 0
        public var recordsRemoved = 0
    }

    @discardableResult
    public func compact(nowMs: Int64 = PartitionLog.nowMs()) throws -> CleanStats {
        try lock.withLock {
            var stats = CleanStats()
            guard !isClosed, config.cleanupPolicy.contains(.compact), segments.count > 1, inFlightAppends == 0 else { return stats }
            let undecidedOrAborted = try transactionalBatchesToKeep()
            var latest: [ByteBuffer: Int64] = [:]
            for segment in segments {
                try forEachBatch(in: segment) { _, batch in
                    guard let batch, !undecidedOrAborted.contains(batch.baseOffset) else { return }
                    for r in batch.records { if let k = r.key { latest[k] = r.offset } }
                }
            }
            let tombstoneHorizon = nowMs - config.deleteRetentionMs
            for index in 0..<(segments.count - 1) {
                let segment = segments[index]
                var out = ByteBuffer()
                var changed = false
                try forEachBatch(in: segment) { raw, batch in
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
                if changed {
                    segments[index] = try replace(segment, with: out)
                    stats.segmentsRewritten += 1
                }
            }
            if stats.segmentsRewritten > 0 {
                logger.info("compacted", metadata: ["segments": "\(stats.segmentsRewritten)", "removed": "\(stats.recordsRemoved)"])
            }
            return stats
        }
    }

    /// Base offsets of transactional batches whose transaction was aborted or has no marker yet.
    /// Their records never count as a key's latest value — an aborted write must not make the
    /// cleaner delete the committed one — and the batches themselves are kept as they are.
    private func transactionalBatchesToKeep() throws -> Set<Int64> {
        var pending: [Int64: [Int64]] = [:]  // producer id → its batches awaiting a marker
        var keep = Set<Int64>()
        for segment in segments {
            var position: Int64 = 0
            while position < segment.size {
                let header = try segment.readHeader(io: io, at: position)
                if header.isTransactional && header.producerId >= 0 {
                    if header.isControl {
                        let marker = TransactionIndex.markerType(try segment.read(io: io, at: position, count: header.totalSize))
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
    private func forEachBatch(in segment: LogSegment, _ body: (ByteBuffer, RecordBatch?) throws -> Void) throws {
        var position: Int64 = 0
        while position < segment.size {
            let header = try segment.readHeader(io: io, at: position)
            let raw = try segment.read(io: io, at: position, count: header.totalSize)
            var decoding = raw
            try body(raw, header.isControl ? nil : try? RecordBatch.read(from: &decoding))
            position += Int64(header.totalSize)
        }
    }

    /// Swaps in the cleaned contents of a sealed segment. The old index files go first, so a crash
    /// at any point leaves either the old log with no index (rebuilt on open) or the new log with
    /// no index — never an index that points into the wrong file.
    private func replace(_ segment: LogSegment, with contents: ByteBuffer) throws -> LogSegment {
        let cleaned = segment.logPath + ".cleaned"
        let fd = try PosixFile.open(cleaned)
        defer { _ = Glibc.close(fd) }
        try PosixFile.truncate(fd, to: 0)
        if contents.readableBytes > 0 { try io.write(fd: fd, buffers: [contents], at: 0, sync: true) }
        segment.deleteIndexFiles()
        PosixFile.fsyncDirectory(directory)
        if rename(cleaned, segment.logPath) != 0 { throw LogError.io("rename \(cleaned)", errno) }
        PosixFile.fsyncDirectory(directory)
        let fresh = try LogSegment(directory: directory, baseOffset: segment.baseOffset)
        try fresh.openSealed(io: io, config: config, logger: logger)
        return fresh
    }
}
