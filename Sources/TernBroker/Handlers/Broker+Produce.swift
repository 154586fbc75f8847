import NIOCore
import TernLog
import TernProtocol

extension Broker {
    /// Validates each partition's batches and hands them to the group-commit appender. The future
    /// completes when every partition's write (and fdatasync, when the flush policy asks) is done.
    /// Returns nil for acks=0, which gets no response at all.
    func produce(_ request: ProduceRequest, version: Int16, on eventLoop: EventLoop) -> EventLoopFuture<ProduceResponse>? {
        let acksValid = request.acks == 0 || request.acks == 1 || request.acks == -1
        var pending: [[EventLoopFuture<ProduceResponse.PartitionProduceResponse>]] = []
        for topicData in request.topicData {
            let topic = topics.topic(topicData.name)
            pending.append(topicData.partitionData.map { partitionData in
                let failed = { (error: Error) -> EventLoopFuture<ProduceResponse.PartitionProduceResponse> in
                    eventLoop.makeSucceededFuture(.init(index: partitionData.index, errorCode: KafkaError(error).rawValue, baseOffset: -1))
                }
                guard acksValid else { return failed(KafkaError.invalidRequiredAcks) }
                guard !Self.internalTopics.contains(topicData.name) else { return failed(KafkaError.invalidTopic) }
                guard let log = topic?.partition(partitionData.index) else { return failed(KafkaError.unknownTopicOrPartition) }
                var records = partitionData.records?.bytes ?? ByteBuffer()
                var headers: [RecordBatchHeader]
                do {
                    headers = try validate(records, version: version)
                    if compression(of: topic) == .lz4 {
                        (records, headers) = try recompressLZ4(records, headers)
                    }
                } catch {
                    return failed(error)
                }
                let promise = eventLoop.makePromise(of: ProduceResponse.PartitionProduceResponse.self)
                let counters = metrics.topic(topicData.name)
                let (bytes, count) = (records.readableBytes, headers.reduce(0) { $0 + Int($1.recordsCount) })
                appender.append(records, headers: headers, to: log) { [fetchWaiters, logger] result in
                    switch result {
                    case .success(let appended):
                        counters.bytesIn.increment(by: bytes)
                        counters.recordsIn.increment(by: count)
                        fetchWaiters.notify(log)
                        promise.succeed(.init(index: partitionData.index, baseOffset: appended.baseOffset, logStartOffset: appended.logStartOffset))
                    case .failure(let error):
                        logger.error("produce failed", metadata: ["topic": "\(topicData.name)", "error": "\(error)"])
                        promise.succeed(.init(index: partitionData.index, errorCode: KafkaError(error).rawValue, baseOffset: -1))
                    }
                }
                return promise.futureResult
            })
        }
        if request.acks == 0 { return nil }
        let names = request.topicData.map(\.name)
        return EventLoopFuture.whenAllSucceed(pending.map { EventLoopFuture.whenAllSucceed($0, on: eventLoop) }, on: eventLoop)
            .map { results in
                ProduceResponse(responses: zip(names, results).map { .init(name: $0, partitionResponses: $1) })
            }
    }

    private func compression(of topic: Topic?) -> TopicCompression {
        topic?.metadata.configs["compression.type"].flatMap(TopicCompression.init(rawValue:)) ?? config.compression
    }

    /// Topic `compression.type=lz4`: uncompressed batches are re-encoded with LZ4 (through the C
    /// core), keeping offsets deltas, timestamps and producer fields. Batches already compressed
    /// are stored as sent: gzip, snappy and zstd are not decoded by the broker.
    private func recompressLZ4(_ records: ByteBuffer, _ headers: [RecordBatchHeader]) throws -> (ByteBuffer, [RecordBatchHeader]) {
        guard headers.contains(where: { $0.compression == CompressionCodec.none && !$0.isControl }) else { return (records, headers) }
        var input = records
        var out = ByteBuffer()
        for h in headers {
            if h.compression == CompressionCodec.none && !h.isControl {
                var batch = try RecordBatch.read(from: &input)
                batch.attributes = (batch.attributes & ~0x7) | CompressionCodec.lz4.rawValue
                try batch.encode(to: &out)
            } else {
                out.writeImmutableBuffer(try input.readKafkaSlice(length: h.totalSize))
            }
        }
        return (out, try RecordBatchHeader.validateAll(out))
    }

    /// Checks what the broker must before storing: whole v2 batches with valid CRCs, a codec this
    /// request version may carry, and no batch over `message.max.bytes`.
    private func validate(_ records: ByteBuffer, version: Int16) throws -> [RecordBatchHeader] {
        guard records.readableBytes > 0 else { throw KafkaError.corruptMessage }
        let headers = try RecordBatchHeader.validateAll(records)
        for h in headers {
            if h.totalSize > config.messageMaxBytes { throw KafkaError.messageTooLarge }
            // zstd needs Produce v7+ (KIP-110); older requests must not carry it.
            if h.compression == .zstd && version < 7 { throw KafkaError.unsupportedCompressionType }
            if h.compression == nil { throw KafkaError.unsupportedCompressionType }
        }
        return headers
    }
}
