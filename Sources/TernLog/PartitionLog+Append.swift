import Foundation
import NIOCore
import TernProtocol

#if canImport(Glibc)
    import Glibc
#endif

/// Appends: offsets and file space reserved under the lock (`prepareAppend`), the write submitted
/// by the appender without it, the batches made visible under the lock again (`completeAppend`).
extension PartitionLog {
    /// An append whose offsets and file position are reserved and whose write is ready to submit.
    public struct PreparedAppend {
        fileprivate let segment: LogSegment
        fileprivate let headers: [RecordBatchHeader]
        /// Which of the log's in-flight appends this is (`pendingProducerUndo`).
        fileprivate let ticket: UInt64
        /// The control record type of each transaction marker among `headers`, by index.
        fileprivate let markerTypes: [Int: Int16]
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

    /// What is left to do for a segment sealed by a roll, after the log's lock is released.
    struct SealedSegment {
        let segment: LogSegment
        /// A descriptor of the sealed segment (taken under the lock) for its fdatasync, or -1.
        let fd: Int32
        /// Where the next segment starts: the recovery point once the sealed one is on disk.
        let nextBase: Int64
        let producerSnapshot: ProducerStateSnapshot
        let durable: Bool
    }

    /// Who decided the batches' offsets.
    public enum Origin: Sendable, Equatable {
        /// Batches written on the partition's leader (a client's, a coordinator's): offsets
        /// assigned here, stamped with the leader's epoch — the one given, or by default the one
        /// this log leads in (`lead(inEpoch:)`).
        case leader(epoch: Int32? = nil)
        /// A coordinator's own transactional records (TxnOffsetCommit's offsets) on the leader:
        /// stamped like `.leader()`, without the idempotent-producer sequence checks, which
        /// only apply to what clients produce (Kafka's AppendOrigin.COORDINATOR).
        case coordinator
        /// The leader's batches copied by a follower: offsets and epochs kept as they are. They
        /// must start at or past this log's end and increase (a compacted leader leaves gaps).
        case replica
    }

    /// Reserves offsets and file space for already validated batches and builds their write.
    /// Offsets are assigned by a fresh 16-byte prefix per batch (base offset, length, leader
    /// epoch — all outside the CRC); the record bytes go to disk as received, never copied.
    /// Every `prepareAppend` must be followed, in order, by `completeAppend`.
    public func prepareAppend(_ records: ByteBuffer, headers: [RecordBatchHeader], leaderEpoch: Int32? = nil) throws -> Preparation {
        try prepareAppend(records, headers: headers, origin: .leader(epoch: leaderEpoch))
    }

    /// Each transaction marker among `headers` (batches back to back in `records`), by index,
    /// decoded once: its type feeds the transaction index, its coordinator epoch the producer state.
    private static func markers(_ records: ByteBuffer, _ headers: [RecordBatchHeader]) -> [Int: (type: Int16, coordinatorEpoch: Int32)] {
        var found: [Int: (type: Int16, coordinatorEpoch: Int32)] = [:]
        var at = records.readerIndex
        for (i, h) in headers.enumerated() {
            defer { at += h.totalSize }
            guard h.isControl, h.isTransactional, let marker = records.getSlice(at: at, length: h.totalSize).flatMap(TransactionIndex.marker) else {
                continue
            }
            found[i] = marker
        }
        return found
    }

