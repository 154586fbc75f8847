import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import TernGroups
import TernLog
import TernProtocol

/// The transaction coordinator: transactional ids → producer id and epoch, the partitions of each
/// open transaction (a group's `__consumer_offsets` partition too, for its offsets), and the
/// commit/abort markers that end it — written here or, for partitions another broker leads, sent
/// there. Metadata is written to `__transaction_state` (on every in-sync replica) before each
/// reply that depends on it. In a cluster it serves the ids of the partitions this broker leads.
/// Sendable: both maps are touched only under `lock`, and every check-then-transition happens in
/// one critical section.
final class TransactionCoordinator: @unchecked Sendable {
    static let stateTopic = "__transaction_state"

    private let lock = NIOLock()
    private var transactions: [String: TransactionMetadata] = [:]
    /// Which transactional id each producer id belongs to, for checking transactional produces.
    private var transactionalIdByProducer: [Int64: String] = [:]
    /// Ids whose ending (EndTxn, a timeout, InitProducerId, a recovery) is running, with the
    /// coordinator epoch it runs at: `recover` starts one for a prepared transaction only where
    /// none runs in the current epoch.
    private var endings: [String: Int32] = [:]
    /// When this coordinator started each id's transaction in monotonic time, with the wall-clock
    /// start persisted with it (`startedMs`): the timeout counts from it, so a step of the wall
    /// clock neither aborts a transaction early nor keeps a hung one open longer (Kafka counts
    /// from the wall-clock start alone). A transaction loaded from the log — after a crash or a
    /// hand-over — has only its wall-clock start. One entry per id, dropped with the id.
    private var monotonicStarts: [String: (wallMs: Int64, monotonicMs: Int64)] = [:]
    private let topics: TopicRegistry
    private let appender: LogAppender
    private let groups: GroupCoordinator
    private let allocateProducerId: @Sendable () throws -> Int64
    /// `__transaction_state`'s partitions; an id's records go to the one it hashes to.
    private let stateLogs: [PartitionLog]
    /// The coordinator epoch of a `__transaction_state` partition whose ids this broker serves
    /// now — the partition's leader epoch in the metadata (0 on a single broker) — or nil where
    /// another broker leads it. Only ids served here are recovered, timed out and expired.
    private let leaderEpoch: @Sendable (Int) -> Int32?
    /// The coordinator epoch each partition's ids were loaded at (`load`, `takeOver`). An id is
    /// coordinated here only while it is also the partition's current leader epoch: a broker
    /// that lost a partition and got it back (a pause can hide the hand-overs between) serves
    /// nothing from its old memory before reloading. Markers carry it, so a partition refuses
    /// a deposed coordinator's late marker once its successor's is written (Kafka's
    /// TRANSACTION_COORDINATOR_FENCED). A box of its own: it is read under `lock` too.
    private let loadedEpochs = NIOLockedValueBox([Int: Int32]())
    private let logger: Logger
    private let idExpirationMs: Int64
    private let loadedMs = PartitionLog.nowMs()
    /// Whether a partition's leader is this broker. Markers are written to local logs, so in a
    /// cluster a transaction may only add partitions led here (markers for other brokers need
    /// WriteTxnMarkers, which comes with replication); a follower's copy must never get one.
    private let ledHere: @Sendable (String, Int32) -> Bool
    /// Whether a partition exists (on a single broker locally; in a cluster, in the image).
    private let partitionExists: @Sendable (String, Int32) -> Bool
    /// One attempt at a marker on a partition led by another broker (WriteTxnMarkers), failing
    /// with the partition's error; installed by the broker once it is up (`installRemoteMarkers`).
    /// Until then only local partitions get markers.
    private let remoteMarkers = NIOLockedValueBox<RemoteMarkerWriter?>(nil)
    typealias RemoteMarkerWriter = @Sendable (
        _ topic: String, _ partition: Int32, _ producerId: Int64, _ epoch: Int16, _ coordinatorEpoch: Int32, _ commit: Bool
    ) -> EventLoopFuture<Void>
    /// Completes once a write (topic, partition, end offset) is on every in-sync replica, or with
    /// the error that stopped it (`Broker.replicatedWrite`): state records and markers are
    /// written with acks=all, as Kafka writes them.
    private let replicated: @Sendable (String, Int32, Int64, EventLoop) -> EventLoopFuture<KafkaError>

