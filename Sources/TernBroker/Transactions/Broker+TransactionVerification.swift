import NIOCore
import TernCluster
import TernGroups
import TernLog
import TernProtocol

extension Broker {
    /// Whether a transactional batch may be written to a partition (Kafka's INVALID_TXN_STATE
    /// otherwise: a stray batch would hold the last stable offset back for good). Where this
    /// broker coordinates the transactional id the answer is local. Elsewhere (cluster mode, the
    /// coordinator on another broker) a producer whose transaction this partition has already
    /// seen open, at this epoch, may go on; the first batch of a transaction is checked with the
    /// coordinator — AddPartitionsToTxn v4 `verify_only`, KIP-890's verification.
    /// `adding` (Produce v12, KIP-890 part 2): the produce itself adds the partition to the
    /// transaction, as AddPartitionsToTxn would, instead of requiring it added before.
    func transactionalWriteCheck(
        _ header: RecordBatchHeader, transactionalId: String?, topic: String, partition: Int32, log: PartitionLog, adding: Bool,
        on loop: EventLoop
    ) -> EventLoopFuture<KafkaError?> {
        guard let cluster, let channels, let id = transactionalId, !transactions.coordinates(transactionalId: id) else {
            let refusal = transactions.refusal(ofWriteBy: header.producerId, epoch: header.producerEpoch, topic: topic, partition: partition)
            // Added only when that is all that is missing: a fenced epoch stays refused.
            guard adding, refusal == .invalidTxnState, let id = transactionalId else { return loop.makeSucceededFuture(refusal) }
            return transactions.addPartitions(id, producerId: header.producerId, epoch: header.producerEpoch, [(topic, partition)])
                .hop(to: loop).map { $0 == .none ? nil : $0 }
        }
        if log.hasOpenTransaction(producerId: header.producerId, epoch: header.producerEpoch) { return loop.makeSucceededFuture(nil) }
        return askCoordinator(
            id, producerId: header.producerId, epoch: header.producerEpoch, topic: topic, partition: partition, adding: adding,
            unavailable: .notEnoughReplicas, cluster: cluster, channels: channels, on: loop)
    }

    /// TxnOffsetCommit's check, as Kafka's group coordinator verifies it (KIP-890): the group's
    /// `__consumer_offsets` partition must be in the producer's ongoing transaction — added by
    /// AddOffsetsToTxn — at the producer's epoch. Without it, offsets written for a made-up or
    /// finished transaction would wait for a marker that never comes. `adding` (v5, KIP-890 part
    /// 2): the commit adds the partition itself, as AddOffsetsToTxn would.
    func transactionalOffsetsCheck(_ r: TxnOffsetCommitRequest, partition: Int32, adding: Bool, on loop: EventLoop) -> EventLoopFuture<KafkaError?> {
        guard let cluster, let channels, !transactions.coordinates(transactionalId: r.transactionalId) else {
            let code = transactions.verifyPartitions(r.transactionalId, producerId: r.producerId, epoch: r.producerEpoch, [(Self.offsetsTopic, partition)])
                .first ?? .invalidTxnState
            // Added (and persisted) only when that is all that is missing.
            guard adding, code == .invalidTxnState else { return loop.makeSucceededFuture(code == .none ? nil : code) }
            return transactions.addOffsets(r.transactionalId, producerId: r.producerId, epoch: r.producerEpoch, group: r.groupId)
                .hop(to: loop).map { $0 == .none ? nil : $0 }
        }
        return askCoordinator(
            r.transactionalId, producerId: r.producerId, epoch: r.producerEpoch, topic: Self.offsetsTopic, partition: partition, adding: adding,
            unavailable: .coordinatorNotAvailable, cluster: cluster, channels: channels, on: loop)
    }

    /// AddPartitionsToTxn v4 to the transactional id's coordinator on another broker: `verify_only`
    /// unless `adding`. `unavailable` is the retriable error of the caller's API for a coordinator
    /// that cannot be reached, moved or is loading.
    private func askCoordinator(
        _ id: String, producerId: Int64, epoch: Int16, topic: String, partition: Int32, adding: Bool, unavailable: KafkaError,
        cluster: BrokerCluster, channels: BrokerChannels, on loop: EventLoop
    ) -> EventLoopFuture<KafkaError?> {
        let request = AddPartitionsToTxnRequest(transactions: [
            .init(transactionalId: id, producerId: producerId, producerEpoch: epoch, verifyOnly: !adding,
                  topics: [.init(name: topic, partitions: [partition])])
        ])
        let stateTopic = TransactionCoordinator.stateTopic
        let count = cluster.internalPartitions[stateTopic] ?? 1
        let promise = loop.makePromise(of: KafkaError?.self)
        promise.completeWithTask {
            let image = cluster.image
            let index = Int(CoordinatorPartition.of(id, partitions: Int(count)))
            guard let state = image.topics[stateTopic]?.partitions, index < state.count, state[index].leader != LeaderElection.noLeader else {
                return unavailable
            }
            do {
                let response = try await channels.send(request, to: state[index].leader, api: .addPartitionsToTxn, maxVersion: 5, as: AddPartitionsToTxnResponse.self)
                let code = response.resultsByTransaction.first?.topicResults.first?.resultsByPartition.first?.partitionErrorCode ?? response.errorCode
                switch KafkaError(rawValue: code) ?? .unknownServerError {
                case .none: return nil
                // The coordinator moved or is loading: retriable for the producer, as Kafka maps it.
                case .notCoordinator, .coordinatorNotAvailable, .coordinatorLoadInProgress: return unavailable
                case let error: return error
                }
            } catch {
                return unavailable
            }
        }
        return promise.futureResult
    }
}
