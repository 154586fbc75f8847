import NIOCore
import TernLog
import TernProtocol

extension GroupCoordinator {
    public func offsetCommit(_ req: OffsetCommitRequest, version: Int16) -> EventLoopFuture<OffsetCommitResponse> {
        loop.flatSubmit { [self] in
            @Sendable func respond(_ codes: (String, Int32) -> KafkaError) -> OffsetCommitResponse {
                OffsetCommitResponse(topics: req.topics.map { t in
                    .init(name: t.name, partitions: t.partitions.map { .init(partitionIndex: $0.partitionIndex, errorCode: codes(t.name, $0.partitionIndex).rawValue) })
                })
            }
            if let error = validateCommitter(
                group: req.groupId, generation: req.generationIdOrMemberEpoch, memberId: req.memberId, instanceId: req.groupInstanceId,
                memberEpochs: version >= 9)
            {
                return loop.makeSucceededFuture(respond { _, _ in error })
            }
            let now = PartitionLog.nowMs()
            var changes: [(TopicPartitionKey, CommittedOffset?)] = []
            var rejected: [TopicPartitionKey: KafkaError] = [:]
            for t in req.topics {
                for p in t.partitions {
                    let tp = TopicPartitionKey(topic: t.name, partition: p.partitionIndex)
                    if let refusal = offsetRefusal(topic: t.name, partition: p.partitionIndex, metadata: p.committedMetadata) {
                        rejected[tp] = refusal
                    } else {
                        changes.append((tp, CommittedOffset(
                            offset: p.committedOffset, leaderEpoch: p.committedLeaderEpoch, metadata: p.committedMetadata,
                            commitTimestamp: p.commitTimestamp >= 0 ? p.commitTimestamp : now)))
                    }
                }
            }
            let refused = rejected
            return persist(group: req.groupId, changes).map { stored in
                respond { topic, partition in
                    let tp = TopicPartitionKey(topic: topic, partition: partition)
                    return refused[tp] ?? (stored ? .none : .coordinatorNotAvailable)
                }
            }
        }
    }

    /// Who may commit, by Kafka's rules (`ClassicGroup`/`ConsumerGroup.validateOffsetCommit`): with
    /// a negative generation (member epoch) anyone may commit to a group with no members, whatever
    /// `member_id` says — an admin client, a consumer using `assign`, or a KIP-848 consumer's manual
    /// commit; otherwise the committer must be a current member (instance id checked first) of the
    /// current generation, or, with neither member id nor generation, the group must be empty.
    /// Why one partition's committed offset is refused (OffsetCommit and TxnOffsetCommit alike):
    /// a partition the topic does not have, or metadata over `offset.metadata.max.bytes`.
    func offsetRefusal(topic: String, partition: Int32, metadata: String?) -> KafkaError? {
        if partition < 0 || (topicCatalog.partitions(topic) ?? 0) <= partition { return .unknownTopicOrPartition }
        if (metadata?.utf8.count ?? 0) > config.offsetMetadataMaxBytes { return .offsetMetadataTooLarge }
        return nil
    }

    /// Group ids are written into `__consumer_offsets` keys as int16-length strings: a longer one (a
    /// flexible request's compact string, or invalid UTF-8 grown by decoding) could only be stored
    /// cut short, and ids cut to the same prefix would share offsets after a reload. Kafka's
    /// serializer fails such a write; here the request gets INVALID_GROUP_ID.
    static func isValidGroupId(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= Int(Int16.max)
    }

