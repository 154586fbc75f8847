import Foundation
import NIOCore
import TernProtocol

#if canImport(Glibc)
    import Glibc
#endif

/// What replication needs from a log: the high watermark (what consumers may see), the leader
/// epochs, and truncation of a tail the leader does not have. The log knows nothing of brokers:
/// the replica manager decides when to call these.
extension PartitionLog {
    /// Offsets below this are on every in-sync replica; consumers read no further. Equal to the
    /// log end offset while the log is not replicated (a single broker).
    public var highWatermark: Int64 { lock.withLock { currentHighWatermark } }

    /// Lock held.
    var currentHighWatermark: Int64 {
        let end = segments[segments.count - 1].nextOffset
        return tracksHighWatermark ? min(hw, end) : end
    }

    /// Turns high-watermark tracking on (the partition is replicated in a cluster): from now on the
    /// replica manager moves it. It starts where it was last checkpointed.
    public func trackHighWatermark() {
        lock.withLock { tracksHighWatermark = true }
    }

    /// Leader: moves the high watermark forward to `offset` (never past the log end, never back).
    /// Returns whether it moved.
    @discardableResult
    public func advanceHighWatermark(to offset: Int64) -> Bool {
        lock.withLock {
            precondition(tracksHighWatermark, "the high watermark of an unreplicated log is its end")
            let target = min(offset, segments[segments.count - 1].nextOffset)
            guard target > hw else { return false }
            hw = target
            return true
        }
    }

    /// Follower: takes the leader's high watermark, bounded by what it has itself.
    @discardableResult
    public func followHighWatermark(_ leaders: Int64) -> Bool {
        lock.withLock {
            precondition(tracksHighWatermark, "the high watermark of an unreplicated log is its end")
            let target = max(min(leaders, segments[segments.count - 1].nextOffset), startOffset)
            guard target != hw else { return false }
            hw = target
            return true
        }
    }

    /// Writes the high watermark to disk if it changed (the replica manager calls it every few
    /// seconds, as Kafka checkpoints `replication-offset-checkpoint`).
    public func checkpointHighWatermark() throws {
        let (tracked, value) = lock.withLock { (tracksHighWatermark, hw) }
        guard tracked, value != persistedHighWatermark.current else { return }
        try persistedHighWatermark.reset(to: value)
    }

    /// This replica leads the partition in `epoch`: leader appends (clients', coordinators') are
    /// taken from now on, stamped with it; a follower's copies are refused.
    public func lead(inEpoch epoch: Int32) {
        lock.withLock {
            // The controller only ever raises epochs; metadata edited by hand must not make a
            // leader stamp an epoch older than its log's (followers would miss the divergence).
            assert(epoch >= epochs.latestEpoch, "a leader's epoch is at least every epoch in its log")
            epochForAppends = max(epoch, epochs.latestEpoch)
            role = .leader
        }
    }

    /// This replica no longer leads the partition (it follows another broker, or the partition has
    /// no leader): from now on only a follower's copies of the leader's batches are taken. A leader
    /// write accepted earlier and still queued is refused (`LogError.notInRole`) instead of landing
    /// between copied batches, where no leader-epoch comparison could find it.
    public func follow() {
        lock.withLock { role = .follower }
    }

    public var currentRole: ReplicaRole { lock.withLock { role } }

    /// The leader epoch of the last batch in the log (-1 for none): a follower's `last_fetched_epoch`.
    public var latestEpoch: Int32 { lock.withLock { epochs.latestEpoch } }

    public var leaderEpochs: LeaderEpochCache { lock.withLock { epochs } }

    /// OffsetForLeaderEpoch: the largest epoch <= `epoch` in this log and where it ended.
    public func endOffset(forEpoch epoch: Int32) -> (epoch: Int32, endOffset: Int64) {
        lock.withLock { epochs.endOffset(for: epoch, logEnd: segments[segments.count - 1].nextOffset) }
    }

    /// Removes every batch from the one holding `offset` on (a divergent tail), then rebuilds what
    /// was derived from them: indexes, producer state, the transaction index, the epoch cache and
    /// the high watermark. Needs no appends in flight (the follower's fetcher is the only writer and
    /// waits for its appends). Rare, and holds the lock across the disk work of cutting the files:
    /// a follower's log has no consumer reads to stall.
    public func truncate(to offset: Int64) throws {
        var removed: [LogSegment] = []
        let cache = try lock.withLock { () throws -> LeaderEpochCache? in
            guard !isClosed else { throw LogError.closed }
            guard inFlight == 0 else { throw LogError.busy }
            let end = segments[segments.count - 1].nextOffset
            guard offset < end else { return nil }
            let target = max(offset, startOffset)
            while segments.count > 1 && segments[segments.count - 1].baseOffset >= target {
                removed.append(segments.removeLast())
            }
            let last = segments[segments.count - 1]
            if let (position, _) = try last.position(of: target, io: io) {
                try last.truncate(toPosition: position, io: io, config: config, logger: logger)
            }
            let newEnd = last.nextOffset
            reservedNextOffset = newEnd
            reservedPosition = last.size
            epochs.truncate(fromEnd: newEnd)
            hw = min(hw, newEnd)
            try rebuildProducerState()
            if recoveryPoint.current > newEnd { try recoveryPoint.reset(to: newEnd) }
            // A snapshot past the new end would be loaded at the next start as if it were valid.
            try ProducerStateSnapshot(offset: newEnd, table: producerState, transactions: transactions).save(directory)
            logger.info("truncated a divergent log tail", metadata: ["from": "\(offset)", "oldEnd": "\(end)", "newEnd": "\(newEnd)"])
            return epochs
        }
        removed.forEach { $0.deleteFiles() }
        if let cache { try epochFile.write(cache) }
    }

    /// Drops everything and starts empty at `offset` (a follower whose fetch offset fell below the
    /// leader's log start, or past its end with no common history).
    public func truncateFully(startingAt offset: Int64) throws {
        let cache = try lock.withLock { () throws -> LeaderEpochCache in
            guard !isClosed else { throw LogError.closed }
            guard inFlight == 0 else { throw LogError.busy }
            // The old files go first: one of them may carry the new segment's name.
            segments.forEach { $0.deleteFiles() }
            segments = [try LogSegment(directory: directory, baseOffset: offset)]
            startOffset = offset
            try persistedStart.reset(to: offset)
            try recoveryPoint.reset(to: offset)
            reservedNextOffset = offset
            reservedPosition = 0
            epochs.clear()
            hw = offset
            producerState = ProducerStateTable()
            transactions = TransactionIndex()
            try ProducerStateSnapshot(offset: offset, table: producerState, transactions: transactions).save(directory)
            logger.info("log emptied to restart from the leader", metadata: ["startOffset": "\(offset)"])
            return epochs
        }
        try epochFile.write(cache)
    }
}

/// Who may append to a log. A single broker's logs take every write (`unreplicated`); a replica in
/// a cluster takes leader and coordinator writes only while it leads, and the leader's copied
/// batches only while it follows — the role changes under the log's lock, so a write accepted in
/// one role can never land in the other.
public enum ReplicaRole: Sendable, Equatable {
    case unreplicated, leader, follower
}
