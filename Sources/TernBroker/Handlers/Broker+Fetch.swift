import NIOCore
import TernLog
import TernProtocol
import TernReplication

extension Broker {
    /// Fetch with Kafka's long poll: answers at once when `min_bytes` are available (or on error),
    /// otherwise waits until an append to a fetched partition satisfies it or `max_wait_ms` passes.
    func fetch(_ request: FetchRequest, version: Int16, on eventLoop: EventLoop) -> EventLoopFuture<FetchResponse> {
        // The wait's state (`FetchWait`) is only touched on the connection's event loop.
        eventLoop.preconditionInEventLoop()
        let (first, bytes, logs) = fetchOnce(request, version: version)
        if bytes >= Int(request.minBytes) || request.maxWaitMs <= 0 || logs.isEmpty {
            countOut(first)
            return eventLoop.makeSucceededFuture(first)
        }
        let promise = eventLoop.makePromise(of: FetchResponse.self)
        let wait = FetchWait(eventLoop: eventLoop)
        let complete: @Sendable (Bool) -> Void = { [self] timedOut in
            wait.eventLoop.preconditionInEventLoop()
            guard !wait.done else { return }
            let (response, bytes, _) = fetchOnce(request, version: version)
            guard timedOut || bytes >= Int(request.minBytes) else { return }
            wait.done = true
            wait.timeout?.cancel()
            if let id = wait.registration { fetchWaiters.unregister(id, logs) }
            countOut(response)
            promise.succeed(response)
        }
        wait.registration = fetchWaiters.register(logs) { eventLoop.execute { complete(false) } }
        wait.timeout = eventLoop.scheduleTask(in: .milliseconds(Int64(request.maxWaitMs))) { complete(true) }
        // An append that landed between the first read and the registration notified nobody:
        // look once more now that any later append will wake us.
        eventLoop.execute { complete(false) }
        return promise.futureResult
    }

    private func countOut(_ response: FetchResponse) {
        for t in response.responses {
            let bytes = t.partitions.reduce(0) { $0 + ($1.records?.byteCount ?? 0) }
            // v13+ names topics by id only.
            guard bytes > 0, let name = t.topic.isEmpty ? topics.topic(id: t.topicId)?.metadata.name : t.topic else { continue }
            metrics.topic(name).bytesOut.increment(by: bytes)
        }
    }

    /// One pass over the requested partitions. Returns the response, the record bytes in it, and
    /// the logs it read (to wait on).
    func fetchOnce(_ request: FetchRequest, version: Int16) -> (FetchResponse, Int, [PartitionLog]) {
        var response = FetchResponse(errorCode: 0, sessionId: 0)
        var remaining = Int(min(request.maxBytes > 0 ? request.maxBytes : Int32.max, config.fetchMaxBytes))
        var total = 0
        var logs: [PartitionLog] = []
        var anyError = false
        let view = self.view
        var leaderHints = Set<Int32>()
        // A follower names itself (replica_id before v15, replica_state after): it reads to the log
        // end, and its fetch offset tells the leader how far its log goes.
        let replicaId = version >= 15 ? request.replicaState.replicaId : request.replicaId
        let monotonicMs = MonotonicClock.nowMs()
        for fetchTopic in request.topics {
            let topic = fetchTopic.topic.isEmpty ? topics.topic(id: fetchTopic.topicId) : topics.topic(fetchTopic.topic)
            // By id (v13+): the local topic's name, or the cluster's for a topic with no replica here.
            let name = fetchTopic.topic.isEmpty ? (topic?.metadata.name ?? view.topic(id: fetchTopic.topicId)?.name) : fetchTopic.topic
            var topicResponse = FetchResponse.FetchableTopicResponse(topic: fetchTopic.topic, topicId: fetchTopic.topicId)
            for p in fetchTopic.partitions {
                var data = FetchResponse.PartitionData(partitionIndex: p.partition, highWatermark: -1, lastStableOffset: -1, logStartOffset: -1)
                data.abortedTransactions = request.isolationLevel == 1 ? [] : nil
                if version < 4 { data.abortedTransactions = [] }
                if let name, let refusal = leadershipRefusal(name, p.partition, in: view) {
                    data.errorCode = refusal.rawValue
                    // KIP-951 (v12+): where the leader is now, so the client need not ask Metadata.
                    if refusal == .notLeaderOrFollower, let state = view.partition(name, p.partition), view.broker(state.leader) != nil {
                        data.currentLeader = .init(leaderId: state.leader, leaderEpoch: state.leaderEpoch)
                        leaderHints.insert(state.leader)
                    }
                    anyError = true
                    topicResponse.partitions.append(data)
                    continue
                }
                guard let log = topic?.partition(p.partition) else {
                    data.errorCode = (fetchTopic.topic.isEmpty ? KafkaError.unknownTopicId : .unknownTopicOrPartition).rawValue
                    anyError = true
                    topicResponse.partitions.append(data)
                    continue
                }
                if replicaId >= 0, let name {
                    if let refusal = followerFetchRefusal(replicaId, ReplicaKey(name, p.partition), p, log: log, into: &data, monotonicMs: monotonicMs) {
                        data.errorCode = refusal.rawValue
                        data.highWatermark = log.highWatermark
                        data.logStartOffset = log.logStartOffset
                    }
                    if data.errorCode != 0 || data.divergingEpoch != .init() {
                        anyError = true  // answered at once, as data would be
                        topicResponse.partitions.append(data)
                        continue
                    }
                }
                logs.append(log)
                do {
                    // The first partition with data may exceed the limits by one batch (KIP-74);
                    // after that, stop adding data once the response is full.
                    let limit = min(Int(p.partitionMaxBytes), remaining)
                    if limit > 0 || total == 0 {
                        let read = try log.read(
                            from: p.fetchOffset, maxBytes: max(limit, 0), readCommitted: request.isolationLevel == 1, toLogEnd: replicaId >= 0)
                        data.records = read.records
                        data.highWatermark = read.highWatermark
                        data.lastStableOffset = read.lastStableOffset
                        if request.isolationLevel == 1 {
                            data.abortedTransactions = read.abortedTransactions.map { .init(producerId: $0.producerId, firstOffset: $0.firstOffset) }
                        }
                        data.logStartOffset = read.logStartOffset
                        total += read.records.byteCount
                        remaining -= read.records.byteCount
                    } else {
                        data.highWatermark = log.highWatermark
                        data.lastStableOffset = log.lastStableOffset
                        data.logStartOffset = log.logStartOffset
                    }
                } catch {
                    data.errorCode = KafkaError(error).rawValue
                    data.highWatermark = log.highWatermark
                    data.lastStableOffset = data.highWatermark
                    data.logStartOffset = log.logStartOffset
                    anyError = true
                }
                topicResponse.partitions.append(data)
            }
            response.responses.append(topicResponse)
        }
        if version >= 16 {
            response.nodeEndpoints = leaderHints.sorted().compactMap { view.broker($0) }.map {
                .init(nodeId: $0.nodeId, host: $0.host, port: $0.port, rack: $0.rack)
            }
        }
        return (response, total, anyError ? [] : logs)
    }
}

