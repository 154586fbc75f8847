import TernProtocol

extension KafkaClient {
    /// The controller's connection: topic creation and deletion go there (another broker of a
    /// cluster answers NOT_CONTROLLER).
    func controllerConnection() async throws -> BrokerConnection {
        let md = try await refreshMetadata(topics: [])
        guard md.controllerId >= 0 else { return try await anyConnection() }
        return try await connection(to: md.controllerId)
    }

    public func createTopic(_ name: String, partitions: Int32, replicationFactor: Int16 = -1, configs: [String: String] = [:]) async throws {
        let c = try await controllerConnection()
        let version = try c.version(.createTopics, max: 5)
        let request = CreateTopicsRequest(
            topics: [.init(name: name, numPartitions: partitions, replicationFactor: replicationFactor,
                           configs: configs.sorted { $0.key < $1.key }.map { .init(name: $0.key, value: $0.value) })],
            timeoutMs: 30_000)
        let response = try await c.send(request, version: version, as: CreateTopicsResponse.self, timeout: requestTimeout)
        if let r = response.topics.first, r.errorCode != 0 {
            throw ClientError.kafka(code: r.errorCode, context: "create topic \(name)\(r.errorMessage.map { ": \($0)" } ?? "")")
        }
    }

    /// ElectLeaders at the controller (KIP-460): preferred (the first replica, if in sync) or
    /// unclean (any live replica, for partitions without a leader). `partitions` nil: all of them.
    /// Returns each partition's outcome: (topic, partition, error code, message).
    public func electLeaders(unclean: Bool, partitions: [String: [Int32]]?) async throws -> [(String, Int32, Int16, String?)] {
        let c = try await controllerConnection()
        let version = try c.version(.electLeaders, max: 2)
        let request = ElectLeadersRequest(
            electionType: unclean ? 1 : 0,
            topicPartitions: partitions.map { $0.sorted { $0.key < $1.key }.map { .init(topic: $0.key, partitions: $0.value) } },
            timeoutMs: 30_000)
        let response = try await c.send(request, version: version, as: ElectLeadersResponse.self)
        if response.errorCode != 0 { throw ClientError.kafka(code: response.errorCode, context: "elect leaders") }
        return response.replicaElectionResults.flatMap { t in t.partitionResult.map { (t.topic, $0.partitionId, $0.errorCode, $0.errorMessage) } }
    }

    /// AlterPartitionReassignments at the controller (KIP-455): moves each listed partition to its
    /// new replica list, or cancels its reassignment (nil). Returns each partition's outcome:
    /// (topic, partition, error code, message).
    public func alterPartitionReassignments(_ targets: [(topic: String, partition: Int32, replicas: [Int32]?)]) async throws
        -> [(String, Int32, Int16, String?)]
    {
        let c = try await controllerConnection()
        let version = try c.version(.alterPartitionReassignments, max: 0)
        var byTopic: [(String, [AlterPartitionReassignmentsRequest.ReassignablePartition])] = []
        for t in targets {
            let partition = AlterPartitionReassignmentsRequest.ReassignablePartition(partitionIndex: t.partition, replicas: t.replicas)
            if let i = byTopic.firstIndex(where: { $0.0 == t.topic }) { byTopic[i].1.append(partition) } else { byTopic.append((t.topic, [partition])) }
        }
        let request = AlterPartitionReassignmentsRequest(timeoutMs: 30_000, topics: byTopic.map { .init(name: $0.0, partitions: $0.1) })
        let response = try await c.send(request, version: version, as: AlterPartitionReassignmentsResponse.self)
        if response.errorCode != 0 {
            throw ClientError.kafka(code: response.errorCode, context: "alter partition reassignments\(response.errorMessage.map { ": \($0)" } ?? "")")
        }
        return response.responses.flatMap { t in t.partitions.map { (t.name, $0.partitionIndex, $0.errorCode, $0.errorMessage) } }
    }

    /// Reassignments in progress (of `topics`' partitions, or all): topic, partition, replicas,
    /// adding, removing.
    public func listPartitionReassignments(topics: [String: [Int32]]? = nil) async throws
        -> [(topic: String, partition: Int32, replicas: [Int32], adding: [Int32], removing: [Int32])]
    {
        let c = try await controllerConnection()
        let version = try c.version(.listPartitionReassignments, max: 0)
        let request = ListPartitionReassignmentsRequest(
            timeoutMs: 30_000, topics: topics.map { $0.sorted { $0.key < $1.key }.map { .init(name: $0.key, partitionIndexes: $0.value) } })
        let response = try await c.send(request, version: version, as: ListPartitionReassignmentsResponse.self)
        if response.errorCode != 0 { throw ClientError.kafka(code: response.errorCode, context: "list partition reassignments") }
        return response.topics.flatMap { t in
            t.partitions.map { (t.name, $0.partitionIndex, $0.replicas, $0.addingReplicas, $0.removingReplicas) }
        }
    }

    public func deleteTopic(_ name: String) async throws {
        let c = try await controllerConnection()
        let version = try c.version(.deleteTopics, max: 5)
        let response = try await c.send(DeleteTopicsRequest(topicNames: [name], timeoutMs: 30_000), version: version, as: DeleteTopicsResponse.self)
        if let r = response.responses.first, r.errorCode != 0 { throw ClientError.kafka(code: r.errorCode, context: "delete topic \(name)") }
    }

