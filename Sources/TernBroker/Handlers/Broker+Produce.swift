import NIOCore
import TernLog
import TernProtocol

extension Broker {
    /// Appends each partition's batches. Returns nil for acks=0, which gets no response at all.
    func produce(_ request: ProduceRequest, version: Int16) -> ProduceResponse? {
        var response = ProduceResponse()
        let acksValid = request.acks == 0 || request.acks == 1 || request.acks == -1
        for topicData in request.topicData {
            var topicResponse = ProduceResponse.TopicProduceResponse(name: topicData.name)
            let topic = topics.topic(topicData.name)
            for partitionData in topicData.partitionData {
                var result = ProduceResponse.PartitionProduceResponse(index: partitionData.index, baseOffset: -1)
                do {
                    guard acksValid else { throw KafkaError.invalidRequiredAcks }
                    guard let log = topic?.partition(partitionData.index) else { throw KafkaError.unknownTopicOrPartition }
                    let appended = try append(partitionData.records ?? ByteBuffer(), to: log, version: version)
                    result.baseOffset = appended.baseOffset
                    result.logStartOffset = appended.logStartOffset
                    fetchWaiters.notify(log)
                } catch {
                    let code = KafkaError(error)
                    if code == .unknownServerError || code == .kafkaStorageError {
                        logger.error("produce failed", metadata: ["topic": "\(topicData.name)", "error": "\(error)"])
                    }
                    result.errorCode = code.rawValue
                }
                topicResponse.partitionResponses.append(result)
            }
            response.responses.append(topicResponse)
        }
        return request.acks == 0 ? nil : response
    }

    private func append(_ records: ByteBuffer, to log: PartitionLog, version: Int16) throws -> PartitionLog.AppendResult {
        guard records.readableBytes > 0 else { throw KafkaError.corruptMessage }
        let headers = try RecordBatchHeader.validateAll(records)
        for h in headers {
            if h.totalSize > config.messageMaxBytes { throw KafkaError.messageTooLarge }
            // zstd needs Produce v7+ (KIP-110); older requests must not carry it.
            if h.compression == .zstd && version < 7 { throw KafkaError.unsupportedCompressionType }
            if h.compression == nil { throw KafkaError.unsupportedCompressionType }
        }
        return try log.append(records, headers: headers)
    }
}
