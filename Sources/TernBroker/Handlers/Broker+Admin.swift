import TernProtocol

extension Broker {
    func createTopics(_ request: CreateTopicsRequest, version: Int16) -> CreateTopicsResponse {
        var response = CreateTopicsResponse()
        for t in request.topics {
            var result = CreateTopicsResponse.CreatableTopicResult(name: t.name, errorMessage: nil)
            do {
                // -1 partitions / replication factor mean "broker default" (v4+).
                let partitions = t.assignments.isEmpty
                    ? (t.numPartitions == -1 ? config.numPartitions : t.numPartitions)
                    : try checkedAssignment(t)
                // One broker holds one replica; asking for more cannot be satisfied.
                if t.replicationFactor != -1 && t.replicationFactor != 1 {
                    throw DescribedKafkaError(.invalidReplicationFactor, "Unable to replicate the partition \(t.replicationFactor) time(s): The target replication factor of \(t.replicationFactor) cannot be reached because only 1 broker(s) are registered.")
                }
                var configs: [String: String] = [:]
                for c in t.configs {
                    guard let value = c.value else { throw DescribedKafkaError(.invalidConfig, "Null value not supported for topic configs: \(c.name)") }
                    configs[c.name] = value
                }
                let meta = try topics.createTopic(name: t.name, partitions: partitions, configs: configs, validateOnly: request.validateOnly)
                result.topicId = meta.topicId
                result.numPartitions = meta.partitions
                result.replicationFactor = 1
                result.configs = newTopicConfigs(meta.configs)
            } catch {
                let code = KafkaError(error)
                result.errorCode = code.rawValue
                result.errorMessage = (error as? DescribedKafkaError)?.message ?? "\(code)"
            }
            response.topics.append(result)
        }
        return response
    }

    /// CreateTopics v5+: every config of the new topic, with where its value comes from.
    func newTopicConfigs(_ overrides: [String: String]) -> [CreateTopicsResponse.CreatableTopicConfigs] {
        let levels = BrokerConfigLevels(broker: self)
        return TopicConfigCatalog.all.map { d in
            let source = levels.topicSynonyms(d, overrides: overrides).first?.source ?? .defaultConfig
            return .init(name: d.name, value: TopicConfigCatalog.value(d.name, overrides: overrides, broker: levels.live),
                         readOnly: false, configSource: source.rawValue, isSensitive: false)
        }
    }

    /// An explicit `replica_assignment`, checked as Kafka's controller checks one: partitions
    /// numbered 0…n-1, every list non-empty, without duplicates, of equal length and naming
    /// registered brokers (here: this one). Returns the partition count.
    func checkedAssignment(_ t: CreateTopicsRequest.CreatableTopic, registered: Set<Int32>? = nil) throws -> Int32 {
        let registered = registered ?? [config.nodeId]
        guard t.numPartitions == -1, t.replicationFactor == -1 else {
            throw DescribedKafkaError(.invalidRequest, "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.")
        }
        let sorted = t.assignments.sorted { $0.partitionIndex < $1.partitionIndex }
        for (expected, a) in sorted.enumerated() {
            guard a.partitionIndex == Int32(expected) else {
                throw DescribedKafkaError(.invalidReplicaAssignment, "Partitions should be a consecutive 0-based integer sequence, but \(a.partitionIndex) does not follow \(expected - 1)")
            }
            guard !a.brokerIds.isEmpty else {
                throw DescribedKafkaError(.invalidReplicaAssignment, "The manual partition assignment includes an empty replica list.")
            }
            guard Set(a.brokerIds).count == a.brokerIds.count else {
                throw DescribedKafkaError(.invalidReplicaAssignment, "The manual partition assignment includes the broker \(a.brokerIds) more than once.")
            }
            guard a.brokerIds.count == sorted[0].brokerIds.count else {
                throw DescribedKafkaError(.invalidReplicaAssignment, "All partitions in the manual partition assignment must have the same number of replicas.")
            }
            if let unknown = a.brokerIds.first(where: { !registered.contains($0) }) {
                throw DescribedKafkaError(.invalidReplicaAssignment, "The manual partition assignment includes broker \(unknown), but no such broker is registered.")
            }
        }
        return Int32(sorted.count)
    }