    /// ListOffsets: -1 latest, -2 earliest, otherwise the first offset at or after a timestamp (-1 if none).
    public func listOffset(topic: String, partition: Int32, timestamp: Int64) async throws -> Int64 {
        let c = try await leaderConnection(topic: topic, partition: partition)
        let version = try c.version(.listOffsets, max: 5)
        let request = ListOffsetsRequest(
            replicaId: -1,
            topics: [.init(name: topic, partitions: [.init(partitionIndex: partition, timestamp: timestamp)])])
        let response = try await c.send(request, version: version, as: ListOffsetsResponse.self, timeout: requestTimeout)
        guard let p = response.topics.first?.partitions.first else { throw ClientError.invalidResponse("ListOffsets") }
        guard p.errorCode == 0 else { throw ClientError.kafka(code: p.errorCode, context: "list offsets \(topic)[\(partition)]") }
        return version == 0 ? (p.oldStyleOffsets.first ?? -1) : p.offset
    }

    public func listGroups() async throws -> [ListGroupsResponse.ListedGroup] {
        let c = try await anyConnection()
        let version = try c.version(.listGroups, max: 4)
        let response = try await c.send(ListGroupsRequest(), version: version, as: ListGroupsResponse.self)
        guard response.errorCode == 0 else { throw ClientError.kafka(code: response.errorCode, context: "list groups") }
        return response.groups
    }

    public func describeGroup(_ group: String) async throws -> DescribeGroupsResponse.DescribedGroup {
        let c = try await coordinator(group: group)
        let version = try c.version(.describeGroups, max: 5)
        let response = try await c.send(DescribeGroupsRequest(groups: [group]), version: version, as: DescribeGroupsResponse.self)
        guard let g = response.groups.first else { throw ClientError.invalidResponse("DescribeGroups") }
        guard g.errorCode == 0 else { throw ClientError.kafka(code: g.errorCode, context: "describe group \(group)") }
        return g
    }

    /// Committed offsets of `group` (all partitions it committed).
    public func committedOffsets(group: String) async throws -> [String: [Int32: Int64]] {
        let c = try await coordinator(group: group)
        let version = try c.version(.offsetFetch, max: 7)
        let response = try await c.send(
            OffsetFetchRequest(groupId: group, topics: nil), version: max(version, 2), as: OffsetFetchResponse.self, timeout: requestTimeout)
        guard response.errorCode == 0 else { throw ClientError.kafka(code: response.errorCode, context: "fetch offsets of \(group)") }
        var out: [String: [Int32: Int64]] = [:]
        for t in response.topics {
            for p in t.partitions where p.committedOffset >= 0 { out[t.name, default: [:]][p.partitionIndex] = p.committedOffset }
        }
        return out
    }

    /// Commits offsets for `group` outside any generation (the group must have no active members).
    public func commitOffsets(group: String, _ offsets: [String: [Int32: Int64]]) async throws {
        let c = try await coordinator(group: group)
        let version = try c.version(.offsetCommit, max: 7)
        let request = OffsetCommitRequest(
            groupId: group, generationIdOrMemberEpoch: -1, memberId: "",
            topics: offsets.map { topic, parts in
                .init(name: topic, partitions: parts.map { .init(partitionIndex: $0.key, committedOffset: $0.value) })
            })
        let response = try await c.send(request, version: version, as: OffsetCommitResponse.self)
        for t in response.topics {
            for p in t.partitions where p.errorCode != 0 {
                throw ClientError.kafka(code: p.errorCode, context: "commit \(group) \(t.name)[\(p.partitionIndex)]")
            }
        }
    }
}

extension KafkaClient {
    /// IncrementalAlterConfigs on a topic: SET each pair, DELETE each key.
    public func alterTopicConfig(_ topic: String, set: [(String, String)], delete: [String]) async throws {
        let c = try await anyConnection()
        let version = try c.version(.incrementalAlterConfigs, max: 1)
        let configs = set.map { IncrementalAlterConfigsRequest.AlterableConfig(name: $0.0, configOperation: 0, value: $0.1) }
            + delete.map { IncrementalAlterConfigsRequest.AlterableConfig(name: $0, configOperation: 1, value: nil) }
        let response = try await c.send(
            IncrementalAlterConfigsRequest(resources: [.init(resourceType: 2, resourceName: topic, configs: configs)]),
            version: version, as: IncrementalAlterConfigsResponse.self)
        if let r = response.responses.first, r.errorCode != 0 {
            throw ClientError.kafka(code: r.errorCode, context: "alter configs of \(topic)")
        }
    }

    /// A topic's configs (name → value, and whether it is the broker default).
    public func describeTopicConfig(_ topic: String) async throws -> [(name: String, value: String?, isDefault: Bool)] {
        let c = try await anyConnection()
        let version = try c.version(.describeConfigs, max: 1)
        let response = try await c.send(
            DescribeConfigsRequest(resources: [.init(resourceType: 2, resourceName: topic, configurationKeys: nil)]),
            version: version, as: DescribeConfigsResponse.self)
        guard let r = response.results.first else { throw ClientError.invalidResponse("DescribeConfigs") }
        guard r.errorCode == 0 else { throw ClientError.kafka(code: r.errorCode, context: "describe configs of \(topic)") }
        return r.configs.map { ($0.name, $0.value, version == 0 ? $0.isDefault : $0.configSource == 5) }
    }
}