    init(topics: TopicRegistry, appender: LogAppender, groups: GroupCoordinator,
         allocateProducerId: @escaping @Sendable () throws -> Int64, stateLogs: [PartitionLog],
         leaderEpoch: @escaping @Sendable (Int) -> Int32? = { _ in 0 }, idExpirationMs: Int64, logger: Logger,
         ledHere: @escaping @Sendable (String, Int32) -> Bool = { _, _ in true },
         partitionExists: @escaping @Sendable (String, Int32) -> Bool,
         replicated: @escaping @Sendable (String, Int32, Int64, EventLoop) -> EventLoopFuture<KafkaError>) throws {
        self.ledHere = ledHere
        self.partitionExists = partitionExists
        self.replicated = replicated
        self.idExpirationMs = idExpirationMs
        self.topics = topics
        self.appender = appender
        self.groups = groups
        self.allocateProducerId = allocateProducerId
        precondition(!stateLogs.isEmpty, "__transaction_state has at least one partition")
        self.stateLogs = stateLogs
        self.leaderEpoch = leaderEpoch
        self.logger = logger
        try load()
    }

    /// The `__transaction_state` partition holding `id`.
    func partition(of id: String) -> Int { CoordinatorPartition.of(id, partitions: stateLogs.count) }

    private func coordinatesId(_ id: String) -> Bool { coordinatorEpoch(of: partition(of: id)) != nil }

    /// Whether `ending` still belongs to this coordinator: its partition has not been handed over
    /// since (a transient loss — a broker fenced by an etcd outage — does not count: its markers
    /// are retried and it finishes once the broker is back; a hand-over resigns or reloads).
    private func owns(_ ending: Ending) -> Bool {
        loadedEpochs.withLockedValue { $0[partition(of: ending.prepared.transactionalId)] } == ending.coordinatorEpoch
    }

    /// The epoch this broker coordinates `partition`'s ids at, or nil if it does not now.
    private func coordinatorEpoch(of partition: Int) -> Int32? {
        guard let loaded = loadedEpochs.withLockedValue({ $0[partition] }), leaderEpoch(partition) == loaded else { return nil }
        return loaded
    }

    /// Replays the `__transaction_state` partitions this broker coordinates (ending what a crash
    /// interrupted is `recover`'s, once the broker can write markers; the others are loaded when
    /// their leadership comes here — `takeOver`).
    private func load() throws {
        var loaded: [String: TransactionMetadata] = [:]
        let epochs = (0..<stateLogs.count).reduce(into: [Int: Int32]()) { epochs, p in epochs[p] = leaderEpoch(p) }
        for (p, log) in stateLogs.enumerated() where epochs[p] != nil { try Self.replay(log, into: &loaded) }
        loadedEpochs.withLockedValue { $0 = epochs }
        lock.withLock {
            transactions = loaded
            for meta in loaded.values { transactionalIdByProducer[meta.producerId] = meta.transactionalId }
        }
        logger.info("loaded transactions", metadata: ["count": "\(loaded.count)"])
    }

    /// Ends what a crash (or the previous coordinator's loss) interrupted, for the ids of
    /// `partitions` (nil: all) coordinated here: PrepareCommit is committed, PrepareAbort aborted.
    /// Also run periodically: an ending that stopped (its markers refused, or the coordinator
    /// fenced at its end) is started again rather than left prepared.
    /// Ongoing transactions stay open, as Kafka leaves them: their producer may go on, and
    /// `transaction.timeout.ms` (counted from their start) aborts them if it does not.
    func recover(partitions: Set<Int>? = nil) {
        let ids = lock.withLock {
            transactions.keys.filter { id in coordinatesId(id) && (partitions?.contains(partition(of: id)) ?? true) }
        }
        for id in ids {
            let begun: (Ending, Bool)? = lock.withLock {
                // An ending already running in this epoch is not doubled.
                guard let epoch = coordinatorEpoch(of: partition(of: id)), endings[id] != epoch else { return nil }
                switch transactions[id]?.state {
                case .prepareAbort?: return beginEnd(id, commit: false, bumpEpoch: false).map { ($0, false) }
                case .prepareCommit?: return beginEnd(id, commit: true, bumpEpoch: false).map { ($0, true) }
                default: return nil
                }
            }
            if let (prepared, commit) = begun {
                logger.info("finishing an interrupted transaction", metadata: ["transactionalId": "\(id)", "commit": "\(commit)"])
                _ = finishEnd(prepared, commit: commit)
            }
        }
    }

