import TernCluster
import TernProtocol

/// What the cluster looks like to a request handler, taken once per request: in cluster mode the
/// metadata image from etcd; on a single broker, itself — the only broker, the controller, the
/// leader and only replica of every partition it has. Metadata, DescribeCluster,
/// DescribeTopicPartitions, FindCoordinator and the leadership checks all read this one view, so
/// they cannot disagree within a request.
struct ClusterView {
    struct TopicView {
        let name: String
        let id: KafkaUUID
        let partitions: [PartitionState]
        let configs: [String: String]
    }

    let nodeId: Int32
    let brokers: [BrokerRegistration]
    /// -1 while no broker holds the controller key.
    let controllerId: Int32
    private let image: MetadataImage?
    private let registry: TopicRegistry

    init(nodeId: Int32, advertised: (host: String, port: Int), rack: String?, image: MetadataImage?, registry: TopicRegistry) {
        self.nodeId = nodeId
        self.image = image
        self.registry = registry
        if let image {
            brokers = image.liveBrokers
            controllerId = image.controller?.nodeId ?? -1
        } else {
            brokers = [BrokerRegistration(nodeId: nodeId, host: advertised.host, port: Int32(advertised.port), rack: rack)]
            controllerId = nodeId
        }
    }

    var isCluster: Bool { image != nil }

    func broker(_ id: Int32) -> BrokerRegistration? { brokers.first { $0.nodeId == id } }

    func topic(_ name: String) -> TopicView? {
        if let image {
            return image.topics[name].map(Self.view)
        }
        return registry.topic(name).map(local)
    }

    func topic(id: KafkaUUID) -> TopicView? {
        if let image {
            return image.topics.values.first { KafkaUUID(hex: $0.topicId) == id }.map(Self.view)
        }
        return registry.topic(id: id).map(local)
    }

    var allTopics: [TopicView] {
        if let image {
            return image.topics.values.sorted { $0.name < $1.name }.map(Self.view)
        }
        return registry.allTopics.map(local)
    }

    /// One partition's state. On a single broker it is made directly (every produce asks, and a
    /// topic may have many partitions: no per-topic view is built).
    func partition(_ name: String, _ index: Int32) -> PartitionState? {
        guard let image else {
            guard registry.topic(name)?.partition(index) != nil else { return nil }
            return PartitionState(replicas: [nodeId], isr: [nodeId], leader: nodeId)
        }
        guard let t = image.topics[name], index >= 0, Int(index) < t.partitions.count else { return nil }
        return t.partitions[Int(index)]
    }

    private static func view(_ record: TopicRecord) -> TopicView {
        TopicView(name: record.name, id: KafkaUUID(hex: record.topicId) ?? .zero, partitions: record.partitions, configs: record.configs)
    }

    private func local(_ topic: Topic) -> TopicView {
        let me = nodeId
        return TopicView(
            name: topic.metadata.name, id: topic.metadata.topicId,
            partitions: (0..<topic.metadata.partitions).map { _ in PartitionState(replicas: [me], isr: [me], leader: me) },
            configs: topic.metadata.configs)
    }
}

extension Broker {
    /// The view of the cluster for one request.
    var view: ClusterView {
        ClusterView(nodeId: config.nodeId, advertised: config.advertised, rack: config.rack, image: cluster?.image, registry: topics)
    }

    /// Whether this broker may serve reads and writes of a partition as its leader: nil when it
    /// may, else the error a client re-routes on. A single broker leads every partition it has; in
    /// a cluster the image must name this broker leader, its lease must be alive (past it another
    /// broker may lead by now), and the log must already be open here.
    func leadershipRefusal(_ topic: String, _ partition: Int32, in view: ClusterView) -> KafkaError? {
        Self.leadershipRefusal(topic, partition, in: view, cluster: cluster, nodeId: config.nodeId, registry: topics)
    }

    static func leadershipRefusal(
        _ topic: String, _ partition: Int32, in view: ClusterView, cluster: BrokerCluster?, nodeId: Int32, registry: TopicRegistry
    ) -> KafkaError? {
        guard view.isCluster, let cluster else { return nil }
        guard let state = view.partition(topic, partition) else { return .unknownTopicOrPartition }
        if state.leader == LeaderElection.noLeader { return .leaderNotAvailable }
        if state.leader != nodeId || cluster.isFenced { return .notLeaderOrFollower }
        if registry.topic(topic)?.partition(partition) == nil { return .notLeaderOrFollower }
        return nil
    }
}
