import NIOCore
import TernCluster
import TernProtocol

/// Topic administration in cluster mode. CreateTopics, CreatePartitions and DeleteTopics are the
/// controller's: another broker answers NOT_CONTROLLER and the client retries at the controller
/// Metadata names (Kafka's ZooKeeper-era rule, which every client handles). The controller checks
/// the request as a single broker would, places replicas (`ReplicaAssignment`, rack-aware) over
/// the live brokers that are not shutting down, and writes etcd in a transaction fenced by its
/// election; each broker then opens or deletes its replicas as the change reaches its image.
extension Broker {
    /// Most partitions a topic may have in cluster mode: its record is one etcd value, and etcd
    /// refuses values over 1.5 MiB (about 80 bytes a partition).
    static let clusterMaxPartitionsPerTopic: Int32 = 10_000
    /// Auto-created topics being written to etcd at once.
    static let maxConcurrentAutoCreations = 64

    func createTopicsInCluster(_ request: CreateTopicsRequest, version: Int16, on loop: EventLoop) -> EventLoopFuture<CreateTopicsResponse> {
        guard let cluster else { preconditionFailure("cluster mode only") }
        var seen = Set<String>()
        let duplicates = Set(request.topics.map(\.name).filter { !seen.insert($0).inserted })
        return loop.makeFutureWithTask { [self] in
            let isController = await cluster.member.isController
            var response = CreateTopicsResponse()
            for t in request.topics {
                var result = CreateTopicsResponse.CreatableTopicResult(name: t.name, errorMessage: nil)
                do {
                    guard isController else { throw KafkaError.notController }
                    guard !duplicates.contains(t.name) else { throw DescribedKafkaError(.invalidRequest, "Duplicate topic name.") }
                    let record = try plannedTopic(t, image: cluster.image)
                    if !request.validateOnly { try await cluster.member.createTopic(record, byController: true) }
                    result.topicId = KafkaUUID(hex: record.topicId) ?? .zero
                    result.numPartitions = Int32(record.partitions.count)
                    result.replicationFactor = Int16(record.partitions[0].replicas.count)
                    result.configs = newTopicConfigs(record.configs)
                } catch {
                    let code = KafkaError(error)
                    result.errorCode = code.rawValue
                    result.errorMessage = (error as? DescribedKafkaError)?.message ?? (error as? ClusterError)?.description ?? "\(code)"
                }
                response.topics.append(result)
            }
            return response
        }
    }

    /// A CreateTopics entry checked as Kafka's controller checks it and turned into the record to
    /// write: name, configs, partition count and replication factor (-1: the broker defaults) or
    /// an explicit assignment naming registered brokers.
    private func plannedTopic(_ t: CreateTopicsRequest.CreatableTopic, image: MetadataImage) throws -> TopicRecord {
        guard TopicName.isValid(t.name) else { throw KafkaError.invalidTopic }
        guard image.topics[t.name] == nil else { throw DescribedKafkaError(.topicAlreadyExists, "Topic '\(t.name)' already exists.") }
        if let other = TopicName.collision(of: t.name, among: image.topics.keys) {
            throw DescribedKafkaError(.invalidTopic, "Topic '\(t.name)' collides with existing topic: \(other)")
        }
        var configs: [String: String] = [:]
        for c in t.configs {
            guard let value = c.value else { throw DescribedKafkaError(.invalidConfig, "Null value not supported for topic configs: \(c.name)") }
            configs[c.name] = value
        }
        try TopicConfigCatalog.validate(configs)
        let replicas: [[Int32]]
        if t.assignments.isEmpty {
            let partitions = t.numPartitions == -1 ? config.numPartitions : t.numPartitions
            let factor = t.replicationFactor == -1 ? config.defaultReplicationFactor : t.replicationFactor
            guard partitions > 0 else { throw DescribedKafkaError(.invalidPartitions, "Number of partitions must be larger than 0.") }
            guard factor > 0 else { throw DescribedKafkaError(.invalidReplicationFactor, "Replication factor must be larger than 0.") }
            // Checked before placement, which allocates per partition.
            guard partitions <= Self.clusterMaxPartitionsPerTopic else {
                throw DescribedKafkaError(.invalidPartitions, "A topic may have at most \(Self.clusterMaxPartitionsPerTopic) partitions in cluster mode.")
            }
            // This broker's descriptors stand in for every replica's (brokers are configured alike).
            try FileDescriptorBudget.check(partitions: Int(partitions))
            replicas = try placement(partitions: partitions, factor: factor, image: image)
        } else {
            guard t.assignments.count <= Int(Self.clusterMaxPartitionsPerTopic) else {
                throw DescribedKafkaError(.invalidPartitions, "A topic may have at most \(Self.clusterMaxPartitionsPerTopic) partitions in cluster mode.")
            }
            let registered = Set(image.brokers.keys)
            _ = try checkedAssignment(t, registered: registered)
            replicas = t.assignments.sorted { $0.partitionIndex < $1.partitionIndex }.map(\.brokerIds)
        }
        guard replicas.count <= Int(Self.clusterMaxPartitionsPerTopic) else {
            throw DescribedKafkaError(.invalidPartitions, "A topic may have at most \(Self.clusterMaxPartitionsPerTopic) partitions in cluster mode.")
        }
        // Kafka lets an operator create an internal topic, with the count Kafka's coordinators
        // then read from it; Tern's hash over the count the brokers agreed when the cluster formed.
        if let agreed = internalPartitionCount(t.name), replicas.count != Int(agreed) {
            throw DescribedKafkaError(
                .invalidPartitions,
                "The internal topic \(t.name) has \(agreed) partitions in this cluster (group and transactional ids are hashed over that count); asked for \(replicas.count).")
        }
        return TopicRecord(
            name: t.name, topicId: KafkaUUID.random().description, configs: configs,
            partitions: replicas.map { PartitionState(replicas: $0, isr: $0, leader: $0[0]) })
    }

