import Foundation

/// `log.flush.interval.ms` and explicit flushes: the active segment is fdatasync'ed through a
/// snapshot's descriptor, without the log's lock, so appends and fetches go on during the sync.
extension PartitionLog {
    /// fdatasync the active segment if `log.flush.interval.ms` has passed with unflushed data.
    public func flushIfDue(nowNanos: UInt64 = DispatchTime.now().uptimeNanoseconds) throws {
        try flush { log in
            // In milliseconds, saturating: `flush.ms` is a topic config a client sets (any
            // non-negative long), and an append that synced may have moved `lastFlushNanos` past
            // `nowNanos`, which was read before the lock.
            log.unflushedMessages > 0 && log.config.flushIntervalMs != Int64.max
                && Int64((nowNanos > log.lastFlushNanos ? nowNanos - log.lastFlushNanos : 0) / 1_000_000) >= log.config.flushIntervalMs
        }
    }

    public func flush() throws {
        try flush { _ in true }
    }

    /// Syncs the active segment when `due` says so (asked under the lock); the messages counted as
    /// unflushed at that moment are flushed once the sync returns.
    private func flush(when due: (PartitionLog) -> Bool) throws {
        let found = try lock.withLock { () throws -> (SegmentSnapshot, messages: Int64)? in
            guard !isClosed, due(self) else { return nil }
            return (try SegmentSnapshot(segments[segments.count - 1]), unflushedMessages)
        }
        guard let (snapshot, messages) = found else { return }
        try io.sync(fd: snapshot.view.fd)
        lock.withLock {
            unflushedMessages = max(0, unflushedMessages - messages)
            lastFlushNanos = DispatchTime.now().uptimeNanoseconds
        }
    }
}