    /// Cluster mode: this broker now leads `partitions` of `__transaction_state` (newly, or again
    /// in a later leader epoch): their ids' state is reloaded from the (replicated) log and
    /// interrupted endings are finished, under the partitions' new coordinator epochs.
    func takeOver(_ partitions: Set<Int>) throws {
        let epochs = partitions.reduce(into: [Int: Int32]()) { epochs, p in epochs[p] = leaderEpoch(p) }
        var loaded: [String: TransactionMetadata] = [:]
        for p in partitions.sorted() { try Self.replay(stateLogs[p], into: &loaded) }
        lock.withLock {
            for (id, meta) in transactions where partitions.contains(partition(of: id)) {
                transactions[id] = nil
                monotonicStarts[id] = nil
                if transactionalIdByProducer[meta.producerId] == id { transactionalIdByProducer[meta.producerId] = nil }
            }
            for (id, meta) in loaded where partitions.contains(partition(of: id)) {
                transactions[id] = meta
                transactionalIdByProducer[meta.producerId] = id
            }
        }
        loadedEpochs.withLockedValue { current in
            for p in partitions { current[p] = epochs[p] }
        }
        recover(partitions: partitions)
    }

    /// Cluster mode: another broker leads `partitions` now; their ids are no longer served here.
    func resign(_ partitions: Set<Int>) {
        loadedEpochs.withLockedValue { current in
            for p in partitions { current[p] = nil }
        }
        lock.withLock {
            for (id, meta) in transactions where partitions.contains(partition(of: id)) {
                transactions[id] = nil
                monotonicStarts[id] = nil
                if transactionalIdByProducer[meta.producerId] == id { transactionalIdByProducer[meta.producerId] = nil }
            }
        }
    }

    func installRemoteMarkers(_ writer: @escaping RemoteMarkerWriter) {
        remoteMarkers.withLockedValue { $0 = writer }
    }

    /// The partitions whose ids this broker serves, with their coordinator epochs.
    var coordinatorEpochs: [Int: Int32] {
        (0..<stateLogs.count).reduce(into: [Int: Int32]()) { epochs, p in epochs[p] = coordinatorEpoch(of: p) }
    }

    /// Whether this broker coordinates `id` now.
    func coordinates(transactionalId id: String) -> Bool { coordinatesId(id) }