    /// Kafka's placement over the brokers that may take replicas (registered, not shutting down).
    func placement(partitions: Int32, factor: Int16, image: MetadataImage, firstPartition: Int = 0) throws -> [[Int32]] {
        let brokers = image.liveBrokers.filter { $0.shuttingDown != true }.map { ReplicaAssignment.Broker(id: $0.nodeId, rack: $0.rack) }
        do {
            return try ReplicaAssignment.assign(
                partitions: Int(partitions), replicationFactor: Int(factor), brokers: brokers, firstPartition: firstPartition,
                start: brokers.isEmpty ? 0 : Int.random(in: 0..<brokers.count))
        } catch ReplicaAssignment.Failure.replicationFactorTooLarge(let rf, let n) {
            throw DescribedKafkaError(.invalidReplicationFactor, "Unable to replicate the partition \(rf) time(s): The target replication factor of \(rf) cannot be reached because only \(n) broker(s) are registered.")
        }
    }

    /// Auto-creation (Metadata for an unknown topic, FindCoordinator before the internal topics
    /// exist): any broker may write it — the name being free is the only condition, as when Kafka
    /// brokers auto-created topics in ZooKeeper. The client is told LEADER_NOT_AVAILABLE (or
    /// COORDINATOR_NOT_AVAILABLE) meanwhile and asks again. An internal topic gets the cluster's
    /// partition count, `offsets.topic.replication.factor` /
    /// `transaction.state.log.replication.factor` replicas and its compacted configs whichever
    /// request creates it (Kafka's `AutoTopicCreationManager.creatableTopic`): created with the
    /// defaults by a Metadata request naming it, it had `num.partitions` partitions where every
    /// coordinator hashes over the cluster's count, and one replica.
    func autoCreateInCluster(_ name: String) {
        guard let cluster else { return }
        let image = cluster.image
        guard image.topics[name] == nil else { return }
        let partitions: Int32, factor: Int16, configs: [String: String]
        switch name {
        case Self.offsetsTopic, TransactionCoordinator.stateTopic:
            guard let count = internalPartitionCount(name) else { return }
            partitions = count
            factor = name == Self.offsetsTopic ? config.offsetsTopicReplicationFactor : config.transactionStateReplicationFactor
            configs = Self.internalTopicConfigs[name] ?? [:]
        default:
            (partitions, factor, configs) = (config.numPartitions, config.defaultReplicationFactor, [:])
        }
        // One creation per name at a time: many Metadata or FindCoordinator requests for a topic
        // that does not exist yet make one etcd write, not one each.
        // Bounded: past `maxConcurrentAutoCreations` in flight the client is told LEADER_NOT_AVAILABLE
        // and asks again, so a stream of made-up names cannot pile up etcd writes.
        guard autoCreating.withLockedValue({ $0.count < Self.maxConcurrentAutoCreations && $0.insert(name).inserted }) else { return }
        do {
            try FileDescriptorBudget.check(partitions: Int(partitions))
            let replicas = try placement(
                partitions: partitions, factor: min(factor, Int16(max(1, image.liveBrokers.count))), image: image)
            let record = TopicRecord(
                name: name, topicId: KafkaUUID.random().description, configs: configs,
                partitions: replicas.map { PartitionState(replicas: $0, isr: $0, leader: $0[0]) })
            Task { [logger, autoCreating] in
                defer { autoCreating.withLockedValue { _ = $0.remove(name) } }
                do {
                    try await cluster.member.createTopic(record, byController: false)
                } catch ClusterError.topicExists {
                    // Another broker created it first: fine.
                } catch {
                    logger.warning("auto-create failed", metadata: ["topic": "\(name)", "error": "\(error)"])
                }
            }
        } catch {
            autoCreating.withLockedValue { _ = $0.remove(name) }
            logger.warning("auto-create failed", metadata: ["topic": "\(name)", "error": "\(error)"])
        }
    }

