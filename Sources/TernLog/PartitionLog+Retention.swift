/// Retention and DeleteRecords: segments leave the list and the log start offset moves under the
/// lock; their files are unlinked and the new start offset written after it is released.
extension PartitionLog {
    /// Deletes whole sealed segments past `retention.ms` (by their newest record's timestamp) or
    /// beyond `retention.bytes`, oldest first, and moves the log start offset past them. The
    /// active segment is never deleted; `segment.ms` rolls it so it can age out. Also expires idle
    /// producer ids (`producer.id.expiration.ms`).
    @discardableResult
    public func enforceRetention(nowMs: Int64 = PartitionLog.nowMs()) throws -> Int {
        let (removed, start) = lock.withLock { () -> ([LogSegment], Int64) in
            guard !isClosed else { return ([], 0) }
            let expired = producerState.expire(nowMs: nowMs, expirationMs: config.producerIdExpirationMs, keep: Set(transactions.open.keys))
            if expired > 0 { logger.debug("expired idle producer ids", metadata: ["count": "\(expired)"]) }
            guard config.cleanupPolicy.contains(.delete) else { return ([], 0) }
            var total = segments.reduce(0) { $0 + $1.size }
            var removed: [LogSegment] = []
            while segments.count > 1 {
                let oldest = segments[0]
                let expired = config.retentionMs >= 0 && oldest.maxTimestamp >= 0 && nowMs - oldest.maxTimestamp > config.retentionMs
                let oversize = config.retentionBytes >= 0 && total - oldest.size >= config.retentionBytes
                guard expired || oversize || oldest.size == 0 else { break }
                removed.append(segments.removeFirst())
                total -= oldest.size
            }
            if !removed.isEmpty { moveStart(to: segments[0].baseOffset) }
            return (removed, startOffset)
        }
        guard !removed.isEmpty else { return 0 }
        try finishRemoving(removed, start: start)
        logger.info("retention deleted segments", metadata: ["count": "\(removed.count)", "logStartOffset": "\(start)"])
        return removed.count
    }

    /// DeleteRecords: makes `offset` the log start offset (-1 = the high watermark) and deletes
    /// segments entirely below it. Returns the new log start offset once it is on disk.
    public func deleteRecords(before offset: Int64) throws -> Int64 {
        let (removed, start) = try lock.withLock { () throws -> ([LogSegment], Int64) in
            guard !isClosed else { throw LogError.closed }
            // Records not yet on every in-sync replica cannot be deleted (Kafka bounds it by the HW).
            let end = currentHighWatermark
            let target = offset == -1 ? end : offset
            guard target >= 0, target <= end else {
                throw LogError.offsetOutOfRange(requested: offset, logStart: startOffset, logEnd: end)
            }
            var removed: [LogSegment] = []
            while segments.count > 1 && segments[1].baseOffset <= target { removed.append(segments.removeFirst()) }
            moveStart(to: target)
            return (removed, startOffset)
        }
        try finishRemoving(removed, start: start)
        return start
    }

    /// Moves the log start offset forward (never back) in memory. Lock held.
    private func moveStart(to offset: Int64) {
        guard offset > startOffset else { return }
        startOffset = offset
        // Aborted transactions wholly below the start describe records no one can read any more.
        transactions.dropBefore(offset)
    }

    /// Unlinks segments that left the list and persists the start offset. Readers still holding a
    /// snapshot of one keep reading it; a crash in between loses nothing, since a log opens with its
    /// start offset at least at its first segment's base.
    private func finishRemoving(_ removed: [LogSegment], start: Int64) throws {
        for segment in removed { segment.deleteFiles() }
        try persistedStart.advance(to: start)
    }
}
