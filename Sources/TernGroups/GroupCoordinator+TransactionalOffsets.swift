import NIOCore
import TernLog
import TernProtocol

/// Offsets committed inside a transaction (KIP-98's `sendOffsetsToTransaction`), as Kafka's group
/// coordinator keeps them: TxnOffsetCommit, sent to the group's coordinator, writes the offsets to
/// the group's `__consumer_offsets` partition as transactional records of the producer — on every
/// in-sync replica before the answer, but not yet committed. AddOffsetsToTxn made that partition
/// part of the transaction, so the transaction coordinator writes its marker there: a commit makes
/// the offsets the group's, an abort drops them (`completeTransaction`). A coordinator loading the
/// partition replays the same rules from the log (`OffsetStore`).
extension GroupCoordinator {
    public func txnOffsetCommit(_ req: TxnOffsetCommitRequest, version: Int16) -> EventLoopFuture<TxnOffsetCommitResponse> {
        loop.flatSubmit { [self] in
            @Sendable func respond(_ codes: (String, Int32) -> KafkaError) -> TxnOffsetCommitResponse {
                TxnOffsetCommitResponse(topics: req.topics.map { t in
                    .init(name: t.name, partitions: t.partitions.map { .init(partitionIndex: $0.partitionIndex, errorCode: codes(t.name, $0.partitionIndex).rawValue) })
                })
            }
            if let error = validateCommitter(
                group: req.groupId, generation: req.generationId, memberId: req.memberId, instanceId: req.groupInstanceId, memberEpochs: true,
                transactional: true)
            {
                return loop.makeSucceededFuture(respond { _, _ in error })
            }
            let now = PartitionLog.nowMs()
            var changes: [(TopicPartitionKey, CommittedOffset)] = []
            var rejected: [TopicPartitionKey: KafkaError] = [:]
            for t in req.topics {
                for p in t.partitions {
                    let tp = TopicPartitionKey(topic: t.name, partition: p.partitionIndex)
                    if let refusal = offsetRefusal(topic: t.name, partition: p.partitionIndex, metadata: p.committedMetadata) {
                        rejected[tp] = refusal
                    } else {
                        changes.append((tp, CommittedOffset(
                            offset: p.committedOffset, leaderEpoch: p.committedLeaderEpoch, metadata: p.committedMetadata, commitTimestamp: now)))
                    }
                }
            }
            let refused = rejected
            return persistTransactional(group: req.groupId, producer: (req.producerId, req.producerEpoch), changes).map { stored in
                respond { topic, partition in
                    refused[TopicPartitionKey(topic: topic, partition: partition)] ?? (stored ? .none : .coordinatorNotAvailable)
                }
            }
        }
    }

    /// The marker of `producerId`'s transaction reached `partition` of `__consumer_offsets`: its
    /// offsets for the groups there become committed, or are dropped.
    public func completeTransaction(producerId: Int64, commit: Bool, partition: Int) -> EventLoopFuture<Void> {
        loop.submit { [self] in
            store.complete(producerId: producerId, commit: commit, included: { self.partition(of: $0) == partition })
        }
    }

    /// Writes a transaction's offsets as its transactional records, waits for the ISR, then keeps
    /// them pending until the marker.
    private func persistTransactional(
        group: String, producer: (id: Int64, epoch: Int16), _ changes: [(TopicPartitionKey, CommittedOffset)]
    ) -> EventLoopFuture<Bool> {
        loop.preconditionInEventLoop()
        guard !changes.isEmpty else { return loop.makeSucceededFuture(true) }
        do {
            let batch = try OffsetStore.batch(group: group, changes.map { ($0.0, Optional($0.1)) }, now: PartitionLog.nowMs(), producer: producer)
            return appendOffsets(batch, group: group, origin: .coordinator) { [self] in
                store.stage(producerId: producer.id, group: group, changes)
            }
        } catch {
            return loop.makeSucceededFuture(false)
        }
    }
}
