import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import TernGroups
import TernLog
import TernProtocol

/// The transaction coordinator of a single broker: transactional ids → producer id and epoch,
/// the partitions and group offsets of each open transaction, and the commit/abort markers that
/// end it. Metadata is written to `__transaction_state` before each reply that depends on it.
final class TransactionCoordinator: @unchecked Sendable {
    static let stateTopic = "__transaction_state"

    private let lock = NIOLock()
    private var transactions: [String: TransactionMetadata] = [:]
    private let topics: TopicRegistry
    private let appender: LogAppender
    private let groups: GroupCoordinator
    private let fetchWaiters: FetchWaiters
    private let allocateProducerId: @Sendable () -> Int64
    private let stateLog: PartitionLog
    private let logger: Logger

    init(topics: TopicRegistry, appender: LogAppender, groups: GroupCoordinator, fetchWaiters: FetchWaiters,
         allocateProducerId: @escaping @Sendable () -> Int64, stateLog: PartitionLog, logger: Logger) throws {
        self.topics = topics
        self.appender = appender
        self.groups = groups
        self.fetchWaiters = fetchWaiters
        self.allocateProducerId = allocateProducerId
        self.stateLog = stateLog
        self.logger = logger
        try load()
    }

    /// Replays `__transaction_state`; transactions a crash left open are aborted, ones that were
    /// committing are committed.
    private func load() throws {
        var next = stateLog.logStartOffset
        while next < stateLog.logEndOffset {
            var bytes = try stateLog.read(from: next, maxBytes: 4 << 20).records.bytes
            var progressed = false
            while bytes.readableBytes >= RecordBatchHeader.size,
                let header = try? RecordBatchHeader(from: bytes, at: bytes.readerIndex), bytes.readableBytes >= header.totalSize
            {
                let batch = try RecordBatch.read(from: &bytes)
                for r in batch.records where r.offset >= next {
                    guard let key = r.key.map({ String(buffer: $0) }) else { continue }
                    if let value = r.value, let meta = try? JSONDecoder().decode(TransactionMetadata.self, from: Data(value.readableBytesView)) {
                        transactions[key] = meta
                    } else {
                        transactions[key] = nil
                    }
                }
                next = header.lastOffset + 1
                progressed = true
            }
            if !progressed { break }
        }
        for (id, meta) in transactions {
            switch meta.state {
            case .ongoing, .prepareAbort: _ = complete(id, commit: false, bumpEpoch: false)
            case .prepareCommit: _ = complete(id, commit: true, bumpEpoch: false)
            default: break
            }
        }
        logger.info("loaded transactions", metadata: ["count": "\(transactions.count)"])
    }

    private func persist(_ meta: TransactionMetadata) -> EventLoopFuture<Void> {
        let loop = groups.eventLoop
        let promise = loop.makePromise(of: Void.self)
        do {
            var out = ByteBuffer()
            let value = try JSONEncoder().encode(meta)
            try RecordBatch(records: [Record(timestamp: PartitionLog.nowMs(), key: ByteBuffer(string: meta.transactionalId),
                                             value: ByteBuffer(bytes: value))]).encode(to: &out)
            appender.append(out, headers: try RecordBatchHeader.validateAll(out), to: stateLog) { result in
                switch result {
                case .success: promise.succeed(())
                case .failure(let e): promise.fail(e)
                }
            }
        } catch {
            promise.fail(error)
        }
        return promise.futureResult
    }

    // MARK: requests

