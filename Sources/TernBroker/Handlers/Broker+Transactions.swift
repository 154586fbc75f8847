import NIOCore
import TernLog
import TernProtocol

extension Broker {
    func initProducerIdTransactional(_ request: InitProducerIdRequest, version: Int16, transactionalId: String, on loop: EventLoop)
        -> EventLoopFuture<InitProducerIdResponse>
    {
        guard request.transactionTimeoutMs > 0, request.transactionTimeoutMs <= 900_000 else {
            return loop.makeSucceededFuture(InitProducerIdResponse(errorCode: KafkaError.invalidTransactionTimeout.rawValue))
        }
        return transactions.initProducerId(transactionalId: transactionalId, timeoutMs: request.transactionTimeoutMs)
            .map { InitProducerIdResponse(errorCode: 0, producerId: $0.0, producerEpoch: $0.1) }
            .recover { error in InitProducerIdResponse(errorCode: ((error as? KafkaError) ?? .coordinatorNotAvailable).rawValue) }
    }

    func addPartitionsToTxn(_ r: AddPartitionsToTxnRequest, version: Int16, on eventLoop: EventLoop) -> EventLoopFuture<AddPartitionsToTxnResponse> {
        if version >= 4 { return addPartitionsToTxnBatched(r, on: eventLoop) }
        // v0-3 (clients): one transaction in the top-level fields.
        let partitions = r.v3AndBelowTopics.flatMap { t in t.partitions.map { (t.name, $0) } }
        return transactions.addPartitions(r.v3AndBelowTransactionalId, producerId: r.v3AndBelowProducerId, epoch: r.v3AndBelowProducerEpoch, partitions)
            .map { error in
                AddPartitionsToTxnResponse(resultsByTopicV3AndBelow: r.v3AndBelowTopics.map { t in
                    .init(name: t.name, resultsByPartition: t.partitions.map { .init(partitionIndex: $0, partitionErrorCode: error.rawValue) })
                })
            }
    }

    /// v4+ (KIP-890, sent by brokers): several transactions per request; with `verify_only` each
    /// partition is checked to be in its transaction already instead of added.
    private func addPartitionsToTxnBatched(_ r: AddPartitionsToTxnRequest, on eventLoop: EventLoop) -> EventLoopFuture<AddPartitionsToTxnResponse> {
        let results = r.transactions.map { txn -> EventLoopFuture<AddPartitionsToTxnResponse.AddPartitionsToTxnResult> in
            let partitions = txn.topics.flatMap { t in t.partitions.map { (t.name, $0) } }
            @Sendable func result(_ errors: [KafkaError]) -> AddPartitionsToTxnResponse.AddPartitionsToTxnResult {
                var index = 0
                return .init(transactionalId: txn.transactionalId, topicResults: txn.topics.map { t in
                    .init(name: t.name, resultsByPartition: t.partitions.map { p in
                        defer { index += 1 }
                        return .init(partitionIndex: p, partitionErrorCode: errors[index].rawValue)
                    })
                })
            }
            if txn.verifyOnly {
                return eventLoop.makeSucceededFuture(result(transactions.verifyPartitions(
                    txn.transactionalId, producerId: txn.producerId, epoch: txn.producerEpoch, partitions)))
            }
            return transactions.addPartitions(txn.transactionalId, producerId: txn.producerId, epoch: txn.producerEpoch, partitions)
                .hop(to: eventLoop)
                .map { error in result(partitions.map { _ in error }) }
        }
        return EventLoopFuture.whenAllSucceed(results, on: eventLoop).map { AddPartitionsToTxnResponse(errorCode: 0, resultsByTransaction: $0) }
    }

    func addOffsetsToTxn(_ r: AddOffsetsToTxnRequest, version: Int16) -> EventLoopFuture<AddOffsetsToTxnResponse> {
        transactions.addOffsets(r.transactionalId, producerId: r.producerId, epoch: r.producerEpoch, group: r.groupId)
            .map { AddOffsetsToTxnResponse(errorCode: $0.rawValue) }
    }

    /// TxnOffsetCommit goes to the group's coordinator (the gate checks it), which writes the
    /// offsets as the transaction's records (`GroupCoordinator+TransactionalOffsets`).
    /// The group coordinator writes the offsets once the transaction is known to include the
    /// group's offsets partition (`transactionalOffsetsCheck`); otherwise every partition gets the
    /// refusal.
    func txnOffsetCommit(_ r: TxnOffsetCommitRequest, version: Int16, on loop: EventLoop) -> EventLoopFuture<TxnOffsetCommitResponse> {
        transactionalOffsetsCheck(r, partition: Int32(groups.partition(of: r.groupId)), adding: version >= 5, on: loop).flatMap { [self] refusal in
            guard let refusal else { return groups.txnOffsetCommit(r, version: version).hop(to: loop) }
            return loop.makeSucceededFuture(TxnOffsetCommitResponse(topics: r.topics.map { t in
                .init(name: t.name, partitions: t.partitions.map { .init(partitionIndex: $0.partitionIndex, errorCode: refusal.rawValue) })
            }))
        }
    }

    func endTxn(_ r: EndTxnRequest, version: Int16) -> EventLoopFuture<EndTxnResponse> {
        transactions.endTransaction(r.transactionalId, producerId: r.producerId, epoch: r.producerEpoch, commit: r.committed, bumpEpoch: version >= 5)
            .map { EndTxnResponse(errorCode: $0.error.rawValue, producerId: $0.producerId, producerEpoch: $0.producerEpoch) }
    }

    func describeTransactions(_ r: DescribeTransactionsRequest, version: Int16) -> DescribeTransactionsResponse {
        DescribeTransactionsResponse(transactionStates: transactions.describe(r.transactionalIds).map { id, meta in
            guard let m = meta else { return .init(errorCode: KafkaError.transactionalIdNotFound.rawValue, transactionalId: id) }
            let byTopic = Dictionary(grouping: m.partitions, by: \.topic)
            return .init(
                transactionalId: id, transactionState: m.state.rawValue, transactionTimeoutMs: m.timeoutMs,
                transactionStartTimeMs: m.startedMs, producerId: m.producerId, producerEpoch: m.producerEpoch,
                topics: byTopic.map { .init(topic: $0.key, partitions: $0.value.map(\.partition).sorted()) })
        })
    }

    /// ListTransactions with Kafka's filters: states (names Kafka does not know are echoed back in
    /// `unknown_state_filters`), producer ids, and (v1, KIP-994) transactions running longer than
    /// `duration_filter` ms.
    func listTransactions(_ r: ListTransactionsRequest, version: Int16) -> ListTransactionsResponse {
        let kafkaStates = Set(["Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort", "Dead", "PrepareEpochFence"])
        let states = Set(r.stateFilters)
        let pids = Set(r.producerIdFilters)
        let now = PartitionLog.nowMs()
        let minDuration = version >= 1 ? r.durationFilter : -1
        return ListTransactionsResponse(
            unknownStateFilters: r.stateFilters.filter { !kafkaStates.contains($0) },
            transactionStates: transactions.all
                .filter { (states.isEmpty || states.contains($0.state.rawValue)) && (pids.isEmpty || pids.contains($0.producerId)) }
                .filter { minDuration < 0 || now - $0.startedMs > minDuration }
                .sorted { $0.transactionalId < $1.transactionalId }
                .map { .init(transactionalId: $0.transactionalId, producerId: $0.producerId, transactionState: $0.state.rawValue) })
    }
}
