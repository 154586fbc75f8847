import TernProtocol

extension Broker {
    func createTopics(_ request: CreateTopicsRequest, version: Int16) -> CreateTopicsResponse {
        var response = CreateTopicsResponse()
        for t in request.topics {
            var result = CreateTopicsResponse.CreatableTopicResult(name: t.name, errorMessage: nil)
            do {
                // -1 partitions / replication factor mean "broker default" (v4+).
                let partitions = t.numPartitions == -1 ? config.numPartitions : t.numPartitions
                if !t.assignments.isEmpty { throw KafkaError.invalidReplicaAssignment }
                // One broker holds one replica; asking for more cannot be satisfied.
                if t.replicationFactor != -1 && t.replicationFactor != 1 { throw KafkaError.invalidReplicationFactor }
                var configs: [String: String] = [:]
                for c in t.configs { configs[c.name] = c.value }
                let meta = try topics.createTopic(name: t.name, partitions: partitions, configs: configs, validateOnly: request.validateOnly)
                result.topicId = meta.topicId
                result.numPartitions = meta.partitions
                result.replicationFactor = 1
                result.configs = meta.configs.sorted { $0.key < $1.key }.map { .init(name: $0.key, value: $0.value, configSource: 1) }
            } catch {
                let code = KafkaError(error)
                result.errorCode = code.rawValue
                result.errorMessage = "\(code)"
            }
            response.topics.append(result)
        }
        return response
    }

    func deleteTopics(_ request: DeleteTopicsRequest, version: Int16) -> DeleteTopicsResponse {
        var response = DeleteTopicsResponse()
        // v6 names topics by name or id; earlier versions by name only.
        let targets: [(String?, KafkaUUID)] =
            version >= 6 ? request.topics.map { ($0.name, $0.topicId) } : request.topicNames.map { ($0, .zero) }
        for (name, id) in targets {
            var result = DeleteTopicsResponse.DeletableTopicResult(name: name, topicId: id)
            let topic = name.flatMap { topics.topic($0) } ?? (id != .zero ? topics.topic(id: id) : nil)
            if let topic {
                do {
                    try topics.deleteTopic(topic.metadata.name)
                    result.name = topic.metadata.name
                    result.topicId = topic.metadata.topicId
                } catch {
                    result.errorCode = KafkaError(error).rawValue
                }
            } else {
                result.errorCode = (name == nil ? KafkaError.unknownTopicId : .unknownTopicOrPartition).rawValue
            }
            response.responses.append(result)
        }
        return response
    }

    /// Group and transaction coordination arrive with the consumer-group and transactions issues;
    /// until then every key answers COORDINATOR_NOT_AVAILABLE, which clients retry.
    func findCoordinator(_ request: FindCoordinatorRequest, version: Int16) -> FindCoordinatorResponse {
        let code = KafkaError.coordinatorNotAvailable.rawValue
        var response = FindCoordinatorResponse(errorCode: code, errorMessage: "coordinator not available", nodeId: -1, host: "", port: -1)
        if version >= 4 {
            response.coordinators = request.coordinatorKeys.map {
                .init(key: $0, nodeId: -1, host: "", port: -1, errorCode: code, errorMessage: "coordinator not available")
            }
        }
        return response
    }

    /// Idempotent producers get a fresh producer id; transactional ids need the coordinator.
    func initProducerId(_ request: InitProducerIdRequest, version: Int16) -> InitProducerIdResponse {
        if let tid = request.transactionalId, !tid.isEmpty {
            return InitProducerIdResponse(errorCode: KafkaError.coordinatorNotAvailable.rawValue)
        }
        return InitProducerIdResponse(errorCode: 0, producerId: allocateProducerId(), producerEpoch: 0)
    }
}
