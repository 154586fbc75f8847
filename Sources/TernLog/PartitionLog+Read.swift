import NIOCore
import TernProtocol

/// Reads: the lock is held only to look the position up in memory and take a `SegmentSnapshot`;
/// the header walk (page-cache preads) runs without it, so a fetch never waits for an append's
/// bookkeeping and an append never waits for a fetch's reads.
extension PartitionLog {
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

    /// What a read found under the lock: the segment to walk and where its indexes say to start.
    private struct ReadTarget {
        let snapshot: SegmentSnapshot
        let from: Int64
        /// The read's bound (high watermark, last stable offset) inside this segment: where to
        /// start looking for it, to cut the read there.
        let bound: (offset: Int64, from: Int64)?
        let aborted: [(producerId: Int64, firstOffset: Int64)]
    }

    /// Reads from the first batch containing `offset`, up to `maxBytes`, but always at least one whole
    /// batch so a consumer can make progress past a batch larger than its limit (KIP-74).
    /// Consumers read below the high watermark; with `readCommitted`, nothing at or past the last
    /// stable offset (the first offset of a still-open transaction) is returned, and the aborted
    /// transactions in range are listed. A follower (`toLogEnd`) reads everything written.
    public func read(from offset: Int64, maxBytes: Int, readCommitted: Bool = false, toLogEnd: Bool = false) throws -> ReadResult {
        var result = ReadResult(records: .empty, highWatermark: 0, logStartOffset: 0)
        let found = try lock.withLock { () throws -> ReadTarget? in
            let end = segments[segments.count - 1].nextOffset
            guard offset >= startOffset, offset <= end else {
                throw LogError.offsetOutOfRange(requested: offset, logStart: startOffset, logEnd: end)
            }
            let highWatermark = currentHighWatermark
            let stable = min(transactions.lastStableOffset(logEnd: end), highWatermark)
            result = ReadResult(records: .empty, highWatermark: highWatermark, logStartOffset: startOffset, lastStableOffset: stable)
            let upTo = toLogEnd ? end : readCommitted ? stable : highWatermark
            guard offset < upTo else { return nil }
            // The first segment holding a batch that ends at or after `offset`: compaction can
            // empty a range, a segment or the end of a sealed segment.
            var i = segmentIndex(for: offset)
            while i < segments.count && (segments[i].nextOffset <= offset || segments[i].size == 0) { i += 1 }
            guard i < segments.count else { return nil }
            let segment = segments[i]
            return ReadTarget(
                snapshot: try SegmentSnapshot(segment),
                from: segment.indexedPosition(atOrBefore: offset),
                bound: upTo < segment.nextOffset ? (upTo, segment.indexedPosition(atOrBefore: upTo)) : nil,
                aborted: readCommitted ? transactions.aborted(from: offset, to: upTo).map { ($0.producerId, $0.firstOffset) } : [])
        }
        guard let target = found else { return result }
        let view = target.snapshot.view
        guard let (position, header) = try view.firstBatch(containing: offset, from: target.from, io: io) else { return result }
        var count = max(maxBytes, header.totalSize)
        if let bound = target.bound, let (boundPosition, _) = try view.firstBatch(containing: bound.offset, from: bound.from, io: io) {
            count = min(count, Int(boundPosition - position))
        }
        guard count > 0 else { return result }
        result.records = .file(target.snapshot.slice(at: position, count: count))
        result.abortedTransactions = target.aborted
        return result
    }

    /// First offset of the oldest open transaction, or the high watermark.
    public var lastStableOffset: Int64 {
        lock.withLock { min(transactions.lastStableOffset(logEnd: segments[segments.count - 1].nextOffset), currentHighWatermark) }
    }

    /// Kafka's ListOffsets by timestamp: the first batch whose max timestamp is >= `timestamp`,
    /// reported as (base offset of that batch refined to the first such record, its timestamp).
    public func offset(forTimestamp timestamp: Int64) throws -> (offset: Int64, timestamp: Int64)? {
        var searchedBelow = Int64.min
        while true {
            // Under the lock: the next segment that may hold such a batch, and where to start.
            let found = try lock.withLock { () throws -> (SegmentSnapshot, from: Int64, base: Int64)? in
                guard let segment = segments.first(where: { $0.baseOffset > searchedBelow && $0.maxTimestamp >= timestamp }) else { return nil }
                return (try SegmentSnapshot(segment), segment.indexedPosition(forTimestamp: timestamp), segment.baseOffset)
            }
            guard let (snapshot, from, base) = found else { return nil }
            let view = snapshot.view
            if let (position, header) = try view.firstBatch(withTimestampAtLeast: timestamp, from: from, io: io) {
                let bytes = try view.read(io: io, at: position, count: header.totalSize)
                // Look inside the batch for the exact record, without materialising its records.
                if let found = try? Self.firstRecord(in: bytes, header: header, atOrAfter: timestamp) { return found }
                return (header.baseOffset, header.maxTimestamp)
            }
            searchedBelow = base
        }
    }

    /// KIP-734's MAX_TIMESTAMP: the record with the largest timestamp in the log (the first one, if
    /// several share it) and that timestamp; nil for an empty log.
    public func offsetOfMaxTimestamp() throws -> (offset: Int64, timestamp: Int64)? {
        let found = try lock.withLock { () throws -> (SegmentSnapshot, from: Int64, timestamp: Int64)? in
            // The earliest segment holding the log's largest timestamp, as Kafka picks it.
            var best: LogSegment?
            for segment in segments where segment.maxTimestamp > (best?.maxTimestamp ?? -1) { best = segment }
            guard let best else { return nil }
            return (try SegmentSnapshot(best), best.indexedPosition(forTimestamp: best.maxTimestamp), best.maxTimestamp)
        }
        guard let (snapshot, from, newest) = found else { return nil }
        let view = snapshot.view
        guard let (position, header) = try view.firstBatch(withTimestampAtLeast: newest, from: from, io: io) else { return nil }
        let bytes = try view.read(io: io, at: position, count: header.totalSize)
        if let record = try? Self.firstRecord(in: bytes, header: header, atOrAfter: newest) { return record }
        return (header.baseOffset, header.maxTimestamp)
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
}
