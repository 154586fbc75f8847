import TernLog
import TernProtocol

extension Broker {
    /// Moves each partition's log start offset to the requested offset (-1 = high watermark),
    /// deleting the segments entirely below it.
    func deleteRecords(_ request: DeleteRecordsRequest, version: Int16) -> DeleteRecordsResponse {
        var response = DeleteRecordsResponse()
        let view = self.view
        for t in request.topics {
            let topic = topics.topic(t.name)
            var result = DeleteRecordsResponse.DeleteRecordsTopicResult(name: t.name)
            for p in t.partitions {
                var r = DeleteRecordsResponse.DeleteRecordsPartitionResult(partitionIndex: p.partitionIndex, lowWatermark: -1)
                if Self.internalTopics.contains(t.name) {
                    // Kafka: "Cannot delete records of internal topic" — it would wipe committed
                    // offsets or transaction state at the next restart.
                    r.errorCode = KafkaError.invalidTopic.rawValue
                } else if let refusal = leadershipRefusal(t.name, p.partitionIndex, in: view) {
                    r.errorCode = refusal.rawValue
                } else if let log = topic?.partition(p.partitionIndex) {
                    do {
                        r.lowWatermark = try log.deleteRecords(before: p.offset)
                    } catch {
                        r.errorCode = KafkaError(error).rawValue
                    }
                } else {
                    r.errorCode = KafkaError.unknownTopicOrPartition.rawValue
                }
                result.partitions.append(r)
            }
            response.topics.append(result)
        }
        return response
    }
}