    func initProducerId(transactionalId: String, timeoutMs: Int32) -> EventLoopFuture<(Int64, Int16)> {
        let previous: TransactionMetadata? = lock.withLock { transactions[transactionalId] }
        // A new instance of this transactional id: abort what the old one left open, with the
        // bumped epoch on the markers, which fences the old instance on every partition it used.
        let aborted: EventLoopFuture<Void>
        if let previous, previous.state == .ongoing || previous.state == .prepareAbort {
            aborted = complete(transactionalId, commit: false, bumpEpoch: true)
        } else if let previous, previous.state == .prepareCommit {
            aborted = complete(transactionalId, commit: true, bumpEpoch: false)
        } else {
            aborted = groups.eventLoop.makeSucceededVoidFuture()
        }
        return aborted.flatMap { [self] in
            let meta: TransactionMetadata = lock.withLock {
                var m = transactions[transactionalId]
                    ?? TransactionMetadata(transactionalId: transactionalId, producerId: allocateProducerId(), producerEpoch: -1, timeoutMs: timeoutMs)
                if m.producerEpoch == Int16.max - 1 {
                    m.producerId = allocateProducerId()
                    m.producerEpoch = -1
                }
                m.producerEpoch += 1
                m.timeoutMs = timeoutMs
                m.state = .empty
                m.partitions = []
                m.pendingOffsets = [:]
                transactions[transactionalId] = m
                return m
            }
            return persist(meta).map { (meta.producerId, meta.producerEpoch) }
        }
    }

    /// Checks the producer id/epoch of a request; returns the error code or nil.
    private func validate(_ id: String, _ producerId: Int64, _ epoch: Int16) -> KafkaError? {
        guard let m = transactions[id] else { return .invalidProducerIdMapping }
        guard m.producerId == producerId else { return .invalidProducerIdMapping }
        guard m.producerEpoch == epoch else { return .invalidProducerEpoch }
        if m.state == .prepareCommit || m.state == .prepareAbort { return .concurrentTransactions }
        return nil
    }

    func addPartitions(_ id: String, producerId: Int64, epoch: Int16, _ partitions: [(String, Int32)]) -> EventLoopFuture<KafkaError> {
        let loop = groups.eventLoop
        let result: Result<TransactionMetadata, KafkaError> = lock.withLock {
            if let error = validate(id, producerId, epoch) { return .failure(error) }
            var m = transactions[id]!
            for (t, p) in partitions {
                guard topics.topic(t)?.partition(p) != nil else { return .failure(.unknownTopicOrPartition) }
                m.partitions.insert(.init(topic: t, partition: p))
            }
            if m.state != .ongoing {
                m.state = .ongoing
                m.startedMs = PartitionLog.nowMs()
            }
            transactions[id] = m
            return .success(m)
        }
        switch result {
        case .failure(let e): return loop.makeSucceededFuture(e)
        case .success(let m): return persist(m).map { KafkaError.none }.recover { _ in .coordinatorNotAvailable }
        }
    }

    func addOffsets(_ id: String, producerId: Int64, epoch: Int16, group: String) -> EventLoopFuture<KafkaError> {
        let loop = groups.eventLoop
        return loop.makeSucceededFuture(lock.withLock {
            if let error = validate(id, producerId, epoch) { return error }
            if transactions[id]!.state != .ongoing {
                transactions[id]!.state = .ongoing
                transactions[id]!.startedMs = PartitionLog.nowMs()
            }
            transactions[id]!.pendingOffsets[group, default: []] += []
            return .none
        })
    }

    func stageOffsets(_ id: String, producerId: Int64, epoch: Int16, group: String, _ offsets: [TransactionMetadata.PendingOffset]) -> KafkaError {
        lock.withLock {
            if let error = validate(id, producerId, epoch) { return error }
            transactions[id]!.pendingOffsets[group, default: []] += offsets
            return .none
        }
    }

    func endTransaction(_ id: String, producerId: Int64, epoch: Int16, commit: Bool) -> EventLoopFuture<KafkaError> {
        let loop = groups.eventLoop
        let check: KafkaError? = lock.withLock {
            if let error = validate(id, producerId, epoch) { return error }
            let state = transactions[id]!.state
            // Ending an empty transaction is fine (the client may not have sent anything).
            if state == .empty || state == .completeCommit || state == .completeAbort { return KafkaError.none }
            return nil
        }
        if let check { return loop.makeSucceededFuture(check) }
        return complete(id, commit: commit, bumpEpoch: false).map { KafkaError.none }.recover { [logger] error in
            logger.error("ending transaction failed", metadata: ["transactionalId": "\(id)", "error": "\(error)"])
            return .coordinatorNotAvailable
        }
    }

