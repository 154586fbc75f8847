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
    func transactionalWriteCheck(
        _ header: RecordBatchHeader, transactionalId: String?, topic: String, partition: Int32, log: PartitionLog, on loop: EventLoop
    ) -> EventLoopFuture<KafkaError?> {
        guard let cluster, let channels, let id = transactionalId, !transactions.coordinates(transactionalId: id) else {
            return loop.makeSucceededFuture(
                transactions.refusal(ofWriteBy: header.producerId, epoch: header.producerEpoch, topic: topic, partition: partition))
        }
        if log.hasOpenTransaction(producerId: header.producerId, epoch: header.producerEpoch) { return loop.makeSucceededFuture(nil) }
        let request = AddPartitionsToTxnRequest(transactions: [
            .init(transactionalId: id, producerId: header.producerId, producerEpoch: header.producerEpoch, verifyOnly: true,
                  topics: [.init(name: topic, partitions: [partition])])
        ])
        let stateTopic = TransactionCoordinator.stateTopic
        let count = cluster.internalPartitions[stateTopic] ?? 1
        let promise = loop.makePromise(of: KafkaError?.self)
        promise.completeWithTask {
            let image = cluster.image
            let index = Int(CoordinatorPartition.of(id, partitions: Int(count)))
            guard let state = image.topics[stateTopic]?.partitions, index < state.count, state[index].leader != LeaderElection.noLeader else {
                return .notEnoughReplicas
            }
            do {
                let response = try await channels.send(request, to: state[index].leader, api: .addPartitionsToTxn, maxVersion: 5, as: AddPartitionsToTxnResponse.self)
                let code = response.resultsByTransaction.first?.topicResults.first?.resultsByPartition.first?.partitionErrorCode ?? response.errorCode
                switch KafkaError(rawValue: code) ?? .unknownServerError {
                case .none: return nil
                // The coordinator moved or is loading: retriable for the producer, as Kafka maps it.
                case .notCoordinator, .coordinatorNotAvailable, .coordinatorLoadInProgress: return .notEnoughReplicas
                case let error: return error
                }
            } catch {
                return .notEnoughReplicas
            }
        }
        return promise.futureResult
    }
}