    /// CreatePartitions: more partitions for existing topics. Internal topics are refused: their
    /// coordinators map keys to partitions by the partition count.
    func createPartitions(_ request: CreatePartitionsRequest, version: Int16) -> CreatePartitionsResponse {
        var seen = Set<String>()
        let duplicates = Set(request.topics.map(\.name).filter { !seen.insert($0).inserted })
        return CreatePartitionsResponse(results: request.topics.map { t in
            var result = CreatePartitionsResponse.CreatePartitionsTopicResult(name: t.name, errorCode: 0, errorMessage: nil)
            do {
                guard !duplicates.contains(t.name) else { throw DescribedKafkaError(.invalidRequest, "Duplicate topic in request.") }
                guard !Self.internalTopics.contains(t.name) else {
                    throw DescribedKafkaError(.invalidRequest, "Partitions cannot be added to the internal topic \(t.name).")
                }
                guard let have = topics.topic(t.name)?.metadata.partitions else { throw KafkaError.unknownTopicOrPartition }
                if let assignments = t.assignments {
                    // In Int: the requested count is the client's, and may be far below the current one.
                    let adding = Int(t.count) - Int(have)
                    guard assignments.count == adding else {
                        throw DescribedKafkaError(.invalidReplicaAssignment, "Attempted to add \(adding) additional partition(s), but only \(assignments.count) assignment(s) were specified.")
                    }
                    for a in assignments where a.brokerIds != [config.nodeId] {
                        throw DescribedKafkaError(.invalidReplicaAssignment, "The manual partition assignment \(a.brokerIds) must name this broker (\(config.nodeId)) once: the topic has one replica per partition.")
                    }
                }
                try topics.addPartitions(t.name, count: t.count, validateOnly: request.validateOnly)
            } catch {
                let code = KafkaError(error)
                result.errorCode = code.rawValue
                result.errorMessage = (error as? DescribedKafkaError)?.message ?? "\(code)"
            }
            return result
        })
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

    /// A single broker coordinates every group and transactional id; in a cluster, the leader of
    /// the internal topic's partition does (`coordinatorInCluster`).
    func findCoordinator(_ request: FindCoordinatorRequest, version: Int16) -> FindCoordinatorResponse {
        let (host, port) = config.advertised
        func answer(_ keyType: Int8, _ key: String) -> (Int16, String?, Int32, String, Int32) {
            guard keyType == 0 || keyType == 1 else { return (KafkaError.invalidRequest.rawValue, "unknown key type \(keyType)", -1, "", -1) }
            guard cluster != nil else { return (0, nil, config.nodeId, host, Int32(port)) }
            guard let coordinator = coordinatorInCluster(keyType == 0 ? .group : .transaction, key: key) else {
                return (KafkaError.coordinatorNotAvailable.rawValue, "The coordinator is not available.", -1, "", -1)
            }
            return (0, nil, coordinator.nodeId, coordinator.host, coordinator.port)
        }
        if version >= 4 {
            return FindCoordinatorResponse(coordinators: request.coordinatorKeys.map { key in
                let (code, message, node, h, p) = answer(request.keyType, key)
                return .init(key: key, nodeId: node, host: h, port: p, errorCode: code, errorMessage: message)
            })
        }
        let (code, message, node, h, p) = answer(version >= 1 ? request.keyType : 0, request.key)
        return FindCoordinatorResponse(errorCode: code, errorMessage: message, nodeId: node, host: h, port: p)
    }

    /// Idempotent producers get a fresh producer id (transactional ones go to the coordinator).
    func initProducerId(_ request: InitProducerIdRequest, version: Int16) -> InitProducerIdResponse {
        // KIP-360 (v3+): a producer that knows its id asks for an epoch bump to reset its sequences.
        if version >= 3 && request.producerId >= 0 && request.producerEpoch >= 0 && request.producerEpoch < Int16.max {
            return InitProducerIdResponse(errorCode: 0, producerId: request.producerId, producerEpoch: request.producerEpoch + 1)
        }
        do {
            return InitProducerIdResponse(errorCode: 0, producerId: try allocateProducerId(), producerEpoch: 0)
        } catch {
            return InitProducerIdResponse(errorCode: KafkaError(error).rawValue)
        }
    }
}