    /// `memberEpochs`: the request can carry a KIP-848 member epoch (OffsetCommit v9+,
    /// TxnOffsetCommit's generation field).
    func validateCommitter(
        group groupId: String, generation epoch: Int32, memberId: String, instanceId: String?, memberEpochs: Bool, transactional: Bool = false
    ) -> KafkaError? {
        guard Self.isValidGroupId(groupId) else { return .invalidGroupId }
        // TxnOffsetCommit before v3 carries no member id or generation (aiokafka's
        // send_offsets_to_transaction always sends none): a producer outside the group commits,
        // and Kafka's coordinators skip the membership checks for it while members are live.
        let anonymous = epoch < 0 && memberId.isEmpty && instanceId == nil
        if let modern = modernGroups[groupId] {
            // KIP-848 groups: the "generation" is the member epoch (OffsetCommit v9).
            if epoch < 0 && modern.members.isEmpty { return nil }
            if transactional && anonymous { return nil }
            guard let member = modern.members[memberId] else { return .unknownMemberId }
            // A classic member inside (KIP-848 migration) commits with its epoch as generation.
            if member.classic != nil { return epoch == member.epoch ? nil : .illegalGeneration }
            if !memberEpochs { return .unsupportedVersion }
            return epoch == member.epoch ? nil : .staleMemberEpoch
        }
        // A commit outside any group (an admin client, `assign`) creates no group object: its
        // offsets are the group, and the expiry cycle removes them.
        guard let g = group(groupId, create: false) else { return epoch < 0 ? nil : .unknownMemberId }
        if epoch < 0 && g.members.isEmpty { return nil }
        if epoch >= 0 || !memberId.isEmpty || instanceId != nil {
            if let error = validateMember(g, memberId: memberId, instanceId: instanceId) { return error }
            guard epoch == g.generationId else { return .illegalGeneration }
        } else if !g.members.isEmpty && !transactional {
            return .unknownMemberId
        }
        if g.state == .completingRebalance && !transactional { return .rebalanceInProgress }
        if let member = g.members[memberId] { scheduleSessionExpiry(g, member) }
        return nil
    }

    /// Appends the changes to `__consumer_offsets`; the in-memory view changes only once the
    /// record is written (and, in a cluster, on every in-sync replica), so a reply never reports an
    /// offset that a crash could lose.
    func persist(group: String, _ changes: [(TopicPartitionKey, CommittedOffset?)]) -> EventLoopFuture<Bool> {
        guard !changes.isEmpty else { return loop.makeSucceededFuture(true) }
        do {
            let batch = try OffsetStore.batch(group: group, changes, now: PartitionLog.nowMs())
            return appendOffsets(batch, group: group, origin: .leader()) { [self] in store.apply(group: group, changes) }
        } catch {
            return loop.makeSucceededFuture(false)
        }
    }

    /// Writes `g`'s current generation (a group-metadata record); completes with whether it is
    /// durable. The store keeps the highest generation written.
    func persistGeneration(_ g: ConsumerGroup) -> EventLoopFuture<Bool> {
        let (group, generation) = (g.groupId, g.generationId)
        do {
            let batch = try OffsetStore.groupBatch(
                group: group, protocolType: g.protocolType, generation: generation, protocolName: g.protocolName, leader: g.leaderId,
                now: PartitionLog.nowMs())
            return appendOffsets(batch, group: group, origin: .leader()) { [self] in store.setGeneration(group, generation) }
        } catch {
            return loop.makeSucceededFuture(false)
        }
    }

    /// Deletes `group`'s generation record (DeleteGroups), so a deleted group leaves nothing behind.
    func forgetGeneration(_ group: String) -> EventLoopFuture<Bool> {
        do {
            let batch = try OffsetStore.groupTombstone(group: group, now: PartitionLog.nowMs())
            return appendOffsets(batch, group: group, origin: .leader()) { [self] in store.forgetGeneration(group) }
        } catch {
            return loop.makeSucceededFuture(false)
        }
    }

    /// Appends an offsets batch to `group`'s partition of `__consumer_offsets` and completes, on
    /// the coordinator's loop, with whether it was written and replicated in time; `whenSafe` runs
    /// there first, only if it was.
    func appendOffsets(_ batch: ByteBuffer, group: String, origin: PartitionLog.Origin, whenSafe: @escaping @Sendable () -> Void) -> EventLoopFuture<Bool> {
        appendOffsets(batch, partition: partition(of: group), about: group, origin: origin, whenSafe: whenSafe)
    }

    /// As above, for a batch of any groups of one partition (`about` names them in the log).
    func appendOffsets(_ batch: ByteBuffer, partition: Int, about group: String, origin: PartitionLog.Origin,
                       whenSafe: @escaping @Sendable () -> Void) -> EventLoopFuture<Bool> {
        let promise = loop.makePromise(of: Bool.self)
        let headers: [RecordBatchHeader]
        do { headers = try RecordBatchHeader.validateAll(batch) } catch { return loop.makeSucceededFuture(false) }
        appender.append(batch, headers: headers, to: offsetsLogs[partition], origin: origin) { [self] result in
            loop.execute {
                switch result {
                case .success(let appended):
                    let replication = self.replicated?(partition, appended.lastOffset + 1, self.loop) ?? self.loop.makeSucceededFuture(true)
                    replication.hop(to: self.loop).whenSuccess { replicated in
                        if replicated {
                            whenSafe()
                        } else {
                            self.logger.warning("offsets not replicated in time", metadata: ["group": "\(group)"])
                        }
                        promise.succeed(replicated)
                    }
                case .failure(let error):
                    self.logger.error("offset write failed", metadata: ["group": "\(group)", "error": "\(error)"])
                    promise.succeed(false)
                }
            }
        }
        return promise.futureResult
    }

