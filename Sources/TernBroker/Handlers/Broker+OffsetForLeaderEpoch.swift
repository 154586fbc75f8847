import TernLog
import TernProtocol

extension Broker {
    /// OffsetForLeaderEpoch (KIP-101/320): for each partition, the largest leader epoch <= the one
    /// asked for that this leader's log has, and the offset where it ended (the next epoch's first
    /// offset, or the log end for the current one). Consumers use it after a leader change to learn
    /// whether the log they read from was truncated; an epoch the log never had answers the one
    /// before it, an epoch before all of them (-1, -1). The caller's `current_leader_epoch` fences
    /// stale callers as Fetch does.
    func offsetForLeaderEpoch(_ request: OffsetForLeaderEpochRequest, version: Int16) -> OffsetForLeaderEpochResponse {
        var response = OffsetForLeaderEpochResponse()
        let view = self.view
        for t in request.topics {
            var result = OffsetForLeaderEpochResponse.OffsetForLeaderTopicResult(topic: t.topic)
            for p in t.partitions {
                var r = OffsetForLeaderEpochResponse.EpochEndOffset(partition: p.partition)
                if let refusal = leadershipRefusal(t.topic, p.partition, in: view) {
                    r.errorCode = refusal.rawValue
                } else if let log = topics.topic(t.topic)?.partition(p.partition), let state = view.partition(t.topic, p.partition) {
                    if p.currentLeaderEpoch >= 0 && p.currentLeaderEpoch < state.leaderEpoch {
                        r.errorCode = KafkaError.fencedLeaderEpoch.rawValue
                    } else if p.currentLeaderEpoch > state.leaderEpoch {
                        r.errorCode = KafkaError.unknownLeaderEpoch.rawValue
                    } else {
                        (r.leaderEpoch, r.endOffset) = log.endOffset(forEpoch: p.leaderEpoch)
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