    /// `sync`: this write ends with an fdatasync whatever the flush policy says.
    public func prepareAppend(_ records: ByteBuffer, headers: [RecordBatchHeader], origin: Origin, sync forceSync: Bool = false) throws -> Preparation {
        var sealed: SealedSegment?
        let preparation = try lock.withLock { () throws -> Preparation in
            guard !isClosed else { throw LogError.closed }
            if let reason = io.offlineReason { throw LogError.offline(reason) }
            guard !headers.isEmpty else { throw LogError.corruptBatch("no batches to append") }
            switch (origin, role) {
            case (_, .unreplicated), (.replica, .follower), (.leader, .leader), (.coordinator, .leader): break
            default: throw LogError.notInRole
            }
            let markers = Self.markers(records, headers)
            var active = segments[segments.count - 1]
            var position = inFlight > 0 ? reservedPosition : active.size
            let end = inFlight > 0 ? reservedNextOffset : active.nextOffset
            let first: Int64
            let lastOffset: Int64
            switch origin {
            case .coordinator:
                first = end
                lastOffset = first + headers.reduce(Int64(0)) { $0 + Int64($1.lastOffsetDelta) + 1 } - 1
            case .leader:
                // Idempotence: a retried batch is answered with its original offsets.
                if headers.count == 1, case .duplicate(let d) = try producerState.check(headers[0], coordinatorEpoch: markers[0]?.coordinatorEpoch) {
                    return .duplicate(AppendResult(baseOffset: d.firstOffset, lastOffset: d.lastOffset, logStartOffset: startOffset))
                }
                for h in headers.dropFirst() where h.producerId >= 0 {
                    if case .duplicate = try producerState.check(h) { throw LogError.outOfOrderSequence }
                }
                first = end
                lastOffset = first + headers.reduce(Int64(0)) { $0 + Int64($1.lastOffsetDelta) + 1 } - 1
            case .replica:
                // Kafka's UnexpectedAppendOffsetException: the leader's offsets must continue ours.
                var previous = end - 1
                for h in headers {
                    guard h.baseOffset > previous else {
                        throw LogError.unexpectedAppendOffset(expectedAtLeast: previous + 1, got: h.baseOffset)
                    }
                    previous = h.lastOffset
                }
                first = headers[0].baseOffset
                lastOffset = previous
            }
            let total = headers.reduce(0) { $0 + $1.totalSize }
            // Kafka's rule for segment.ms: compare the incoming batch's timestamp (not the wall
            // clock) with the segment's first, so replayed old data does not roll on every append.
            let newest = headers.map(\.maxTimestamp).max() ?? -1
            // Timestamps are the client's (any Int64 when the broker sets no bounds, as Kafka
            // allows): a difference that overflows is as far apart as timestamps get, so it rolls.
            let (age, overflow) = newest.subtractingReportingOverflow(active.firstTimestamp)
            let tooOld = active.firstTimestamp >= 0 && (overflow || age > config.rollMs)
            // Index entries hold offsets relative to the segment's base as 32 bits: a batch whose
            // last offset would not fit starts a new segment, as Kafka rolls on offset overflow.
            let offsetOverflow = lastOffset - active.baseOffset > Int64(Int32.max)
            if position > 0 && (position + Int64(total) > Int64(config.segmentBytes) || tooOld || offsetOverflow) {
                if inFlight > 0 { return .afterInFlightWrites }
                sealed = try startSegment(at: first)
                active = segments[segments.count - 1]
                position = 0
            }
            var next = first
            var buffers: [ByteBuffer] = []
            var assigned: [RecordBatchHeader] = []
            buffers.reserveCapacity(headers.count * 2)
            assigned.reserveCapacity(headers.count)
            var at = records.readerIndex
            for var h in headers {
                if origin != .replica {
                    let leaderEpoch = if case .leader(let given?) = origin { given } else { epochForAppends }
                    var prefix = ByteBuffer()
                    prefix.reserveCapacity(16)
                    prefix.writeInteger(next)
                    prefix.writeInteger(h.batchLength)
                    prefix.writeInteger(leaderEpoch)
                    buffers.append(prefix)
                    buffers.append(records.getSlice(at: at + 16, length: h.totalSize - 16)!)
                    h.baseOffset = next
                    h.partitionLeaderEpoch = leaderEpoch
                }
                assigned.append(h)
                next = h.lastOffset + 1
                at += h.totalSize
            }
            if origin == .replica {
                // The leader's batches as they came, in one buffer: a follower catching up may
                // write thousands of small batches at once (one buffer each would pass IOV_MAX).
                buffers.append(records.getSlice(at: records.readerIndex, length: at - records.readerIndex)!)
            }
            assert(next == lastOffset + 1, "the reserved range covers every batch")
            var undo: [(Int64, ProducerStateTable.Entry?)] = []
            for (i, h) in assigned.enumerated() where h.producerId >= 0 {
                undo.append((h.producerId, producerState.producers[h.producerId]))
                producerState.record(h, firstOffset: h.baseOffset, lastOffset: h.lastOffset, coordinatorEpoch: markers[i]?.coordinatorEpoch)
            }
            unflushedMessages += next - first
            let sync = forceSync || unflushedMessages >= config.flushIntervalMessages
            if sync { unflushedMessages = 0 }
            inFlight += 1
            reservedPosition = position + Int64(total)
            reservedNextOffset = next
            let ticket = nextAppendTicket
            nextAppendTicket += 1
            pendingProducerUndo.append((ticket, undo))
            assert(pendingProducerUndo.count <= inFlight, "undo kept only for appends in flight")
            return .ready(PreparedAppend(
                segment: active, headers: assigned, ticket: ticket, markerTypes: markers.mapValues(\.type),
                write: DiskIO.Write(fd: active.fd, buffers: buffers, offset: position, sync: sync, linkNext: false),
                result: AppendResult(baseOffset: first, lastOffset: next - 1, logStartOffset: startOffset)))
        }
        if let sealed, case .ready(let prepared) = preparation {
            do {
                try finishSealing(sealed)
            } catch {
                // The sealed segment could not be made durable (the directory is offline now):
                // this append does not go ahead either.
                _ = try? completeAppend(prepared, error: error as? LogError ?? .io("sealing a segment: \(error)", EIO))
                throw error
            }
        }
        return preparation
    }