    /// PrepareCommit/Abort (persisted) → markers on every partition (and the staged group offsets
    /// on commit) → CompleteCommit/Abort (persisted).
    private func complete(_ id: String, commit: Bool, bumpEpoch: Bool) -> EventLoopFuture<Void> {
        let loop = groups.eventLoop
        guard var m: TransactionMetadata = lock.withLock({ transactions[id] }) else { return loop.makeSucceededVoidFuture() }
        if bumpEpoch { m.producerEpoch += 1 }
        m.state = commit ? .prepareCommit : .prepareAbort
        let prepared = m
        lock.withLock { transactions[id] = prepared }
        return persist(prepared).flatMap { [self] in
            let markers = prepared.partitions.map { writeMarker(prepared, $0, commit: commit) }
            let offsets = commit
                ? prepared.pendingOffsets.filter { !$0.value.isEmpty }.map { group, pending in
                    groups.commitTransactionalOffsets(group: group, pending.map { ($0.topic, $0.partition, $0.offset, $0.leaderEpoch, $0.metadata) })
                }
                : []
            return EventLoopFuture.andAllSucceed(markers + offsets, on: loop)
        }.flatMap { [self] in
            var done = prepared
            done.state = commit ? .completeCommit : .completeAbort
            done.partitions = []
            done.pendingOffsets = [:]
            lock.withLock { transactions[id] = done }
            logger.debug("transaction ended", metadata: ["transactionalId": "\(id)", "committed": "\(commit)"])
            return persist(done)
        }
    }

    private func writeMarker(_ m: TransactionMetadata, _ p: TransactionMetadata.Partition, commit: Bool) -> EventLoopFuture<Void> {
        let loop = groups.eventLoop
        guard let log = topics.topic(p.topic)?.partition(p.partition) else { return loop.makeSucceededVoidFuture() }
        let promise = loop.makePromise(of: Void.self)
        do {
            var key = ByteBuffer()
            key.writeInteger(0 as Int16)
            key.writeInteger(commit ? TransactionMarker.commit : TransactionMarker.abort)
            var value = ByteBuffer()
            value.writeInteger(0 as Int16)
            value.writeInteger(0 as Int32)  // coordinator epoch
            var batch = RecordBatch(records: [Record(timestamp: PartitionLog.nowMs(), key: key, value: value)])
            batch.attributes = 0x30  // transactional + control
            batch.producerId = m.producerId
            batch.producerEpoch = m.producerEpoch
            var out = ByteBuffer()
            try batch.encode(to: &out)
            appender.append(out, headers: try RecordBatchHeader.validateAll(out), to: log) { [fetchWaiters] result in
                switch result {
                case .success:
                    fetchWaiters.notify(log)
                    promise.succeed(())
                case .failure(let e): promise.fail(e)
                }
            }
        } catch {
            promise.fail(error)
        }
        return promise.futureResult
    }

    /// Aborts transactions open longer than their `transaction.timeout.ms` (with an epoch bump, so
    /// the hung producer is fenced).
    func abortExpired(nowMs: Int64 = PartitionLog.nowMs()) {
        let expired: [String] = lock.withLock {
            transactions.values.filter { $0.state == .ongoing && $0.startedMs >= 0 && nowMs - $0.startedMs > Int64($0.timeoutMs) }.map(\.transactionalId)
        }
        for id in expired {
            logger.info("aborting timed-out transaction", metadata: ["transactionalId": "\(id)"])
            _ = complete(id, commit: false, bumpEpoch: true)
        }
    }

    func describe(_ ids: [String]) -> [(String, TransactionMetadata?)] {
        lock.withLock { ids.map { ($0, transactions[$0]) } }
    }

    var all: [TransactionMetadata] { lock.withLock { Array(transactions.values) } }
}

enum TransactionMarker {
    static let abort: Int16 = 0
    static let commit: Int16 = 1
}