    func createPartitionsInCluster(_ request: CreatePartitionsRequest, version: Int16, on loop: EventLoop) -> EventLoopFuture<CreatePartitionsResponse> {
        guard let cluster else { preconditionFailure("cluster mode only") }
        var seen = Set<String>()
        let duplicates = Set(request.topics.map(\.name).filter { !seen.insert($0).inserted })
        return loop.makeFutureWithTask { [self] in
            let isController = await cluster.member.isController
            var results: [CreatePartitionsResponse.CreatePartitionsTopicResult] = []
            for t in request.topics {
                var result = CreatePartitionsResponse.CreatePartitionsTopicResult(name: t.name, errorCode: 0, errorMessage: nil)
                do {
                    guard isController else { throw KafkaError.notController }
                    guard !duplicates.contains(t.name) else { throw DescribedKafkaError(.invalidRequest, "Duplicate topic in request.") }
                    guard !Self.internalTopics.contains(t.name) else {
                        throw DescribedKafkaError(.invalidRequest, "Partitions cannot be added to the internal topic \(t.name).")
                    }
                    let added = try plannedPartitions(t, image: cluster.image)
                    if !request.validateOnly {
                        let have = cluster.image.topics[t.name]!.partitions.count
                        try await cluster.member.updateTopic(t.name) { record in
                            // Computed from the record the plan read; a concurrent change of the count fails the swap.
                            guard record.partitions.count == have else { throw ClusterError.conflict(t.name) }
                            var next = record
                            next.partitions += added
                            return next
                        }
                    }
                } catch {
                    let code = KafkaError(error)
                    result.errorCode = code.rawValue
                    result.errorMessage = (error as? DescribedKafkaError)?.message ?? "\(code)"
                }
                results.append(result)
            }
            return CreatePartitionsResponse(results: results)
        }
    }

    private func plannedPartitions(_ t: CreatePartitionsRequest.CreatePartitionsTopic, image: MetadataImage) throws -> [PartitionState] {
        guard let topic = image.topics[t.name] else { throw KafkaError.unknownTopicOrPartition }
        let have = Int32(topic.partitions.count)
        guard t.count != have else { throw DescribedKafkaError(.invalidPartitions, "Topic already has \(have) partition(s).") }
        guard t.count > have else {
            throw DescribedKafkaError(.invalidPartitions, "The topic \(t.name) currently has \(have) partition(s); \(t.count) would not be an increase.")
        }
        guard t.count <= Self.clusterMaxPartitionsPerTopic else {
            throw DescribedKafkaError(.invalidPartitions, "A topic may have at most \(Self.clusterMaxPartitionsPerTopic) partitions in cluster mode.")
        }
        let factor = topic.partitions.first?.replicas.count ?? 1
        try FileDescriptorBudget.check(partitions: Int(t.count - have))
        let replicas: [[Int32]]
        if let assignments = t.assignments {
            guard assignments.count == Int(t.count - have) else {
                throw DescribedKafkaError(.invalidReplicaAssignment, "Attempted to add \(t.count - have) additional partition(s), but only \(assignments.count) assignment(s) were specified.")
            }
            for a in assignments {
                guard a.brokerIds.count == factor, Set(a.brokerIds).count == factor else {
                    throw DescribedKafkaError(.invalidReplicaAssignment, "The manual partition assignment \(a.brokerIds) must name \(factor) distinct broker(s), the topic's replication factor.")
                }
                if let unknown = a.brokerIds.first(where: { image.brokers[$0] == nil }) {
                    throw DescribedKafkaError(.invalidReplicaAssignment, "The manual partition assignment includes broker \(unknown), but no such broker is registered.")
                }
            }
            replicas = assignments.map(\.brokerIds)
        } else {
            replicas = try placement(partitions: t.count - have, factor: Int16(factor), image: image, firstPartition: Int(have))
        }
        return replicas.map { PartitionState(replicas: $0, isr: $0, leader: $0[0]) }
    }

    func deleteTopicsInCluster(_ request: DeleteTopicsRequest, version: Int16, on loop: EventLoop) -> EventLoopFuture<DeleteTopicsResponse> {
        guard let cluster else { preconditionFailure("cluster mode only") }
        let targets: [(String?, KafkaUUID)] =
            version >= 6 ? request.topics.map { ($0.name, $0.topicId) } : request.topicNames.map { ($0, .zero) }
        return loop.makeFutureWithTask { [self] in
            let isController = await cluster.member.isController
            var response = DeleteTopicsResponse()
            for (name, id) in targets {
                var result = DeleteTopicsResponse.DeletableTopicResult(name: name, topicId: id)
                let view = self.view
                let topic = name.flatMap { view.topic($0) } ?? (id != .zero ? view.topic(id: id) : nil)
                if !isController {
                    result.errorCode = KafkaError.notController.rawValue
                } else if let topic, Self.internalTopics.contains(topic.name) {
                    result.errorCode = KafkaError.invalidTopic.rawValue
                } else if let topic {
                    do {
                        try await cluster.member.deleteTopic(topic.name)
                        result.name = topic.name
                        result.topicId = topic.id
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
    }
}