    /// Makes a written append visible (indexes, end offset), or, when its write failed, cuts the
    /// file back to the last good batch. Appends prepared after a failed one fail too: they
    /// would leave a gap.
    public func completeAppend(_ prepared: PreparedAppend, error: LogError?) throws -> AppendResult {
        var newEpoch: LeaderEpochCache?
        defer {
            // Once per leader change: written after the log's lock is released.
            if let newEpoch {
                do { try epochFile.write(newEpoch) } catch {
                    logger.warning("writing the leader-epoch checkpoint failed", metadata: ["error": "\(error)"])
                }
            }
        }
        return try lock.withLock {
            inFlight -= 1
            assert(inFlight >= 0, "every completeAppend follows its prepareAppend")
            defer {
                if closeWhenIdle && inFlight == 0 {
                    segments.forEach { $0.close(persisting: false) }
                    closeWhenIdle = false
                }
            }
            let segment = prepared.segment
            func undo(_ failure: Error) -> Error {
                if !isClosed { segment.discardUncommitted() }
                // This append and every one prepared after it (they fail too: they would leave a
                // gap), newest first. Already undone when an earlier failure reached it.
                if let i = pendingProducerUndo.firstIndex(where: { $0.ticket == prepared.ticket }) {
                    for pending in pendingProducerUndo[i...].reversed() {
                        for (pid, entry) in pending.undo.reversed() { producerState.restore(pid, entry) }
                    }
                    pendingProducerUndo.removeSubrange(i...)
                }
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
            precondition(pendingProducerUndo.first?.ticket == prepared.ticket, "appends complete in preparation order")
            pendingProducerUndo.removeFirst()
            let latestEpoch = epochs.latestEpoch
            for h in prepared.headers { epochs.observe(epoch: h.partitionLeaderEpoch, at: h.baseOffset) }
            if epochs.latestEpoch != latestEpoch { newEpoch = epochs }
            // Each marker's type was read from its own batch (a follower's write carries many
            // batches, markers anywhere among them).
            for (i, h) in prepared.headers.enumerated() where h.isTransactional {
                transactions.observe(h, marker: h.isControl ? prepared.markerTypes[i] : nil)
            }
            if prepared.write.sync { lastFlushNanos = DispatchTime.now().uptimeNanoseconds }
            var result = prepared.result
            result.logStartOffset = startOffset
            return result
        }
    }

    /// Appends and waits for the write: the unbatched path (tests, tools). The broker goes through
    /// `LogAppender`, which submits many logs' appends at once.
    @discardableResult
    public func append(_ records: ByteBuffer, headers: [RecordBatchHeader], leaderEpoch: Int32? = nil) throws -> AppendResult {
        try append(records, headers: headers, origin: .leader(epoch: leaderEpoch))
    }

    @discardableResult
    public func append(_ records: ByteBuffer, headers: [RecordBatchHeader], origin: Origin) throws -> AppendResult {
        switch try prepareAppend(records, headers: headers, origin: origin) {
        case .ready(let prepared): return try completeAppend(prepared, error: io.submit([prepared.write])[0])
        case .duplicate(let result): return result
        case .afterInFlightWrites: throw LogError.io("append raced with a group commit", EBUSY)
        }
    }

    /// Seals the active segment and starts the next at `offset`. Lock held; no writes to the
    /// sealed segment are in flight. Only the new file is created here; `finishSealing` does the
    /// rest after the lock is released.
    private func startSegment(at offset: Int64) throws -> SealedSegment {
        precondition(inFlight == 0, "a segment is sealed only with no writes to it in flight")
        let sealed = segments[segments.count - 1]
        segments.append(try LogSegment(directory: directory, baseOffset: offset))
        return SealedSegment(
            segment: sealed, fd: dup(sealed.fd), nextBase: offset,
            producerSnapshot: ProducerStateSnapshot(offset: offset, table: producerState, transactions: transactions),
            durable: config.flushIntervalMessages != Int64.max || config.flushIntervalMs != Int64.max)
    }

    /// The disk side of a roll, on the appender's thread after the lock is released. The sealed
    /// segment is synced in the background (inline when the background queue is full); once it
    /// is, the recovery point moves past it, so a restart re-validates only what may not have
    /// reached the disk. Nothing here waits for the disk unless the flush policy asks for
    /// durability (then the new segment's directory entry is synced before any append to it can
    /// be acknowledged as durable).
    private func finishSealing(_ sealed: SealedSegment) throws {
        // Neither is needed for correctness — indexes are rebuilt and producer state replayed
        // from the log when missing — so a failure is logged and the roll goes on.
        do { try sealed.segment.persistIndexes() } catch {
            logger.warning("writing a sealed segment's index files failed", metadata: ["error": "\(error)"])
        }
        do { try sealed.producerSnapshot.save(directory, durable: false) } catch {
            logger.warning("writing the producer state snapshot failed", metadata: ["error": "\(error)"])
        }
        if sealed.durable { try io.syncDirectory(directory) }
        let (directory, io) = (self.directory, self.io)
        let offset = sealed.nextBase
        let queued = sealed.fd >= 0 && io.background.enqueue(fd: sealed.fd) { [weak self] syncError in
            var failure = syncError
            if failure == 0 {
                do { try io.syncDirectory(directory) } catch LogError.io(_, let code) { failure = code } catch { failure = EIO }
            }
            self?.sealedSegmentSynced(upTo: offset, error: failure)
        }
        if !queued {
            guard sealed.fd >= 0 else { throw LogError.io("dup", EMFILE) }
            defer { _ = Glibc.close(sealed.fd) }
            try io.sync(fd: sealed.fd)
            try io.syncDirectory(directory)
            try recoveryPoint.advance(to: offset)
        }
        logger.debug("rolled segment", metadata: ["base": "\(offset)", "syncedInline": "\(!queued)"])
    }

    /// Called on the background sync thread once a sealed segment (and the directory) is on disk.
    private func sealedSegmentSynced(upTo offset: Int64, error: Int32) {
        // A closed log was drained first (close) or deleted: nothing left to record.
        guard !lock.withLock({ isClosed }) else { return }
        if error != 0 {
            io.markOffline("syncing a sealed segment of \(directory) failed: errno \(error)")
            return
        }
        do { try recoveryPoint.advance(to: offset) } catch {
            logger.error("persisting the recovery point failed", metadata: ["error": "\(error)"])
        }
    }
}
