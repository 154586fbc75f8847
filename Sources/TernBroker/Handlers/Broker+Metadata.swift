import TernProtocol

extension Broker {
    func metadata(_ request: MetadataRequest, version: Int16) -> MetadataResponse {
        let (host, port) = config.advertised
        var response = MetadataResponse(
            brokers: [.init(nodeId: config.nodeId, host: host, port: Int32(port), rack: nil)],
            clusterId: topics.clusterId,
            controllerId: config.nodeId)
        // v8-10 may ask for the cluster's authorized operations (v11 moved them to DescribeCluster).
        if version >= 8 && version <= 10 && request.includeClusterAuthorizedOperations {
            response.clusterAuthorizedOperations = AuthorizedOperations.cluster
        }
        let withOperations = version >= 8 && request.includeTopicAuthorizedOperations
        let describe = { (topic: Topic) in self.describe(topic, withOperations: withOperations) }
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
                    let topic = topics.topic(name) ?? (mayCreate && TopicName.isValid(name) ? autoCreate(name) : nil)
                    if let topic {
                        response.topics.append(describe(topic))
                    } else {
                        let code: KafkaError = TopicName.isValid(name) ? .unknownTopicOrPartition : .invalidTopic
                        response.topics.append(.init(errorCode: code.rawValue, name: name))
                    }
                } else if version < 12 {
                    // Kafka: topic names cannot be null and topic ids are not supported before v12.
                    response.topics.append(.init(errorCode: KafkaError.invalidRequest.rawValue, name: ""))
                } else if let topic = topics.topic(id: t.topicId) {
                    response.topics.append(describe(topic))
                } else {
                    response.topics.append(.init(errorCode: KafkaError.unknownTopicId.rawValue, name: nil, topicId: t.topicId))
                }
            }
        } else {
            response.topics = topics.allTopics.map(describe)
        }
        return response
    }

    private func describe(_ topic: Topic, withOperations: Bool) -> MetadataResponse.MetadataResponseTopic {
        let node = config.nodeId
        var described = MetadataResponse.MetadataResponseTopic(
            errorCode: 0,
            name: topic.metadata.name,
            topicId: topic.metadata.topicId,
            isInternal: Self.internalTopics.contains(topic.metadata.name),
            partitions: (0..<topic.metadata.partitions).map { p in
                .init(
                    errorCode: 0, partitionIndex: p, leaderId: node, leaderEpoch: 0,
                    replicaNodes: [node], isrNodes: [node], offlineReplicas: [])
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
                endpointType: request.endpointType, clusterId: topics.clusterId)
        }
        let (host, port) = config.advertised
        return DescribeClusterResponse(
            errorCode: 0, errorMessage: nil, endpointType: brokerEndpoints, clusterId: topics.clusterId, controllerId: config.nodeId,
            brokers: [.init(brokerId: config.nodeId, host: host, port: Int32(port), rack: nil)],
            clusterAuthorizedOperations: request.includeClusterAuthorizedOperations ? AuthorizedOperations.cluster : AuthorizedOperations.notRequested)
    }

    /// DescribeTopicPartitions (KIP-966): topics in name order, partitions paged by
    /// `response_partition_limit` (at most 2000) with a cursor to continue from. An empty topic list
    /// means every topic; the cursor's topic must be among those asked for.
    func describeTopicPartitions(_ request: DescribeTopicPartitionsRequest, version: Int16) -> DescribeTopicPartitionsResponse {
        let all = request.topics.isEmpty
        let from = request.cursor
        let names = (all ? topics.allTopics.map(\.metadata.name) : request.topics.map(\.name))
            .filter { $0 >= (from?.topicName ?? "") }
        var response = DescribeTopicPartitionsResponse()
        if let from, (!all && !names.contains(from.topicName)) || from.partitionIndex < 0 {
            response.topics = request.topics.map { .init(errorCode: KafkaError.invalidRequest.rawValue, name: $0.name) }
            return response
        }
        var budget = Int(max(1, min(request.responsePartitionLimit, 2000)))
        let node = config.nodeId
        for name in Set(names).sorted() {
            guard let topic = topics.topic(name) else {
                response.topics.append(.init(errorCode: (TopicName.isValid(name) ? KafkaError.unknownTopicOrPartition : .invalidTopic).rawValue, name: name))
                continue
            }
            if budget == 0 {
                response.nextCursor = .init(topicName: name, partitionIndex: 0)
                break
            }
            let first = name == from?.topicName ? from!.partitionIndex : 0
            let count = topic.metadata.partitions
            let last = min(count, first + Int32(budget))
            response.topics.append(.init(
                errorCode: 0, name: name, topicId: topic.metadata.topicId, isInternal: Self.internalTopics.contains(name),
                partitions: (first..<max(first, last)).map { p in
                    .init(errorCode: 0, partitionIndex: p, leaderId: node, leaderEpoch: 0, replicaNodes: [node], isrNodes: [node],
                          eligibleLeaderReplicas: [], lastKnownElr: [], offlineReplicas: [])
                },
                topicAuthorizedOperations: AuthorizedOperations.topic))
            budget -= Int(max(0, last - first))
            if last < count {
                response.nextCursor = .init(topicName: name, partitionIndex: last)
                break
            }
        }
        return response
    }
}
