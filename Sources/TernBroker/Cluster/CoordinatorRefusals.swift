import TernCluster
import TernGroups
import TernProtocol

/// Which internal topic's leader coordinates a request.
enum CoordinatorKind: Sendable {
    case group, transaction

    var topic: String { self == .group ? Broker.offsetsTopic : TransactionCoordinator.stateTopic }
}

extension Broker {
    /// The internal topic's partition holding `key` (a group or transactional id): Kafka's hash
    /// over the topic's partition count in this data directory (the cluster's, in a cluster).
    func coordinatorPartition(_ kind: CoordinatorKind, _ key: String) -> Int32 {
        Int32(CoordinatorPartition.of(key, partitions: Int(internalPartitionCount(kind.topic) ?? 1)))
    }

    /// Whether this broker coordinates every one of `keys`: a single broker always; in a cluster,
    /// the live leader of the internal partition each hashes to, once its coordinator has loaded
    /// the partition in its current leader epoch (until then its memory may be empty, or what
    /// another coordinator has since changed).
    func coordinates(_ kind: CoordinatorKind, _ keys: [String]) -> Bool {
        guard cluster != nil else { return true }
        if kind == .transaction { return keys.allSatisfy { transactions.coordinates(transactionalId: $0) } }
        let view = self.view
        let loaded = groupCoordination.withLockedValue { $0 }
        return keys.allSatisfy { key in
            let partition = coordinatorPartition(kind, key)
            return leadershipRefusal(kind.topic, partition, in: view) == nil
                && loaded[Int(partition)] != nil && loaded[Int(partition)] == view.partition(kind.topic, partition)?.leaderEpoch
        }
    }

    /// FindCoordinator's answer in cluster mode: the leader of the internal partition `key`
    /// hashes to. The first request creates the topic (Kafka creates `__consumer_offsets` the same
    /// way; `autoCreateInCluster` gives it the internal topic's settings); until the partition has
    /// a live leader the answer is COORDINATOR_NOT_AVAILABLE, which clients retry.
    func coordinatorInCluster(_ kind: CoordinatorKind, key: String) -> BrokerRegistration? {
        let view = self.view
        guard let topic = view.topic(kind.topic) else {
            autoCreateInCluster(kind.topic)
            return nil
        }
        let partition = Int(coordinatorPartition(kind, key))
        guard partition < topic.partitions.count else { return nil }
        return view.broker(topic.partitions[partition].leader)
    }
}

/// NOT_COORDINATOR answers for the coordinator APIs, shaped as each API and version carries its
/// errors, for requests that reach a broker that does not coordinate them: the client looks the
/// coordinator up again (FindCoordinator) and retries there.
enum CoordinatorRefusals {
    static let code = KafkaError.notCoordinator.rawValue

    static func offsetCommit(_ r: OffsetCommitRequest, _ v: Int16) -> OffsetCommitResponse {
        OffsetCommitResponse(topics: r.topics.map { t in .init(name: t.name, partitions: t.partitions.map { .init(partitionIndex: $0.partitionIndex, errorCode: code) }) })
    }

    static func offsetFetch(_ r: OffsetFetchRequest, _ v: Int16) -> OffsetFetchResponse {
        var response = OffsetFetchResponse()
        if v >= 8 {
            response.groups = r.groups.map { .init(groupId: $0.groupId, errorCode: code) }
        } else {
            response.errorCode = code
        }
        return response
    }

    static func txnOffsetCommit(_ r: TxnOffsetCommitRequest, _ v: Int16) -> TxnOffsetCommitResponse {
        TxnOffsetCommitResponse(topics: r.topics.map { t in .init(name: t.name, partitions: t.partitions.map { .init(partitionIndex: $0.partitionIndex, errorCode: code) }) })
    }

    static func addPartitionsToTxn(_ r: AddPartitionsToTxnRequest, _ v: Int16) -> AddPartitionsToTxnResponse {
        let results = { (topics: [AddPartitionsToTxnRequest.AddPartitionsToTxnTopic]) in
            topics.map { t in AddPartitionsToTxnResponse.AddPartitionsToTxnTopicResult(name: t.name, resultsByPartition: t.partitions.map { .init(partitionIndex: $0, partitionErrorCode: code) }) }
        }
        if v >= 4 {
            return AddPartitionsToTxnResponse(errorCode: code, resultsByTransaction: r.transactions.map { .init(transactionalId: $0.transactionalId, topicResults: results($0.topics)) })
        }
        return AddPartitionsToTxnResponse(resultsByTopicV3AndBelow: results(r.v3AndBelowTopics))
    }
}
