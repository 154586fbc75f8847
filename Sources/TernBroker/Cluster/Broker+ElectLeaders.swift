import NIOCore
import TernCluster
import TernProtocol

/// ElectLeaders (KIP-183/460): PREFERRED (0) moves leadership to each partition's first replica if
/// it is alive and in sync; UNCLEAN (1) gives a partition with no leader its first live replica.
/// A single broker is every partition's preferred leader already (ELECTION_NOT_NEEDED); in a
/// cluster it is the controller's (others answer NOT_CONTROLLER).
extension Broker {
    func electLeaders(_ request: ElectLeadersRequest, version: Int16, on loop: EventLoop) -> EventLoopFuture<ElectLeadersResponse> {
        guard request.electionType == 0 || request.electionType == 1 else {
            return loop.makeSucceededFuture(ElectLeadersResponse(errorCode: KafkaError.invalidRequest.rawValue))
        }
        let view = self.view
        let asked: [String: [Int32]]? = request.topicPartitions.map { list in
            Dictionary(list.map { ($0.topic, $0.partitions) }, uniquingKeysWith: { $0 + $1 })
        }
        // Every partition asked about, in request order (all of them when the list is null).
        let targets: [(String, [Int32])] = request.topicPartitions?.map { ($0.topic, $0.partitions) }
            ?? view.allTopics.map { t in (t.name, Array(0..<Int32(t.partitions.count))) }
        @Sendable func respond(_ outcome: (String, Int32) -> (KafkaError, String?)) -> ElectLeadersResponse {
            ElectLeadersResponse(errorCode: 0, replicaElectionResults: targets.map { topic, partitions in
                .init(topic: topic, partitionResult: partitions.map { p in
                    let (code, message) = outcome(topic, p)
                    return .init(partitionId: p, errorCode: code.rawValue, errorMessage: message)
                })
            })
        }
        let unknown = { (topic: String, p: Int32) -> Bool in view.partition(topic, p) == nil }
        guard let cluster else {
            return loop.makeSucceededFuture(respond { t, p in
                unknown(t, p) ? (.unknownTopicOrPartition, nil) : request.electionType == 0
                    ? (.electionNotNeeded, "Leader election not needed for topic partition") : (.electionNotNeeded, nil)
            })
        }
        return loop.makeFutureWithTask {
            do {
                let outcomes = try await cluster.member.electLeaders(unclean: request.electionType == 1, partitions: asked)
                return respond { t, p in
                    switch outcomes[t]?[p] {
                    case nil: return (.unknownTopicOrPartition, nil)
                    case .elected?: return (.none, nil)
                    case .notNeeded?: return (.electionNotNeeded, "Leader election not needed for topic partition")
                    case .preferredNotAvailable?: return (.preferredLeaderNotAvailable, "The preferred leader is not alive or not in sync")
                    case .eligibleNotAvailable?: return (.eligibleLeadersNotAvailable, "No replica of the partition is alive")
                    }
                }
            } catch {
                let code = KafkaError(error)
                // v0 has no top-level error: every partition carries it.
                if version == 0 { return respond { _, _ in (code, nil) } }
                return ElectLeadersResponse(errorCode: code.rawValue)
            }
        }
    }
}
