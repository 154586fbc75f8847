import NIOCore
import TernCluster
import TernProtocol

/// AlterPartitionReassignments (API 45) and ListPartitionReassignments (API 46), KIP-455. Moving
/// replicas is the controller's (another broker answers NOT_CONTROLLER, as for ElectLeaders);
/// listing reads the metadata image, which every broker follows. A single broker is the only
/// possible replica: reassigning to itself changes nothing, to any other id is invalid.
extension Broker {
    func alterPartitionReassignments(_ request: AlterPartitionReassignmentsRequest, on loop: EventLoop)
        -> EventLoopFuture<AlterPartitionReassignmentsResponse>
    {
        @Sendable func respond(_ outcome: (String, Int32) -> (KafkaError, String?)) -> AlterPartitionReassignmentsResponse {
            AlterPartitionReassignmentsResponse(errorCode: 0, errorMessage: nil, responses: request.topics.map { t in
                .init(name: t.name, partitions: t.partitions.map { p in
                    let (code, message) = outcome(t.name, p.partitionIndex)
                    return .init(partitionIndex: p.partitionIndex, errorCode: code.rawValue, errorMessage: message)
                })
            })
        }
        guard let cluster else {
            let view = self.view
            let me = config.nodeId
            let asked = Dictionary(
                request.topics.flatMap { t in t.partitions.map { ("\(t.name)\u{0}\($0.partitionIndex)", $0.replicas) } }, uniquingKeysWith: { $1 })
            return loop.makeSucceededFuture(respond { topic, partition in
                guard view.partition(topic, partition) != nil else { return (.unknownTopicOrPartition, nil) }
                guard let target = asked["\(topic)\u{0}\(partition)"] ?? nil else { return Self.refusal(.noReassignmentInProgress) }
                if let other = target.first(where: { $0 != me }) {
                    return Self.refusal(.invalidAssignment("The manual partition assignment includes broker \(other), but no such broker is registered."))
                }
                return target.isEmpty ? Self.refusal(.invalidAssignment("The manual partition assignment includes an empty replica list.")) : (.none, nil)
            })
        }
        var requests: [String: [ClusterMember.ReassignmentRequest]] = [:]
        for t in request.topics {
            requests[t.name, default: []] += t.partitions.map { .init(partition: $0.partitionIndex, target: $0.replicas) }
        }
        let wanted = requests
        return loop.makeFutureWithTask {
            do {
                let outcomes = try await cluster.member.alterPartitionReassignments(wanted)
                return respond { topic, partition in
                    switch outcomes[topic]?[partition] {
                    case .success?: return (.none, nil)
                    case .failure(let refusal)?: return Self.refusal(refusal)
                    case nil: return (.unknownTopicOrPartition, nil)
                    }
                }
            } catch {
                let code = KafkaError(error)
                return AlterPartitionReassignmentsResponse(errorCode: code.rawValue, errorMessage: "\(error)")
            }
        }
    }

    private static func refusal(_ refusal: PartitionReassignment.Refusal) -> (KafkaError, String?) {
        switch refusal {
        case .invalidAssignment(let message): return (.invalidReplicaAssignment, message)
        case .noReassignmentInProgress: return (.noReassignmentInProgress, "No partition reassignment is in progress.")
        case .unknownTopicOrPartition: return (.unknownTopicOrPartition, nil)
        }
    }

    /// Ongoing reassignments of the partitions asked about (every topic when the list is null);
    /// partitions that are not moving, or do not exist, are left out, as Kafka does.
    func listPartitionReassignments(_ request: ListPartitionReassignmentsRequest) -> ListPartitionReassignmentsResponse {
        let view = self.view
        let asked: [(String, [Int32]?)] = request.topics?.map { ($0.name, $0.partitionIndexes) } ?? view.allTopics.map { ($0.name, nil) }
        var topics: [ListPartitionReassignmentsResponse.OngoingTopicReassignment] = []
        for (name, indexes) in asked {
            guard let t = view.topic(name) else { continue }
            let moving = (indexes ?? Array(0..<Int32(t.partitions.count))).compactMap { i -> ListPartitionReassignmentsResponse.OngoingPartitionReassignment? in
                guard i >= 0, Int(i) < t.partitions.count, t.partitions[Int(i)].isReassigning else { return nil }
                let p = t.partitions[Int(i)]
                return .init(partitionIndex: i, replicas: p.replicas, addingReplicas: p.adding, removingReplicas: p.removing)
            }
            if !moving.isEmpty { topics.append(.init(name: name, partitions: moving)) }
        }
        return ListPartitionReassignmentsResponse(errorCode: 0, errorMessage: nil, topics: topics)
    }
}
