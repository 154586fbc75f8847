import TernCluster
import TernProtocol

extension Broker {
    func metadata(_ request: MetadataRequest, version: Int16) -> MetadataResponse {
        let view = self.view
        var response = MetadataResponse(
            brokers: view.brokers.map { .init(nodeId: $0.nodeId, host: $0.host, port: $0.port, rack: $0.rack) },
            clusterId: clusterId,
            controllerId: view.controllerId)
        // v8-10 may ask for the cluster's authorized operations (v11 moved them to DescribeCluster).
        if version >= 8 && version <= 10 && request.includeClusterAuthorizedOperations {
            response.clusterAuthorizedOperations = AuthorizedOperations.cluster
        }
        let withOperations = version >= 8 && request.includeTopicAuthorizedOperations
        let describe = { (topic: ClusterView.TopicView) in Self.describe(topic, in: view, withOperations: withOperations) }
        // v0: an empty list means all topics; v1+: null means all, empty means none.
        let requested: [MetadataRequest.MetadataRequestTopic]?
        if version == 0 && request.topics?.isEmpty == true {
            requested = nil
        } else {
            requested = request.topics
        }
        // Before v4 there is no flag and the broker config alone decides.
        let mayCreate = version < 4 || request.allowAutoTopicCreation
        if let requested {
            for t in requested {
                if let name = t.name {
                    if let topic = view.topic(name) {
                        response.topics.append(describe(topic))
                    } else if mayCreate && TopicName.isValid(name) && view.isCluster && config.autoCreateTopics {
                        // Kafka's answer while an auto-created topic gets its leaders.
                        autoCreateInCluster(name)
                        response.topics.append(.init(errorCode: KafkaError.leaderNotAvailable.rawValue, name: name))
                    } else if mayCreate && TopicName.isValid(name) && !view.isCluster, let topic = autoCreate(name) {
                        response.topics.append(describe(view.topic(topic.metadata.name)!))
                    } else {
                        let code: KafkaError = TopicName.isValid(name) ? .unknownTopicOrPartition : .invalidTopic
                        response.topics.append(.init(errorCode: code.rawValue, name: name))
                    }
                } else if version < 12 {
                    // Kafka: topic names cannot be null and topic ids are not supported before v12.
                    response.topics.append(.init(errorCode: KafkaError.invalidRequest.rawValue, name: ""))
                } else if let topic = view.topic(id: t.topicId) {
                    response.topics.append(describe(topic))
                } else {
                    response.topics.append(.init(errorCode: KafkaError.unknownTopicId.rawValue, name: nil, topicId: t.topicId))
                }
            }
        } else {
            response.topics = view.allTopics.map(describe)
        }
        return response
    }

    /// A topic's partitions as the view has them; a partition without a live leader reports
    /// LEADER_NOT_AVAILABLE, and replicas on brokers that are not registered are offline.
    private static func describe(_ topic: ClusterView.TopicView, in view: ClusterView, withOperations: Bool) -> MetadataResponse.MetadataResponseTopic {
        var described = MetadataResponse.MetadataResponseTopic(
            errorCode: 0,
            name: topic.name,
            topicId: topic.id,
            isInternal: Self.internalTopics.contains(topic.name),
            partitions: topic.partitions.enumerated().map { i, p in
                let leader = view.broker(p.leader) != nil ? p.leader : LeaderElection.noLeader
                return .init(
                    errorCode: leader == LeaderElection.noLeader ? KafkaError.leaderNotAvailable.rawValue : 0,
                    partitionIndex: Int32(i), leaderId: leader, leaderEpoch: p.leaderEpoch,
                    replicaNodes: p.replicas, isrNodes: p.isr, offlineReplicas: p.replicas.filter { view.broker($0) == nil })
            })
        if withOperations { described.topicAuthorizedOperations = AuthorizedOperations.topic }
        return described
    }