    private static func replay(_ stateLog: PartitionLog, into transactions: inout [String: TransactionMetadata]) throws {
        var next = stateLog.logStartOffset
        while next < stateLog.logEndOffset {
            // To the log end, as Kafka's coordinator loads (a new leader's high watermark may trail).
            var bytes = try stateLog.read(from: next, maxBytes: 4 << 20, toLogEnd: true).records.bytes
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
    }

    private func persist(_ meta: TransactionMetadata) -> EventLoopFuture<Void> {
        do {
            return write(key: meta.transactionalId, value: ByteBuffer(bytes: try JSONEncoder().encode(meta)))
        } catch {
            return groups.eventLoop.makeFailedFuture(error)
        }
    }

    /// Appends one record to `__transaction_state` (a nil value is a tombstone: the id is gone).
    private func write(key: String, value: ByteBuffer?) -> EventLoopFuture<Void> {
        let loop = groups.eventLoop
        let promise = loop.makePromise(of: Void.self)
        do {
            var out = ByteBuffer()
            try RecordBatch(records: [Record(timestamp: PartitionLog.nowMs(), key: ByteBuffer(string: key), value: value)]).encode(to: &out)
            let partition = partition(of: key)
            appender.append(out, headers: try RecordBatchHeader.validateAll(out), to: stateLogs[partition]) { [replicated] result in
                switch result {
                case .success(let appended):
                    replicated(Self.stateTopic, Int32(partition), appended.lastOffset + 1, loop).whenSuccess { error in
                        if error == .none { promise.succeed(()) } else { promise.fail(error) }
                    }
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
        // A new instance of this transactional id: abort what the old one left open, with the
        // bumped epoch on the markers, which fences the old instance on every partition it used.
        // A transaction already being ended answers CONCURRENT_TRANSACTIONS (the client retries).
        let begun: Result<Ending?, KafkaError> = lock.withLock {
            switch transactions[transactionalId]?.state {
            case .ongoing?: return .success(beginEnd(transactionalId, commit: false, bumpEpoch: true))
            case .prepareAbort?, .prepareCommit?: return .failure(.concurrentTransactions)
            default: return .success(nil)
            }
        }
        let aborted: EventLoopFuture<Void>
        switch begun {
        case .failure(let error): return groups.eventLoop.makeFailedFuture(error)
        // The new epoch starts only once the old one's transaction is wholly aborted.
        case .success(let prepared?): aborted = finishEnd(prepared, commit: false).finished
        case .success(nil): aborted = groups.eventLoop.makeSucceededVoidFuture()
        }
        return aborted.flatMapThrowing { [self] in
            try lock.withLock {
                var m = try transactions[transactionalId]
                    ?? TransactionMetadata(transactionalId: transactionalId, producerId: allocateProducerId(), producerEpoch: -1, timeoutMs: timeoutMs)
                // Kafka's exhaustion rule (`isProducerEpochExhausted`): an epoch a bump could
                // not follow gets a new producer id. A timeout's fencing bump may have taken the
                // epoch to the maximum itself.
                if m.producerEpoch >= Int16.max - 1 {
                    m.producerId = try allocateProducerId()
                    m.producerEpoch = -1
                }
                m.producerEpoch += 1
                m.timeoutMs = timeoutMs
                m.state = .empty
                m.partitions = []
                store(m)
                return m
            }
        }.flatMap { [self] (meta: TransactionMetadata) in
            persist(meta).map { (meta.producerId, meta.producerEpoch) }
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

    /// `checked`: the partitions come from a client and must exist in the cluster's metadata; the
    /// group's offsets partition (AddOffsetsToTxn) is this broker's own computation over the
    /// internal topic every broker holds, and is not looked up in a metadata image that may trail.
    func addPartitions(_ id: String, producerId: Int64, epoch: Int16, _ partitions: [(String, Int32)], checked: Bool = true) -> EventLoopFuture<KafkaError> {
        let loop = groups.eventLoop
        let result: Result<TransactionMetadata, KafkaError> = lock.withLock {
            if let error = validate(id, producerId, epoch) { return .failure(error) }
            var m = transactions[id]!
            for (t, p) in partitions {
                guard !checked || partitionExists(t, p) else { return .failure(.unknownTopicOrPartition) }
                m.partitions.insert(.init(topic: t, partition: p))
            }
            if m.state != .ongoing {
                m.state = .ongoing
                m.startedMs = PartitionLog.nowMs()
                monotonicStarts[id] = (m.startedMs, MonotonicClock.nowMs())
            }
            store(m)
            return .success(m)
        }
        switch result {
        case .failure(let e): return loop.makeSucceededFuture(e)
        case .success(let m): return persist(m).map { KafkaError.none }.recover { _ in .coordinatorNotAvailable }
        }
    }

    /// AddPartitionsToTxn v4+ with `verify_only` (KIP-890): is each partition already part of the
    /// producer's ongoing transaction? Nothing changes.
    func verifyPartitions(_ id: String, producerId: Int64, epoch: Int16, _ partitions: [(String, Int32)]) -> [KafkaError] {
        lock.withLock {
            if let error = validate(id, producerId, epoch) { return partitions.map { _ in error } }
            let m = transactions[id]!
            return partitions.map { m.state == .ongoing && m.partitions.contains(.init(topic: $0.0, partition: $0.1)) ? .none : .invalidTxnState }
        }
    }

    /// AddOffsetsToTxn: the group's `__consumer_offsets` partition joins the transaction, so its
    /// marker commits (or drops) the offsets TxnOffsetCommit writes there.
    func addOffsets(_ id: String, producerId: Int64, epoch: Int16, group: String) -> EventLoopFuture<KafkaError> {
        addPartitions(id, producerId: producerId, epoch: epoch, [(Broker.offsetsTopic, Int32(groups.partition(of: group)))], checked: false)
    }

    /// What EndTxn answers: the error and, for EndTxn v5 (KIP-890 part 2), the producer id and
    /// epoch the producer's next transaction uses.
    struct EndResult: Sendable, Equatable {
        var error: KafkaError
        var producerId: Int64 = -1
        var producerEpoch: Int16 = -1
    }

    /// Ends the producer's transaction. `bumpEpoch` (EndTxn v5): every transaction ends with the
    /// epoch raised — the markers carry the new epoch, so nothing of the old one can follow them —
    /// and the answer says the new id and epoch; an EndTxn retried after that is answered the same.
    func endTransaction(_ id: String, producerId: Int64, epoch: Int16, commit: Bool, bumpEpoch: Bool = false) -> EventLoopFuture<EndResult> {
        let loop = groups.eventLoop
        enum Begun { case failed(KafkaError), answered(EndResult), ending(Ending, exhausted: Bool), emptyBump }
        // Validation and the move to PrepareCommit/Abort happen in one critical section, so a
        // timeout abort cannot slip in between and end the same transaction a second way.
        let begun: Begun = lock.withLock {
            if bumpEpoch, let m = transactions[id], m.producerId == producerId, epoch < Int16.max, m.producerEpoch == epoch + 1 {
                switch m.state {
                case commit ? .completeCommit : .completeAbort: return .answered(EndResult(error: .none, producerId: m.producerId, producerEpoch: m.producerEpoch))
                case commit ? .prepareCommit : .prepareAbort: return .failed(.concurrentTransactions)
                default: break
                }
            }
            if let error = validate(id, producerId, epoch) { return .failed(error) }
            let m = transactions[id]!
            // Kafka's exhaustion rule: an epoch a bump could not follow moves to a new producer id.
            let exhausted = bumpEpoch && m.producerEpoch >= Int16.max - 1
            switch m.state {
            // Ending an empty transaction is fine (the client may not have sent anything).
            case .empty, .completeCommit, .completeAbort:
                return bumpEpoch ? .emptyBump : .answered(EndResult(error: .none))
            default:
                guard let ending = beginEnd(id, commit: commit, bumpEpoch: bumpEpoch && !exhausted) else { return .failed(.invalidProducerIdMapping) }
                return .ending(ending, exhausted: exhausted)
            }
        }
        switch begun {
        case .failed(let error): return loop.makeSucceededFuture(EndResult(error: error))
        case .answered(let result): return loop.makeSucceededFuture(result)
        case .emptyBump: return moveOn(id, from: (producerId, epoch))
        case .ending(let prepared, let exhausted):
            let (decided, finished) = finishEnd(prepared, commit: commit)
            let done: EventLoopFuture<EndResult>
            if exhausted {
                done = finished.flatMap { [self] in moveOn(id, from: (prepared.prepared.producerId, prepared.prepared.producerEpoch)) }
            } else {
                done = decided.map { EndResult(error: .none, producerId: prepared.prepared.producerId, producerEpoch: bumpEpoch ? prepared.prepared.producerEpoch : -1) }
            }
            return done.recover { [logger] error in
                logger.error("ending transaction failed", metadata: ["transactionalId": "\(id)", "error": "\(error)"])
                return EndResult(error: .coordinatorNotAvailable)
            }
        }
    }

    /// EndTxn v5 with nothing to end, or after the last epoch a producer id has: the id moves to
    /// its next epoch (a new producer id when the epoch is exhausted), persisted before the answer.
    private func moveOn(_ id: String, from current: (Int64, Int16)) -> EventLoopFuture<EndResult> {
        let loop = groups.eventLoop
        let moved: Result<TransactionMetadata, KafkaError> = lock.withLock {
            guard var m = transactions[id], m.producerId == current.0, m.producerEpoch == current.1 else { return .failure(.invalidProducerEpoch) }
            guard m.state != .prepareCommit && m.state != .prepareAbort && m.state != .ongoing else { return .failure(.concurrentTransactions) }
            if m.producerEpoch >= Int16.max - 1 {
                guard let next = try? allocateProducerId() else { return .failure(.coordinatorNotAvailable) }
                m.producerId = next
                m.producerEpoch = 0
            } else {
                m.producerEpoch += 1
            }
            store(m)
            return .success(m)
        }
        switch moved {
        case .failure(let error): return loop.makeSucceededFuture(EndResult(error: error))
        case .success(let m):
            return persist(m).map { EndResult(error: .none, producerId: m.producerId, producerEpoch: m.producerEpoch) }
                .recover { _ in EndResult(error: .coordinatorNotAvailable) }
        }
    }

    /// Refuses a transactional batch unless its producer is in an ongoing transaction, with its
    /// current epoch, that AddPartitionsToTxn extended to this partition (Kafka's
    /// INVALID_TXN_STATE): otherwise a stray batch would hold the last stable offset back forever.
    func refusal(ofWriteBy producerId: Int64, epoch: Int16, topic: String, partition: Int32) -> KafkaError? {
        lock.withLock {
            guard let id = transactionalIdByProducer[producerId], let m = transactions[id], m.producerId == producerId else {
                return .invalidTxnState
            }
            if epoch < m.producerEpoch { return .invalidProducerEpoch }
            guard epoch == m.producerEpoch, m.state == .ongoing, m.partitions.contains(.init(topic: topic, partition: partition)) else {
                return .invalidTxnState
            }
            return nil
        }
    }

    /// A transaction being ended: as it was, and moved to PrepareCommit/PrepareAbort, by the
    /// coordinator of `coordinatorEpoch` (-1: none, this broker no longer serves the id).
    struct Ending {
        let previous: TransactionMetadata
        let prepared: TransactionMetadata
        let coordinatorEpoch: Int32
    }

    /// Moves a transaction to PrepareCommit/PrepareAbort (bumping the epoch when asked). The caller
    /// holds the lock and has checked the state it expects, in the same section.
    private func beginEnd(_ id: String, commit: Bool, bumpEpoch: Bool) -> Ending? {
        guard let previous = transactions[id] else { return nil }
        var m = previous
        // At the maximum the epoch stays: the next InitProducerId moves the id on (above).
        if bumpEpoch && m.producerEpoch < Int16.max { m.producerEpoch += 1 }
        m.state = commit ? .prepareCommit : .prepareAbort
        store(m)
        let ending = Ending(previous: previous, prepared: m, coordinatorEpoch: coordinatorEpoch(of: partition(of: id)) ?? -1)
        endings[id] = ending.coordinatorEpoch
        return ending
    }

    /// PrepareCommit/Abort (persisted: the decision) → markers on every partition (and the staged
    /// group offsets on commit), each retried until written as Kafka's coordinator does — a full
    /// disk, followers too slow for the acks=all wait or a moving leader must not leave the
    /// partitions' last stable offset stuck behind a transaction nobody finishes → CompleteCommit/
    /// Abort (persisted). `decided` completes once the decision is durable and the markers are
    /// written or have had a second (EndTxn answers then, as Kafka answers once the decision is
    /// durable; the producer's next transaction waits with CONCURRENT_TRANSACTIONS); `finished`
    /// once the transaction is complete. If the decision cannot be persisted the transaction goes
    /// back to what it was, so the producer's retry (or the timeout) can end it.
    private func finishEnd(_ ending: Ending, commit: Bool) -> (decided: EventLoopFuture<Void>, finished: EventLoopFuture<Void>) {
        let loop = groups.eventLoop
        let prepared = ending.prepared
        let id = prepared.transactionalId
        let decided = loop.makePromise(of: Void.self)
        let answered = NIOLockedValueBox(false)
        let answer = { @Sendable (result: Result<Void, Error>) in
            guard answered.withLockedValue({ done in defer { done = true }; return !done }) else { return }
            decided.completeWith(result)
        }
        let finished = persist(prepared).flatMapError { [self] error -> EventLoopFuture<Void> in
            lock.withLock {
                if let current = transactions[id], current.producerId == prepared.producerId, current.producerEpoch == prepared.producerEpoch,
                    current.state == prepared.state
                {
                    store(ending.previous)
                }
            }
            return loop.makeFailedFuture(error)
        }.flatMap { [self] () -> EventLoopFuture<Void> in
            let markers = prepared.partitions.map { writeMarkerUntilWritten(ending, $0, commit: commit) }
            let all = EventLoopFuture.andAllSucceed(markers, on: loop)
            let grace = loop.scheduleTask(in: .seconds(1)) { answer(.success(())) }
            all.whenComplete { _ in
                grace.cancel()
                answer(.success(()))
            }
            return all
        }.flatMap { [self] () -> EventLoopFuture<Void> in
            var done = prepared
            done.state = commit ? .completeCommit : .completeAbort
            done.partitions = []
            // Only over the transaction this ended (not a later one a recovery started meanwhile,
            // nor one reloaded under a later coordinator epoch).
            let current = lock.withLock { () -> Bool in
                guard let m = transactions[id], m.producerId == prepared.producerId, m.producerEpoch == prepared.producerEpoch,
                    m.state == prepared.state, owns(ending)
                else { return false }
                store(done)
                return true
            }
            logger.debug("transaction ended", metadata: ["transactionalId": "\(id)", "committed": "\(commit)"])
            return current ? persist(done) : loop.makeSucceededVoidFuture()
        }
        finished.whenFailure { answer(.failure($0)) }
        finished.whenComplete { [self] _ in
            lock.withLock { if endings[id] == ending.coordinatorEpoch { endings[id] = nil } }
        }
        return (decided.futureResult, finished)
    }

    /// The marker on one partition, tried again (50 ms, doubling to 2 s) until it is written, the
    /// partition is gone, the id's `__transaction_state` partition has been handed over since the
    /// ending began (the next coordinator finishes the transaction when it loads), or 10 minutes
    /// pass (then housekeeping starts the ending again). A partition that refuses the marker because a later
    /// producer or coordinator epoch has ended the transaction there (INVALID_PRODUCER_EPOCH,
    /// TRANSACTION_COORDINATOR_FENCED) stops it, and the ending does not complete — as Kafka's
    /// coordinator cancels the transaction's markers then rather than complete it.
    private func writeMarkerUntilWritten(_ ending: Ending, _ p: TransactionMetadata.Partition, commit: Bool) -> EventLoopFuture<Void> {
        let promise = groups.eventLoop.makePromise(of: Void.self)
        attemptMarker(ending, p, commit: commit, pause: .milliseconds(50), deadline: .now() + .minutes(10), promise: promise)
        return promise.futureResult
    }

    private func attemptMarker(
        _ ending: Ending, _ p: TransactionMetadata.Partition, commit: Bool, pause: TimeAmount, deadline: NIODeadline,
        promise: EventLoopPromise<Void>
    ) {
        let id = ending.prepared.transactionalId
        writeMarker(ending, p, commit: commit).whenComplete { [self] result in
            switch result {
            case .success: promise.succeed(())
            case .failure(let error):
                let superseded = [KafkaError.invalidProducerEpoch, .transactionCoordinatorFenced].contains(KafkaError(error))
                if superseded {
                    logger.warning("a transaction marker was refused: a later epoch has ended the transaction there", metadata: [
                        "transactionalId": "\(id)", "partition": "\(p.topic)-\(p.partition)", "error": "\(KafkaError(error))",
                    ])
                }
                guard !superseded, NIODeadline.now() < deadline, owns(ending) else {
                    return promise.fail(error)
                }
                if pause >= .seconds(1) {
                    logger.warning("transaction marker not written yet", metadata: ["partition": "\(p.topic)-\(p.partition)", "error": "\(error)"])
                }
                groups.eventLoop.scheduleTask(in: pause) { [self] in
                    attemptMarker(ending, p, commit: commit, pause: min(pause * 2, .seconds(2)), deadline: deadline, promise: promise)
                }
            }
        }
    }

    /// Replaces a transaction's metadata and keeps the producer-id index in step. Lock held.
    private func store(_ m: TransactionMetadata) {
        if let old = transactions[m.transactionalId], old.producerId != m.producerId {
            transactionalIdByProducer[old.producerId] = nil
        }
        var m = m
        m.lastUpdateMs = PartitionLog.nowMs()
        transactions[m.transactionalId] = m
        transactionalIdByProducer[m.producerId] = m.transactionalId
    }

    /// Ends the transaction on one partition: the marker is appended here when this broker leads
    /// the partition, else sent to its leader (WriteTxnMarkers). Completes once the marker is on
    /// the partition's in-sync replicas.
    private func writeMarker(_ ending: Ending, _ p: TransactionMetadata.Partition, commit: Bool) -> EventLoopFuture<Void> {
        let loop = groups.eventLoop
        let m = ending.prepared
        guard ledHere(p.topic, p.partition) else {
            guard let remote = remoteMarkers.withLockedValue({ $0 }) else { return loop.makeFailedFuture(KafkaError.coordinatorNotAvailable) }
            return remote(p.topic, p.partition, m.producerId, m.producerEpoch, ending.coordinatorEpoch, commit).hop(to: loop)
        }
        // A partition deleted meanwhile needs no marker.
        guard let log = topics.topic(p.topic)?.partition(p.partition) else { return loop.makeSucceededVoidFuture() }
        return TransactionMarker.append(
            producerId: m.producerId, epoch: m.producerEpoch, commit: commit, coordinatorEpoch: ending.coordinatorEpoch, to: log,
            topic: p.topic, partition: p.partition, appender: appender, groups: groups, replicated: replicated, on: loop
        ).flatMapThrowing { error in
            if error != .none { throw error }
        }
    }

    /// Aborts transactions open longer than their `transaction.timeout.ms` (with an epoch bump, so
    /// the hung producer is fenced): in monotonic time for those started here, by the wall clock
    /// for those loaded from the log.
    func abortExpired(nowMs: Int64 = PartitionLog.nowMs(), monotonicNowMs: Int64 = MonotonicClock.nowMs()) {
        let expired: [Ending] = lock.withLock {
            transactions.values
                .filter { m in
                    guard m.state == .ongoing, m.startedMs >= 0, coordinatesId(m.transactionalId) else { return false }
                    let openMs: Int64
                    if let start = monotonicStarts[m.transactionalId], start.wallMs == m.startedMs {
                        openMs = monotonicNowMs - start.monotonicMs
                    } else {
                        openMs = nowMs - m.startedMs
                    }
                    return openMs > Int64(m.timeoutMs)
                }
                .compactMap { beginEnd($0.transactionalId, commit: false, bumpEpoch: true) }
        }
        for ending in expired {
            logger.info("aborting timed-out transaction", metadata: ["transactionalId": "\(ending.prepared.transactionalId)"])
            _ = finishEnd(ending, commit: false)
        }
    }

    /// Forgets transactional ids idle (no transaction in progress) for `transactional.id.expiration.ms`,
    /// as Kafka does: a tombstone in `__transaction_state` removes each from the next load, and
    /// compaction from the topic. A later InitProducerId with the id starts afresh with a new
    /// producer id. Returns how many expired.
    @discardableResult
    func removeExpiredTransactionalIds(nowMs: Int64 = PartitionLog.nowMs()) -> Int {
        lock.withLock {
            let expired = transactions.values.filter {
                $0.isIdle && nowMs - ($0.lastUpdateMs ?? loadedMs) > idExpirationMs && coordinatesId($0.transactionalId)
            }
            for m in expired {
                transactions[m.transactionalId] = nil
                monotonicStarts[m.transactionalId] = nil
                if transactionalIdByProducer[m.producerId] == m.transactionalId { transactionalIdByProducer[m.producerId] = nil }
                // Queued under the lock: a later InitProducerId for the same id persists after
                // the tombstone, never before it.
                _ = write(key: m.transactionalId, value: nil)
            }
            if !expired.isEmpty { logger.info("expired idle transactional ids", metadata: ["count": "\(expired.count)"]) }
            return expired.count
        }
    }

    func describe(_ ids: [String]) -> [(String, TransactionMetadata?)] {
        lock.withLock { ids.map { ($0, transactions[$0]) } }
    }

    var all: [TransactionMetadata] { lock.withLock { Array(transactions.values) } }
}

