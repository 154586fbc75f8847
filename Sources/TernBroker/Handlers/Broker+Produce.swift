import NIOCore
import TernLog
import TernProtocol
import TernReplication

extension Broker {
    /// Validates each partition's batch and hands it to the group-commit appender. The future
    /// completes when every partition's write (and fdatasync, when the flush policy asks) is done.
    /// Returns nil for acks=0, which gets no response at all.
    func produce(_ request: ProduceRequest, version: Int16, on eventLoop: EventLoop) -> EventLoopFuture<ProduceResponse>? {
        let acksValid = request.acks == 0 || request.acks == 1 || request.acks == -1
        let nowMs = PartitionLog.nowMs()
        var pending: [[EventLoopFuture<ProduceResponse.PartitionProduceResponse>]] = []
        let view = self.view
        for topicData in request.topicData {
            let topic = topics.topic(topicData.name)
            pending.append(topicData.partitionData.map { partitionData in
                let failed = { (error: Error) -> EventLoopFuture<ProduceResponse.PartitionProduceResponse> in
                    eventLoop.makeSucceededFuture(Self.produceError(error, partition: partitionData.index))
                }
                guard acksValid else { return failed(KafkaError.invalidRequiredAcks) }
                guard TopicName.isValid(topicData.name) else { return failed(KafkaError.invalidTopic) }
                guard !Self.internalTopics.contains(topicData.name) else { return failed(KafkaError.invalidTopic) }
                if let refusal = leadershipRefusal(topicData.name, partitionData.index, in: view) { return failed(refusal) }
                guard let topic, let log = topic.partition(partitionData.index) else { return failed(KafkaError.unknownTopicOrPartition) }
                let records = partitionData.records?.bytes ?? ByteBuffer()
                let (nodeId, acks, timeoutMs) = (config.nodeId, request.acks, Int64(request.timeoutMs))
                let isr = view.partition(topicData.name, partitionData.index)?.isr ?? [nodeId]
                let (name, index) = (topicData.name, partitionData.index)
                let prepare: @Sendable () throws -> ProducedWrite = {
                    var records = records
                    // Produce v3+ carries only magic v2 batches (Kafka refuses the rest as INVALID_RECORD).
                    var header = try ClientBatchValidator.validate(&records, policy: topic.batchPolicy, nowMs: nowMs)
                    if header.compression == .zstd && version < 7 { throw KafkaError.unsupportedCompressionType }  // KIP-110
                    if acks == -1 && isr.count < Int(topic.minInsyncReplicas) {
                        throw DescribedKafkaError(.notEnoughReplicas, "The size of the current ISR \(isr) is insufficient to satisfy the min.isr requirement of \(topic.minInsyncReplicas) for partition \(name)-\(index)")
                    }
                    if let codec = topic.storedCodec, header.compression != codec {
                        (records, header) = try Self.recompress(records, to: codec)
                    }
                    if topic.logAppendTime { header = try ClientBatchValidator.stampLogAppendTime(&records, nowMs: nowMs) }
                    return ProducedWrite(
                        topic: name, partition: index, log: log, records: records, header: header,
                        logAppendTimeMs: topic.logAppendTime ? nowMs : -1, acks: acks, timeoutMs: timeoutMs, minInsync: Int(topic.minInsyncReplicas))
                }
                let transactionalId = request.transactionalId
                let handOver: @Sendable (Result<ProducedWrite, Error>) -> EventLoopFuture<ProduceResponse.PartitionProduceResponse> = { [self] prepared in
                    let write: ProducedWrite
                    switch prepared {
                    case .failure(let error): return eventLoop.makeSucceededFuture(Self.produceError(error, partition: index))
                    case .success(let w): write = w
                    }
                    guard write.header.isTransactional else { return append(write, on: eventLoop) }
                    return transactionalWriteCheck(
                        write.header, transactionalId: transactionalId, topic: name, partition: index, log: log, adding: version >= 12, on: eventLoop
                    ).flatMap { [self] refusal in
                        refusal.map { eventLoop.makeSucceededFuture(Self.produceError($0, partition: index)) } ?? append(write, on: eventLoop)
                    }
                }
                // Compressed batches are checked off the event loop; appends to a partition keep
                // their arrival order either way (`ProduceValidation`).
                if ProduceValidation.isCompressed(records) {
                    let prepared = produceValidation.pool.runIfActive(eventLoop: eventLoop, prepare)
                    return produceValidation.turns.inOrder(log, prepared, on: eventLoop, handOver)
                }
                let prepared = Result { try prepare() }
                if produceValidation.turns.busy(log) {
                    return produceValidation.turns.inOrder(log, eventLoop.makeCompletedFuture(prepared), on: eventLoop, handOver)
                }
                return handOver(prepared)
            })
        }
        if request.acks == 0 { return nil }
        let names = request.topicData.map(\.name)
        return EventLoopFuture.whenAllSucceed(pending.map { EventLoopFuture.whenAllSucceed($0, on: eventLoop) }, on: eventLoop)
            .map { results in
                ProduceResponse(responses: zip(names, results).map { .init(name: $0, partitionResponses: $1) })
            }
    }