    /// DescribeCluster (KIP-700): this broker, the controller (itself), and on request the cluster
    /// operations a client may perform — all of them, with no authorizer.
    func describeCluster(_ request: DescribeClusterRequest, version: Int16) -> DescribeClusterResponse {
        let brokerEndpoints: Int8 = 1, controllerEndpoints: Int8 = 2
        guard request.endpointType == brokerEndpoints else {
            let known = request.endpointType == controllerEndpoints
            return DescribeClusterResponse(
                errorCode: (version == 0 ? KafkaError.invalidRequest : known ? .mismatchedEndpointType : .unsupportedEndpointType).rawValue,
                errorMessage: known ? "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER"
                    : "Unsupported endpoint type \(request.endpointType)",
                endpointType: request.endpointType, clusterId: clusterId)
        }
        let view = self.view
        return DescribeClusterResponse(
            errorCode: 0, errorMessage: nil, endpointType: brokerEndpoints, clusterId: clusterId, controllerId: view.controllerId,
            brokers: view.brokers.map { .init(brokerId: $0.nodeId, host: $0.host, port: $0.port, rack: $0.rack) },
            clusterAuthorizedOperations: request.includeClusterAuthorizedOperations ? AuthorizedOperations.cluster : AuthorizedOperations.notRequested)
    }

    /// DescribeTopicPartitions (KIP-966): topics in name order, partitions paged by
    /// `response_partition_limit` (at most 2000) with a cursor to continue from. An empty topic list
    /// means every topic; the cursor's topic must be among those asked for.
    func describeTopicPartitions(_ request: DescribeTopicPartitionsRequest, version: Int16) -> DescribeTopicPartitionsResponse {
        let view = self.view
        let all = request.topics.isEmpty
        let from = request.cursor
        let names = (all ? view.allTopics.map(\.name) : request.topics.map(\.name))
            .filter { $0 >= (from?.topicName ?? "") }
        var response = DescribeTopicPartitionsResponse()
        if let from, (!all && !names.contains(from.topicName)) || from.partitionIndex < 0 {
            response.topics = request.topics.map { .init(errorCode: KafkaError.invalidRequest.rawValue, name: $0.name) }
            return response
        }
        var budget = Int(max(1, min(request.responsePartitionLimit, 2000)))
        for name in Set(names).sorted() {
            guard let topic = view.topic(name) else {
                response.topics.append(.init(errorCode: (TopicName.isValid(name) ? KafkaError.unknownTopicOrPartition : .invalidTopic).rawValue, name: name))
                continue
            }
            if budget == 0 {
                response.nextCursor = .init(topicName: name, partitionIndex: 0)
                break
            }
            // The cursor's partition index is the client's: counted in Int, it cannot overflow.
            let first = name == from?.topicName ? Int(from!.partitionIndex) : 0
            let count = topic.partitions.count
            let last = min(count, first + budget)
            response.topics.append(.init(
                errorCode: 0, name: name, topicId: topic.id, isInternal: Self.internalTopics.contains(name),
                partitions: (first..<max(first, last)).map { i in
                    let p = topic.partitions[i]
                    let leader = view.broker(p.leader) != nil ? p.leader : LeaderElection.noLeader
                    return .init(
                        errorCode: leader == LeaderElection.noLeader ? KafkaError.leaderNotAvailable.rawValue : 0, partitionIndex: Int32(i),
                        leaderId: leader, leaderEpoch: p.leaderEpoch, replicaNodes: p.replicas, isrNodes: p.isr,
                        eligibleLeaderReplicas: [], lastKnownElr: [], offlineReplicas: p.replicas.filter { view.broker($0) == nil })
                },
                topicAuthorizedOperations: AuthorizedOperations.topic))
            budget -= max(0, last - first)
            if last < count {
                response.nextCursor = .init(topicName: name, partitionIndex: Int32(last))
                break
            }
        }
        return response
    }
}