extension Broker {
    /// A follower's fetch at its leader (Kafka's `Partition.fetchRecords` checks): nil to serve it,
    /// else the partition's error. Its leader epoch must be this leadership's; when the epoch of
    /// its last batch ended earlier here than its log does (or never was), the answer is that
    /// epoch's end (`diverging_epoch`, KIP-320) so it truncates first. Otherwise its fetch offset
    /// is recorded as its log end, which may move the high watermark. Who may fetch as a replica
    /// is not checked yet: Kafka guards it with the ClusterAction ACL, which comes with the
    /// security work (until then a cluster's listeners must be trusted).
    func followerFetchRefusal(
        _ replica: Int32, _ key: ReplicaKey, _ p: FetchRequest.FetchPartition, log: PartitionLog, into data: inout FetchResponse.PartitionData,
        monotonicMs: Int64
    ) -> KafkaError? {
        guard let leadership = replicas?.leadership(key), leadership.log === log else { return .notLeaderOrFollower }
        let epoch = leadership.leaderEpoch
        if p.currentLeaderEpoch >= 0 && p.currentLeaderEpoch < epoch { return .fencedLeaderEpoch }
        if p.currentLeaderEpoch > epoch { return .unknownLeaderEpoch }
        if p.lastFetchedEpoch >= 0 {
            let (ended, endOffset) = log.endOffset(forEpoch: p.lastFetchedEpoch)
            if ended != p.lastFetchedEpoch || endOffset < p.fetchOffset {
                data.divergingEpoch = .init(epoch: ended, endOffset: endOffset)
                data.highWatermark = log.highWatermark
                data.logStartOffset = log.logStartOffset
                return nil
            }
        }
        // An offset outside the log is answered OFFSET_OUT_OF_RANGE by the read; it is not a log end.
        guard p.fetchOffset >= log.logStartOffset && p.fetchOffset <= log.logEndOffset else { return nil }
        let (isReplica, advanced) = leadership.followerFetched(replica, fetchOffset: p.fetchOffset, monotonicMs: monotonicMs)
        guard isReplica else { return .notLeaderOrFollower }
        if advanced { fetchWaiters.notify(log) }
        return nil
    }
}

/// State of one waiting fetch. Sendable only because the closures that capture it are: every
/// access happens on `eventLoop` (asserted at the top of the completion, the one place that reads
/// or changes it after registration).
private final class FetchWait: @unchecked Sendable {
    let eventLoop: EventLoop
    var done = false
    var registration: UInt64?
    var timeout: Scheduled<Void>?

    init(eventLoop: EventLoop) { self.eventLoop = eventLoop }
}
