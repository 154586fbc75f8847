import TernLog
import TernProtocol

extension Broker {
    /// Special timestamps: -1 latest (high watermark), -2 earliest (log start offset).
    func listOffsets(_ request: ListOffsetsRequest, version: Int16) -> ListOffsetsResponse {
        var response = ListOffsetsResponse()
        for t in request.topics {
            var topicResponse = ListOffsetsResponse.ListOffsetsTopicResponse(name: t.name)
            let topic = topics.topic(t.name)
            for p in t.partitions {
                var r = ListOffsetsResponse.ListOffsetsPartitionResponse(partitionIndex: p.partitionIndex)
                if let log = topic?.partition(p.partitionIndex) {
                    do {
                        switch p.timestamp {
                        case -1: (r.offset, r.timestamp) = (log.logEndOffset, -1)
                        case -2: (r.offset, r.timestamp) = (log.logStartOffset, -1)
                        default:
                            if let hit = try log.offset(forTimestamp: p.timestamp) {
                                (r.offset, r.timestamp) = hit
                            }
                        }
                        r.leaderEpoch = 0
                    } catch {
                        r.errorCode = KafkaError(error).rawValue
                    }
                } else {
                    r.errorCode = KafkaError.unknownTopicOrPartition.rawValue
                }
                // v0 answers with a list of offsets instead of one.
                if version == 0 && r.errorCode == 0 { r.oldStyleOffsets = r.offset >= 0 ? [r.offset] : [] }
                topicResponse.partitions.append(r)
            }
            response.topics.append(topicResponse)
        }
        return response
    }
}
