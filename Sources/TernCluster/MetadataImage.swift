import Foundation

/// One partition's replication state as the controller records it.
public struct PartitionState: Codable, Sendable, Equatable {
    public var replicas: [Int32]
    public var isr: [Int32]
    public var leader: Int32
    public var leaderEpoch: Int32
    /// Bumped on every change of this record (AlterPartition's compare-and-set guard).
    public var partitionEpoch: Int32
    /// During a reassignment (KIP-455): replicas being added (in `replicas`, catching up) and
    /// being removed (in `replicas` until the added ones are in sync). Absent otherwise, so records
    /// written before reassignments existed decode unchanged.
    public var addingReplicas: [Int32]?
    public var removingReplicas: [Int32]?

    public init(
        replicas: [Int32], isr: [Int32], leader: Int32, leaderEpoch: Int32 = 0, partitionEpoch: Int32 = 0,
        addingReplicas: [Int32]? = nil, removingReplicas: [Int32]? = nil
    ) {
        self.replicas = replicas
        self.isr = isr
        self.leader = leader
        self.leaderEpoch = leaderEpoch
        self.partitionEpoch = partitionEpoch
        self.addingReplicas = addingReplicas
        self.removingReplicas = removingReplicas
    }

    public var adding: [Int32] { addingReplicas ?? [] }
    public var removing: [Int32] { removingReplicas ?? [] }
    public var isReassigning: Bool { !adding.isEmpty || !removing.isEmpty }
}

/// A topic as stored under `/<cluster>/topics/<name>`.
public struct TopicRecord: Codable, Sendable, Equatable {
    public var name: String
    /// 32 hex digits, as the single-broker topic store keeps it.
    public var topicId: String
    public var configs: [String: String]
    public var partitions: [PartitionState]

    public init(name: String, topicId: String, configs: [String: String] = [:], partitions: [PartitionState]) {
        self.name = name
        self.topicId = topicId
        self.configs = configs
        self.partitions = partitions
    }
}

/// The cluster's metadata as of one etcd revision — brokers, controller, topics and partitions —
/// built by applying the keys under the cluster prefix in revision order, the way every broker
/// follows etcd. It is a value: readers take a copy and never see one half-applied.
///
/// Invariant (asserted): changes are applied in increasing revision order.
public struct MetadataImage: Sendable, Equatable {
    public let prefix: String
    public private(set) var revision: Int64 = 0
    public private(set) var brokers: [Int32: BrokerRegistration] = [:]
    public private(set) var controller: ControllerRecord?
    public private(set) var topics: [String: TopicRecord] = [:]
    /// Each topic key's mod revision: the compare-and-swap guard for the next change to it.
    public private(set) var topicRevisions: [String: Int64] = [:]
    /// Dynamic broker configs (Kafka's `kafka-configs --entity-type brokers`): "" holds the
    /// cluster-wide defaults, a broker id that broker's own settings.
    public private(set) var brokerConfigs: [String: [String: String]] = [:]
    /// Each broker-config key's mod revision, the compare-and-swap guard of its next change.
    public private(set) var brokerConfigRevisions: [String: Int64] = [:]

    public init(cluster: String) { prefix = "/\(cluster)/" }

    public var brokersKey: String { "\(prefix)brokers/" }
    public var controllerKey: String { "\(prefix)controller" }
    public var topicsKey: String { "\(prefix)topics/" }
    public var brokerConfigsKey: String { "\(prefix)broker-configs/" }

    /// The key of one broker-config entity: "" (the cluster-wide defaults) is stored as `default`,
    /// as Kafka's ZooKeeper layout stored `<default>`.
    public func brokerConfigKey(_ entity: String) -> String { brokerConfigsKey + (entity.isEmpty ? "default" : entity) }

    /// Replaces the image with a full read of the prefix made at `revision`.
    public mutating func load(_ values: [EtcdKeyValue], at revision: Int64) throws {
        brokers = [:]
        controller = nil
        topics = [:]
        topicRevisions = [:]
        brokerConfigs = [:]
        brokerConfigRevisions = [:]
        for kv in values { try set(kv, deleted: false) }
        self.revision = revision
    }

    /// Applies one watched change. Changes arrive in revision order (several may share one
    /// revision: a transaction); one from before the image's revision is a bug.
    public mutating func apply(_ event: EtcdEvent) throws {
        precondition(event.keyValue.modRevision >= revision, "etcd change at \(event.keyValue.modRevision) applied after \(revision)")
        try set(event.keyValue, deleted: event.kind == .delete)
        revision = event.keyValue.modRevision
    }

    /// Keys outside the known layout are ignored; an undecodable value throws rather than being
    /// half-applied.
    private mutating func set(_ kv: EtcdKeyValue, deleted: Bool) throws {
        let decoder = JSONDecoder()
        if kv.key == controllerKey {
            if deleted {
                controller = nil
            } else {
                var record = try decoder.decode(ControllerRecord.self, from: Data(kv.value))
                record.electionRevision = kv.createRevision
                controller = record
            }
        } else if kv.key.hasPrefix(brokersKey), let id = Int32(kv.key.dropFirst(brokersKey.count)) {
            if deleted {
                brokers[id] = nil
            } else {
                var b = try decoder.decode(BrokerRegistration.self, from: Data(kv.value))
                b.epoch = kv.createRevision
                brokers[id] = b
            }
        } else if kv.key.hasPrefix(topicsKey) {
            let name = String(kv.key.dropFirst(topicsKey.count))
            topics[name] = deleted ? nil : try decoder.decode(TopicRecord.self, from: Data(kv.value))
            topicRevisions[name] = deleted ? nil : kv.modRevision
        } else if kv.key.hasPrefix(brokerConfigsKey) {
            let suffix = String(kv.key.dropFirst(brokerConfigsKey.count))
            let entity = suffix == "default" ? "" : suffix
            brokerConfigs[entity] = deleted ? nil : try decoder.decode([String: String].self, from: Data(kv.value))
            brokerConfigRevisions[entity] = deleted ? nil : kv.modRevision
        }
    }

    public var liveBrokers: [BrokerRegistration] { brokers.values.sorted { $0.nodeId < $1.nodeId } }

    public func topicKey(_ name: String) -> String { topicsKey + name }

    /// The partition's leader, if it has one that is alive.
    public func leader(of topic: String, partition: Int32) -> Int32? {
        guard let state = topics[topic]?.partitions[safe: Int(partition)], brokers[state.leader] != nil else { return nil }
        return state.leader
    }

    /// Partitions `node` replicates, with whether it leads them.
    public func replicas(on node: Int32) -> [(topic: String, partition: Int32, leader: Bool)] {
        topics.values.sorted { $0.name < $1.name }.flatMap { t in
            t.partitions.enumerated().compactMap { i, p in p.replicas.contains(node) ? (t.name, Int32(i), p.leader == node) : nil }
        }
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { index >= 0 && index < count ? self[index] : nil }
}
