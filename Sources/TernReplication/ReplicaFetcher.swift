import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import TernClient
import TernCluster
import TernLog
import TernProtocol

/// A follower's copy loop for every partition it follows from one leader broker, over the Kafka
/// Fetch protocol as Kafka's replica fetcher does: Fetch v12 with this broker's replica id, each
/// partition's log end as the fetch offset and the epoch of its last batch (`last_fetched_epoch`).
/// The leader answers with batches, which are appended with the leader's offsets and epochs, and
/// its high watermark; or with a diverging epoch, where this log's tail is cut before fetching on.
///
/// Concurrency: one task runs the loop; the partitions followed are under `state`'s lock, changed
/// by the replica manager's apply thread. A partition is marked busy while the loop truncates or
/// appends to it, and `unfollow` waits until it is not, so once the manager has unfollowed a
/// partition (to lead it, say) no follower write can still land in its log.
package final class ReplicaFetcher: Sendable {
    struct Followed: Sendable {
        let log: PartitionLog
        let leaderEpoch: Int32
        /// No fetching before this time (the leader refused it; wait for a newer image).
        /// `MonotonicClock` time: a wall clock stepped back after the backoff began would stop the
        /// partition's fetches for the length of the step.
        var retryAfterMs: Int64 = 0
    }

    private struct State {
        var followed: [ReplicaKey: Followed] = [:]
        var busy: Set<ReplicaKey> = []
        var stopped = false
    }

    let leader: BrokerRegistration
    private let nodeId: Int32
    private let config: ReplicationConfig
    private let appender: LogAppender
    private let group: EventLoopGroup
    private let logger: Logger
    private let state = NIOLockedValueBox(State())
    /// Signalled (under its own lock) whenever a partition stops being busy: `unfollow` waits on it.
    private let notBusy = NSCondition()
    private let task = NIOLockedValueBox<Task<Void, Never>?>(nil)

    init(leader: BrokerRegistration, nodeId: Int32, config: ReplicationConfig, appender: LogAppender, group: EventLoopGroup, logger: Logger) {
        self.leader = leader
        self.nodeId = nodeId
        self.config = config
        self.appender = appender
        self.group = group
        var logger = logger
        logger[metadataKey: "leader"] = "\(leader.nodeId)"
        self.logger = logger
    }

    func start() {
        task.withLockedValue { $0 = Task { [self] in await run() } }
    }

    /// Stops the loop; returns at once (a fetch in flight ends within the leader's wait time, and
    /// its data is dropped: every partition is unfollowed first).
    func stop() {
        for key in state.withLockedValue({ Array($0.followed.keys) }) { unfollow(key) }
        state.withLockedValue { $0.stopped = true }
        task.withLockedValue { $0?.cancel() }
    }

    func follow(_ key: ReplicaKey, log: PartitionLog, leaderEpoch: Int32) {
        state.withLockedValue { s in
            if let current = s.followed[key], current.log === log, current.leaderEpoch == leaderEpoch { return }
            s.followed[key] = Followed(log: log, leaderEpoch: leaderEpoch)
        }
    }

    /// Stops following `key`; returns once no write of this fetcher to its log is in progress.
    func unfollow(_ key: ReplicaKey) {
        state.withLockedValue { _ = $0.followed.removeValue(forKey: key) }
        notBusy.lock()
        defer { notBusy.unlock() }
        while state.withLockedValue({ $0.busy.contains(key) }) { notBusy.wait() }
    }

    var followedKeys: Set<ReplicaKey> { state.withLockedValue { Set($0.followed.keys) } }

    // MARK: the loop

    private var isStopped: Bool { state.withLockedValue { $0.stopped } }

    private func run() async {
        var connection: BrokerConnection?
        var lastFailure = ""
        while !isStopped && !Task.isCancelled {
            let nowMs = MonotonicClock.nowMs()
            let fetching = state.withLockedValue { $0.followed.filter { $0.value.retryAfterMs <= nowMs } }
            if fetching.isEmpty {
                try? await Task.sleep(for: .milliseconds(50))
                continue
            }
            do {
                let conn: BrokerConnection
                if let c = connection, c.isActive {
                    conn = c
                } else {
                    conn = try await BrokerConnection.connect(host: leader.host, port: Int(leader.port), clientId: "tern-replica-\(nodeId)", group: group)
                    connection = conn
                }
                let version = try conn.version(.fetch, max: 12)
                guard version >= 12 else { throw ClientError.unsupportedApi(.fetch) }
                let (request, sent) = makeRequest(fetching)
                let response = try await conn.send(request, version: version, as: FetchResponse.self)
                if response.errorCode != 0 { throw ClientError.kafka(code: response.errorCode, context: "replica fetch") }
                await handle(response, sent: sent)
                lastFailure = ""
            } catch {
                if isStopped { break }
                let failure = "\(error)"
                if failure != lastFailure { logger.warning("replica fetch failed", metadata: ["error": "\(failure)"]) }
                lastFailure = failure
                await connection?.close()
                connection = nil
                try? await Task.sleep(for: .milliseconds(config.fetchBackoffMs))
            }
        }
        await connection?.close()
    }

    /// The request and, per partition, what it was made from (to check the answer against).
    private func makeRequest(_ fetching: [ReplicaKey: Followed]) -> (FetchRequest, [ReplicaKey: (Followed, fetchOffset: Int64)]) {
        var sent: [ReplicaKey: (Followed, fetchOffset: Int64)] = [:]
        var byTopic: [String: [FetchRequest.FetchPartition]] = [:]
        for (key, f) in fetching {
            let offset = f.log.logEndOffset
            sent[key] = (f, offset)
            byTopic[key.topic, default: []].append(.init(
                partition: key.partition, currentLeaderEpoch: f.leaderEpoch, fetchOffset: offset, lastFetchedEpoch: f.log.latestEpoch,
                logStartOffset: f.log.logStartOffset, partitionMaxBytes: config.fetchMaxBytes))
        }
        let request = FetchRequest(
            replicaId: nodeId, maxWaitMs: config.fetchWaitMaxMs, minBytes: config.fetchMinBytes, maxBytes: config.fetchResponseMaxBytes, isolationLevel: 0,
            topics: byTopic.keys.sorted().map { .init(topic: $0, partitions: byTopic[$0]!) })
        return (request, sent)
    }

    private func handle(_ response: FetchResponse, sent: [ReplicaKey: (Followed, fetchOffset: Int64)]) async {
        await withTaskGroup(of: Void.self) { group in
            for topic in response.responses {
                for data in topic.partitions {
                    let key = ReplicaKey(topic.topic, data.partitionIndex)
                    guard let (followed, fetchOffset) = sent[key], claim(key, followed) else { continue }
                    group.addTask { [self] in
                        defer { release(key) }
                        await apply(data, to: key, followed, fetchOffset: fetchOffset)
                    }
                }
            }
        }
    }

    /// Marks `key` busy if it is still followed as it was when the request was made.
    private func claim(_ key: ReplicaKey, _ followed: Followed) -> Bool {
        state.withLockedValue { s in
            guard let current = s.followed[key], current.log === followed.log, current.leaderEpoch == followed.leaderEpoch else { return false }
            s.busy.insert(key)
            return true
        }
    }

    private func release(_ key: ReplicaKey) {
        state.withLockedValue { _ = $0.busy.remove(key) }
        // Under the condition's lock: a waiter between its check and its wait cannot miss this.
        notBusy.lock()
        notBusy.broadcast()
        notBusy.unlock()
    }

    private func backOff(_ key: ReplicaKey) {
        let until = MonotonicClock.nowMs() + config.fetchBackoffMs
        state.withLockedValue { s in s.followed[key]?.retryAfterMs = until }
    }

    /// One partition's answer. Runs with `key` claimed: nobody else writes its log meanwhile.
    private func apply(_ data: FetchResponse.PartitionData, to key: ReplicaKey, _ followed: Followed, fetchOffset: Int64) async {
        let log = followed.log
        do {
            switch KafkaError(rawValue: data.errorCode) ?? .unknownServerError {
            case .none:
                if data.divergingEpoch.epoch >= 0 || data.divergingEpoch.endOffset >= 0 {
                    let (epoch, end) = (data.divergingEpoch.epoch, data.divergingEpoch.endOffset)
                    try await Self.onLogQueue { try Self.truncateDivergence(log, leaderEpoch: epoch, leaderEnd: end) }
                    return
                }
                if let records = data.records?.bytes, records.readableBytes > 0 {
                    let (batches, headers) = try Self.wholeBatches(records)
                    if !headers.isEmpty { try await append(batches, headers: headers, to: log) }
                }
                log.followHighWatermark(data.highWatermark)
                // The leader's log start moved (DeleteRecords, retention): so does this copy's, or
                // deleted records would come back with a failover. Bounded by what this replica
                // knows is replicated; the rest follows with a later fetch.
                if data.logStartOffset > log.logStartOffset {
                    let target = min(data.logStartOffset, log.highWatermark)
                    _ = try await Self.onLogQueue { try log.deleteRecords(before: target) }
                }
            case .offsetOutOfRange:
                if data.logStartOffset > fetchOffset {
                    // Behind the leader's log start (retention or DeleteRecords moved it): start over there.
                    let start = data.logStartOffset
                    try await Self.onLogQueue { try log.truncateFully(startingAt: start) }
                } else if data.highWatermark >= 0 {
                    // Past the leader's end: what is below its high watermark is on every in-sync
                    // replica, so the tail beyond it is what to give up.
                    let hw = data.highWatermark
                    try await Self.onLogQueue { try log.truncate(to: hw) }
                }
            default:
                // Not the leader (any more), an epoch this leader does not know yet, an unknown
                // partition: the image will say what changed; ask again after a pause.
                logger.debug("leader refused a partition", metadata: ["partition": "\(key)", "error": "\(data.errorCode)"])
                backOff(key)
            }
        } catch LogError.busy {
            // The log's own last appends as a leader are still being written: try on the next round.
        } catch {
            logger.warning("replicating a partition failed", metadata: ["partition": "\(key)", "error": "\(error)"])
            backOff(key)
        }
    }

    /// KIP-320's truncation: the leader says where the epoch of this log's last batch ended on its
    /// side; everything past that (or past where the same epoch ends here, if earlier) goes.
    private static func truncateDivergence(_ log: PartitionLog, leaderEpoch: Int32, leaderEnd: Int64) throws {
        let target: Int64
        if leaderEnd < 0 {
            target = log.highWatermark
        } else if leaderEpoch < 0 {
            target = min(leaderEnd, log.logEndOffset)
        } else {
            let (epoch, end) = log.endOffset(forEpoch: leaderEpoch)
            target = epoch < 0 ? min(leaderEnd, log.logEndOffset) : min(leaderEnd, end)
        }
        try log.truncate(to: target)
    }

    /// Truncations and log-start moves write and sync files — rare (a leader change, a
    /// DeleteRecords), but blocking: they run on a queue of their own, never in the cooperative
    /// pool the fetch loops run in.
    private static let logQueue = DispatchQueue(label: "tern-replica-log-changes")

    private static func onLogQueue<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            logQueue.async { continuation.resume(with: Result { try work() }) }
        }
    }

    private func append(_ records: ByteBuffer, headers: [RecordBatchHeader], to log: PartitionLog) async throws {
        _ = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<PartitionLog.AppendResult, Error>) in
            // tern.replication.fsync: synced before the next fetch reports it as this replica's.
            appender.append(records, headers: headers, to: log, origin: .replica, sync: log.syncsReplication) { continuation.resume(with: $0) }
        }
    }

    /// The whole batches at the start of a fetch response's records (the last may be cut short by
    /// the size limits), each checked like a stored batch (length, magic, CRC).
    package static func wholeBatches(_ records: ByteBuffer) throws -> (ByteBuffer, [RecordBatchHeader]) {
        var headers: [RecordBatchHeader] = []
        var index = records.readerIndex
        while records.writerIndex - index >= RecordBatchHeader.logOverhead {
            let length = Int(records.getInteger(at: index + 8, as: Int32.self)!)
            guard length >= 0, index + length + RecordBatchHeader.logOverhead <= records.writerIndex else { break }
            let header = try RecordBatchHeader.validated(in: records, at: index)
            headers.append(header)
            index += header.totalSize
        }
        return (records.getSlice(at: records.readerIndex, length: index - records.readerIndex)!, headers)
    }
}
