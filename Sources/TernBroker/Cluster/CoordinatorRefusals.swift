import TernCluster
import TernProtocol

/// Which internal topic's leader coordinates a request.
enum CoordinatorKind: Sendable {
    case group, transaction

    var topic: String { self == .group ? Broker.offsetsTopic : TransactionCoordinator.stateTopic }
}

extension Broker {
    /// Whether this broker coordinates groups (or transactional ids): a single broker always; in a
    /// cluster, the live leader of the internal topic's partition that the key hashes to. The
    /// internal topics have one partition for now, so one broker coordinates them all.
    func coordinates(_ kind: CoordinatorKind) -> Bool {
        guard cluster != nil else { return true }
        return leadershipRefusal(kind.topic, 0, in: view) == nil
    }

    /// FindCoordinator's answer in cluster mode: the leader of the internal topic's partition. The
    /// first request for a kind creates the topic (Kafka creates `__consumer_offsets` the same
    /// way) with `offsets.topic.replication.factor` / `transaction.state.log.replication.factor`
    /// replicas, capped at the live brokers; until it has a leader the answer is
    /// COORDINATOR_NOT_AVAILABLE, which clients retry.
    func coordinatorInCluster(_ kind: CoordinatorKind) -> BrokerRegistration? {
        let view = self.view
        guard let topic = view.topic(kind.topic) else {
            autoCreateInCluster(
                kind.topic, partitions: 1,
                factor: kind == .group ? config.offsetsTopicReplicationFactor : config.transactionStateReplicationFactor,
                configs: ["cleanup.policy": "compact", "segment.bytes": "104857600"].merging(kind == .group ? ["compression.type": "producer"] : [:]) { a, _ in a })
            return nil
        }
        guard let leader = topic.partitions.first?.leader else { return nil }
        return view.broker(leader)
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
