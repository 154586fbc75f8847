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
                result.errorMessage = (error as? DescribedKafkaError)?.message ?? "\(code)"
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
            if let name = topic?.metadata.name, Self.internalTopics.contains(name) {
                result.errorCode = KafkaError.invalidTopic.rawValue  // internal topics cannot be deleted
            } else if let topic {
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

    /// This broker coordinates every group and every transactional id.
    func findCoordinator(_ request: FindCoordinatorRequest, version: Int16) -> FindCoordinatorResponse {
        let (host, port) = config.advertised
        // Group (0) and transaction (1) keys are all coordinated here.
        func answer(_ keyType: Int8) -> (Int16, String?, Int32, String, Int32) {
            keyType == 0 || keyType == 1
                ? (0, nil, config.nodeId, host, Int32(port))
                : (KafkaError.invalidRequest.rawValue, "unknown key type \(keyType)", -1, "", -1)
        }
        if version >= 4 {
            return FindCoordinatorResponse(coordinators: request.coordinatorKeys.map { key in
                let (code, message, node, h, p) = answer(request.keyType)
                return .init(key: key, nodeId: node, host: h, port: p, errorCode: code, errorMessage: message)
            })
        }
        let (code, message, node, h, p) = answer(version >= 1 ? request.keyType : 0)
        return FindCoordinatorResponse(errorCode: code, errorMessage: message, nodeId: node, host: h, port: p)
    }

    /// Idempotent producers get a fresh producer id (transactional ones go to the coordinator).
    func initProducerId(_ request: InitProducerIdRequest, version: Int16) -> InitProducerIdResponse {
        // KIP-360 (v3+): a producer that knows its id asks for an epoch bump to reset its sequences.
        if version >= 3 && request.producerId >= 0 && request.producerEpoch >= 0 && request.producerEpoch < Int16.max {
            return InitProducerIdResponse(errorCode: 0, producerId: request.producerId, producerEpoch: request.producerEpoch + 1)
        }
        return InitProducerIdResponse(errorCode: 0, producerId: allocateProducerId(), producerEpoch: 0)
    }
}