    public func offsetFetch(_ req: OffsetFetchRequest, version: Int16) -> EventLoopFuture<OffsetFetchResponse> {
        loop.submit { [self] in
            // v8+ asks for many groups at once; earlier versions for one.
            if version >= 8 {
                return OffsetFetchResponse(groups: req.groups.map { g in
                    let topics = fetched(group: g.groupId, g.topics.map { $0.map { ($0.name, $0.partitionIndexes) } })
                    return .init(groupId: g.groupId, topics: topics.map { t in
                        .init(name: t.0, partitions: t.1.map { .init(partitionIndex: $0.0, committedOffset: $0.1.offset, committedLeaderEpoch: $0.1.leaderEpoch, metadata: $0.1.metadata) })
                    })
                })
            }
            let topics = fetched(group: req.groupId, req.topics.map { $0.map { ($0.name, $0.partitionIndexes) } })
            return OffsetFetchResponse(topics: topics.map { t in
                .init(name: t.0, partitions: t.1.map { .init(partitionIndex: $0.0, committedOffset: $0.1.offset, committedLeaderEpoch: $0.1.leaderEpoch, metadata: $0.1.metadata) })
            })
        }
    }

    /// Committed offsets for the requested partitions (nil = every partition the group committed);
    /// partitions without one answer offset -1, as Kafka does.
    private func fetched(group: String, _ requested: [(String, [Int32])]?) -> [(String, [(Int32, CommittedOffset)])] {
        let committed = store.offsets[group] ?? [:]
        let none = CommittedOffset(offset: -1, leaderEpoch: -1, metadata: "", commitTimestamp: -1)
        if let requested {
            return requested.map { topic, partitions in
                (topic, partitions.map { ($0, committed[TopicPartitionKey(topic: topic, partition: $0)] ?? none) })
            }
        }
        let byTopic = Dictionary(grouping: committed, by: { $0.key.topic })
        return byTopic.keys.sorted().map { topic in
            (topic, byTopic[topic]!.map { ($0.key.partition, $0.value) }.sorted { $0.0 < $1.0 })
        }
    }

    public func offsetDelete(_ req: OffsetDeleteRequest, version: Int16) -> EventLoopFuture<OffsetDeleteResponse> {
        loop.flatSubmit { [self] in
            let g = group(req.groupId, create: false)
            guard store.offsets[req.groupId] != nil || !(g?.members.isEmpty ?? true) else {
                return loop.makeSucceededFuture(OffsetDeleteResponse(errorCode: KafkaError.groupIdNotFound.rawValue))
            }
            let subscribed = g.map(subscribedTopics) ?? []
            var changes: [(TopicPartitionKey, CommittedOffset?)] = []
            var response = OffsetDeleteResponse()
            for t in req.topics {
                let busy = subscribed.contains(t.name)
                response.topics.append(.init(name: t.name, partitions: t.partitions.map { p in
                    if !busy { changes.append((TopicPartitionKey(topic: t.name, partition: p.partitionIndex), nil)) }
                    return .init(partitionIndex: p.partitionIndex, errorCode: (busy ? KafkaError.groupSubscribedToTopic : .none).rawValue)
                }))
            }
            let answer = response
            return persist(group: req.groupId, changes).map { ok in
                ok ? answer : OffsetDeleteResponse(errorCode: KafkaError.coordinatorNotAvailable.rawValue)
            }
        }
    }

    /// Topics the group's consumers subscribe to, read from their "consumer" protocol metadata.
    func subscribedTopics(_ g: ConsumerGroup) -> Set<String> {
        guard g.protocolType == "consumer" else { return [] }
        var topics: Set<String> = []
        for m in g.members.values {
            for p in m.protocols {
                var meta = p.metadata
                guard let version = meta.readInteger(as: Int16.self),
                    let sub = try? ConsumerProtocolSubscription(from: &meta, version: min(version, 3))
                else { continue }
                topics.formUnion(sub.topics)
            }
        }
        return topics
    }
}

extension GroupCoordinator {
    public var eventLoop: EventLoop { loop }
}

public enum GroupCoordinatorError: Error { case offsetWriteFailed }