    /// One partition's validated batch on its way to the log.
    struct ProducedWrite: Sendable {
        let topic: String
        let partition: Int32
        let log: PartitionLog
        let records: ByteBuffer
        let header: RecordBatchHeader
        let logAppendTimeMs: Int64
        let acks: Int16
        let timeoutMs: Int64
        let minInsync: Int
    }

    /// Hands the batch to the group-commit appender; answers after the write — with acks=all, once
    /// every in-sync replica has it.
    private func append(_ w: ProducedWrite, on eventLoop: EventLoop) -> EventLoopFuture<ProduceResponse.PartitionProduceResponse> {
        let promise = eventLoop.makePromise(of: ProduceResponse.PartitionProduceResponse.self)
        let counters = metrics.topic(w.topic)
        let leadership = replicas?.leadership(ReplicaKey(w.topic, w.partition))
        // tern.replication.fsync: an acks=all write is synced here too before it counts.
        let sync = w.acks == -1 && leadership != nil && w.log.syncsReplication
        appender.append(w.records, headers: [w.header], to: w.log, sync: sync) { [fetchWaiters, logger] result in
            switch result {
            case .success(let appended):
                counters.bytesIn.increment(by: w.records.readableBytes)
                counters.recordsIn.increment(by: Int(w.header.recordsCount))
                // Followers waiting at this log fetch the new batch; with a lone in-sync replica
                // the high watermark follows at once.
                leadership?.leaderAppended()
                fetchWaiters.notify(w.log)
                let response = ProduceResponse.PartitionProduceResponse(
                    index: w.partition, baseOffset: appended.baseOffset, logAppendTimeMs: w.logAppendTimeMs, logStartOffset: appended.logStartOffset)
                // (`unsafeAckBeforeReplication` is the deliberate bug `tern verify` is tested against.)
                guard w.acks == -1, let leadership, !self.config.unsafeAckBeforeReplication else {
                    promise.succeed(response)
                    return
                }
                // acks=all: answered once every in-sync replica has the batch.
                leadership.waitForReplication(of: appended.lastOffset + 1, minInsync: w.minInsync, timeoutMs: w.timeoutMs, on: eventLoop)
                    .whenSuccess { error in
                        promise.succeed(error == .none ? response : Self.produceError(error, partition: w.partition))
                    }
            case .failure(let error):
                logger.error("produce failed", metadata: ["topic": "\(w.topic)", "error": "\(error)"])
                promise.succeed(Self.produceError(error, partition: w.partition))
            }
        }
        return promise.futureResult
    }

    /// Produce v0-2 carry message formats v0/v1, which Tern does not store (Kafka 4 refuses them
    /// too, KIP-724/896): every partition gets UNSUPPORTED_VERSION; acks=0 gets no response.
    static func refusedProduce(_ request: ProduceRequest) -> ProduceResponse? {
        guard request.acks != 0 else { return nil }
        return ProduceResponse(responses: request.topicData.map { t in
            .init(name: t.name, partitionResponses: t.partitionData.map {
                .init(index: $0.index, errorCode: KafkaError.unsupportedVersion.rawValue, baseOffset: -1)
            })
        })
    }

    /// A partition's error reply; Produce v8+ also carries Kafka's message and, when single records
    /// broke a rule, their indexes (`record_errors`, KIP-467).
    static func produceError(_ error: Error, partition: Int32) -> ProduceResponse.PartitionProduceResponse {
        var response = ProduceResponse.PartitionProduceResponse(index: partition, errorCode: KafkaError(error).rawValue, baseOffset: -1)
        switch error {
        case let e as RecordValidationError:
            response.errorMessage = e.message
            response.recordErrors = e.recordErrors.map { .init(batchIndex: $0.batchIndex, batchIndexErrorMessage: $0.message) }
        case RecordBatchError.invalidRecord(let message):
            response.errorMessage = message
        case let e as DescribedKafkaError:
            response.errorMessage = e.message
        default:
            response.errorMessage = "\(error)"
        }
        return response
    }

    /// Topic `compression.type` naming a codec: a batch sent with another codec is re-encoded with
    /// it (through the C core), keeping offset deltas, timestamps and producer fields, as Kafka's
    /// LogValidator recompresses.
    static func recompress(_ records: ByteBuffer, to codec: CompressionCodec) throws -> (ByteBuffer, RecordBatchHeader) {
        var input = records
        var batch = try RecordBatch.read(from: &input)
        batch.attributes = (batch.attributes & ~0x7) | codec.rawValue
        var out = ByteBuffer()
        try batch.encode(to: &out)
        return (out, try RecordBatchHeader.validated(in: out, at: out.readerIndex))
    }
}
