import TernProtocol

extension Broker {
    func metadata(_ request: MetadataRequest, version: Int16) -> MetadataResponse {
        let (host, port) = config.advertised
        var response = MetadataResponse(
            brokers: [.init(nodeId: config.nodeId, host: host, port: Int32(port), rack: nil)],
            clusterId: topics.clusterId,
            controllerId: config.nodeId)
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

    private func describe(_ topic: Topic) -> MetadataResponse.MetadataResponseTopic {
        let node = config.nodeId
        return MetadataResponse.MetadataResponseTopic(
            errorCode: 0,
            name: topic.metadata.name,
            topicId: topic.metadata.topicId,
            isInternal: Self.internalTopics.contains(topic.metadata.name),
            partitions: (0..<topic.metadata.partitions).map { p in
                .init(
                    errorCode: 0, partitionIndex: p, leaderId: node, leaderEpoch: 0,
                    replicaNodes: [node], isrNodes: [node], offlineReplicas: [])
            })
    }
}
