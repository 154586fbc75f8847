import TernLog
import TernProtocol

extension Broker {
    /// ListOffsets with Kafka's special timestamps: -1 latest, -2 earliest, -3 the record with the
    /// largest timestamp (KIP-734, v7+), -4 earliest local (KIP-405: the log start offset, no
    /// tiering here), -5 latest tiered (KIP-1005: -1, nothing is tiered). "Latest" and the upper
    /// bound of any search is what the isolation level may read: the last stable offset for
    /// READ_COMMITTED (an open transaction holds it back), the high watermark otherwise.
    func listOffsets(_ request: ListOffsetsRequest, version: Int16) -> ListOffsetsResponse {
        let readCommitted = version >= 2 && request.isolationLevel == 1
        var response = ListOffsetsResponse()
        let view = self.view
        for t in request.topics {
            var topicResponse = ListOffsetsResponse.ListOffsetsTopicResponse(name: t.name)
            let topic = topics.topic(t.name)
            for p in t.partitions {
                var r = ListOffsetsResponse.ListOffsetsPartitionResponse(partitionIndex: p.partitionIndex)
                if let refusal = leadershipRefusal(t.name, p.partitionIndex, in: view) {
                    r.errorCode = refusal.rawValue
                } else if let log = topic?.partition(p.partitionIndex) {
                    do {
                        (r.offset, r.timestamp) = try Self.offset(in: log, at: p.timestamp, readCommitted: readCommitted)
                        r.leaderEpoch = r.offset >= 0 ? (view.partition(t.name, p.partitionIndex)?.leaderEpoch ?? 0) : -1
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

    static let latestTimestamp: Int64 = -1
    static let earliestTimestamp: Int64 = -2
    static let maxTimestamp: Int64 = -3
    static let earliestLocalTimestamp: Int64 = -4
    static let latestTieredTimestamp: Int64 = -5

    /// (offset, timestamp) for one partition; (-1, -1) when nothing matches or the match lies at or
    /// past what the isolation level may read (as Kafka's ReplicaManager answers).
    private static func offset(in log: PartitionLog, at timestamp: Int64, readCommitted: Bool) throws -> (Int64, Int64) {
        let lastFetchable = readCommitted ? log.lastStableOffset : log.highWatermark
        let found: (offset: Int64, timestamp: Int64)?
        switch timestamp {
        case latestTimestamp: return (lastFetchable, -1)
        case earliestTimestamp, earliestLocalTimestamp: return (log.logStartOffset, -1)
        case latestTieredTimestamp: return (-1, -1)
        case maxTimestamp: found = try log.offsetOfMaxTimestamp()
        default: found = try log.offset(forTimestamp: timestamp)
        }
        guard let found, found.offset < lastFetchable else { return (-1, -1) }
        return found
    }
}
