import NIOCore
import TernGroups
import TernLog
import TernProtocol

/// Kafka's end-transaction marker: a control batch of one record (key: version 0 and the control
/// type — commit or abort; value: version 0 and the coordinator epoch) carrying the producer's
/// id and epoch, which closes the producer's transaction in one partition.
enum TransactionMarker {
    static func batch(producerId: Int64, epoch: Int16, commit: Bool, coordinatorEpoch: Int32 = 0) throws -> ByteBuffer {
        var key = ByteBuffer()
        key.writeInteger(0 as Int16)
        key.writeInteger(commit ? TransactionIndex.commitMarker : TransactionIndex.abortMarker)
        var value = ByteBuffer()
        value.writeInteger(0 as Int16)
        value.writeInteger(coordinatorEpoch)
        var batch = RecordBatch(records: [Record(timestamp: PartitionLog.nowMs(), key: key, value: value)])
        batch.attributes = 0x30  // transactional + control
        batch.producerId = producerId
        batch.producerEpoch = epoch
        var out = ByteBuffer()
        try batch.encode(to: &out)
        return out
    }

    /// Appends a marker to `log` as its leader and completes — with the error that stopped it, or
    /// none — once it is on the partition's in-sync replicas. On `__consumer_offsets` the group
    /// coordinator then commits (or drops) the offsets the transaction wrote there.
    static func append(
        producerId: Int64, epoch: Int16, commit: Bool, coordinatorEpoch: Int32 = 0, to log: PartitionLog, topic: String, partition: Int32,
        appender: LogAppender, groups: GroupCoordinator,
        replicated: @escaping @Sendable (String, Int32, Int64, EventLoop) -> EventLoopFuture<KafkaError>, on loop: EventLoop
    ) -> EventLoopFuture<KafkaError> {
        let promise = loop.makePromise(of: KafkaError.self)
        do {
            let out = try batch(producerId: producerId, epoch: epoch, commit: commit, coordinatorEpoch: coordinatorEpoch)
            appender.append(out, headers: try RecordBatchHeader.validateAll(out), to: log) { result in
                switch result {
                case .success(let appended):
                    replicated(topic, partition, appended.lastOffset + 1, loop).whenSuccess { error in
                        guard error == .none, topic == Broker.offsetsTopic else { return promise.succeed(error) }
                        groups.completeTransaction(producerId: producerId, commit: commit, partition: Int(partition)).whenComplete { _ in
                            promise.succeed(.none)
                        }
                    }
                case .failure(let error):
                    promise.succeed(KafkaError(error))
                }
            }
        } catch {
            promise.succeed(KafkaError(error))
        }
        return promise.futureResult
    }
}
