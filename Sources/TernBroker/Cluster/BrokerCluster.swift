import Foundation
import Logging
import NIOConcurrencyHelpers
import TernCluster
import TernProtocol

/// A broker's side of cluster mode (`--cluster etcd://…`): its `ClusterMember` (registration,
/// controller election, the metadata image followed from etcd) and the latest image for request
/// handlers to read.
///
/// Concurrency: the member is an actor that hears etcd. Each image it applies is stored in
/// `latest` (one lock, read synchronously by handlers on the event loops) and handed to the
/// `tern-cluster-apply` thread (`ImageApplier`), which makes local storage match it — creating
/// and deleting logs is disk work, so it never runs on an event loop or in the cooperative pool.
public final class BrokerCluster: Sendable {
    public let nodeId: Int32
    let member: ClusterMember
    let etcd: EtcdClient
    let logger: Logger
    private let latest: NIOLockedValueBox<MetadataImage>
    let applier: ImageApplier
    let producerIds: ProducerIdBlocks
    /// The cluster's id, the same on every broker (created by the first broker to join).
    public let clusterId: String
    /// Partition counts of `__consumer_offsets` and `__transaction_state`, the same on every
    /// broker: fixed by the first broker to join (its data directory's counts, or its settings).
    public let internalPartitions: [String: Int32]

    /// Connects to etcd and joins the cluster. Throws — and the broker must not start — when etcd
    /// cannot be reached or another live broker has this node id.
    public static func join(config: BrokerConfig, logger: Logger) async throws -> BrokerCluster {
        guard let endpoint = config.etcdEndpoint else { preconditionFailure("join needs an etcd endpoint") }
        let etcd = EtcdClient(endpoint: endpoint, requestTimeout: .seconds(3))
        let (host, port) = config.advertised
        let registration = BrokerRegistration(
            nodeId: config.nodeId, host: host, port: Int32(port), rack: config.rack, directoryId: try DirectoryIdentity.load(logDir: config.logDir))
        let latest = NIOLockedValueBox(MetadataImage(cluster: config.clusterName))
        let applier = ImageApplier(logger: logger)
        let member = ClusterMember(
            client: etcd, cluster: config.clusterName, registration: registration,
            leaseTTLSeconds: max(2, (config.brokerSessionTimeoutMs + 999) / 1000),
            preferredLeaderBalancing: config.autoLeaderRebalance,
            preferredLeaderCheckInterval: .seconds(config.leaderImbalanceCheckIntervalSeconds), logger: logger,
            onChange: { image in
                latest.withLockedValue { $0 = image }
                applier.offer(image)
            })
        let producerIds = ProducerIdBlocks(logger: logger) { try await member.allocateProducerIds(count: $0) }
        let clusterId: String
        let internalPartitions: [String: Int32]
        do {
            try await member.start()
            try await producerIds.prime()
            clusterId = try await Self.clusterId(etcd, prefix: "/\(config.clusterName)/", proposed: String(KafkaUUID.random().description.prefix(22)))
            internalPartitions = try await Self.internalPartitions(etcd, prefix: "/\(config.clusterName)/", proposed: try Self.proposedInternalPartitions(config))
        } catch {
            await member.stop()
            try? await etcd.shutdown()
            throw error
        }
        return BrokerCluster(
            nodeId: config.nodeId, member: member, etcd: etcd, latest: latest, applier: applier, producerIds: producerIds,
            clusterId: clusterId, internalPartitions: internalPartitions, logger: logger)
    }

    /// This data directory's internal-topic partition counts where it has the topics, else the
    /// broker's settings.
    private static func proposedInternalPartitions(_ config: BrokerConfig) throws -> [String: Int32] {
        let local = try TopicStore(directory: config.logDir).load()?.topics ?? []
        let count = { (name: String, setting: Int32) in local.first { $0.name == name }?.partitions ?? setting }
        return [
            Broker.offsetsTopic: count(Broker.offsetsTopic, config.offsetsTopicPartitions),
            TransactionCoordinator.stateTopic: count(TransactionCoordinator.stateTopic, config.transactionStatePartitions),
        ]
    }

    private static func internalPartitions(_ etcd: EtcdClient, prefix: String, proposed: [String: Int32]) async throws -> [String: Int32] {
        let key = prefix + "internal-partitions"
        _ = try await etcd.transaction(if: [.absent(key)], then: [.put(key, Array(try JSONEncoder().encode(proposed)))])
        guard let stored = try await etcd.get(key) else { throw EtcdError.server(code: -1, message: "\(key) vanished") }
        return try JSONDecoder().decode([String: Int32].self, from: Data(stored.value))
    }

    private static func clusterId(_ etcd: EtcdClient, prefix: String, proposed: String) async throws -> String {
        let key = prefix + "cluster-id"
        _ = try await etcd.transaction(if: [.absent(key)], then: [.put(key, Array(proposed.utf8))])
        guard let stored = try await etcd.get(key) else { throw EtcdError.server(code: -1, message: "\(key) vanished") }
        return stored.string
    }

    private init(
        nodeId: Int32, member: ClusterMember, etcd: EtcdClient, latest: NIOLockedValueBox<MetadataImage>, applier: ImageApplier,
        producerIds: ProducerIdBlocks, clusterId: String, internalPartitions: [String: Int32], logger: Logger
    ) {
        self.internalPartitions = internalPartitions
        self.producerIds = producerIds
        self.clusterId = clusterId
        self.nodeId = nodeId
        self.member = member
        self.etcd = etcd
        self.latest = latest
        self.applier = applier
        self.logger = logger
    }

    /// The cluster's metadata as last heard from etcd.
    public var image: MetadataImage { latest.withLockedValue { $0 } }

    /// This broker's lease may have run out: it must not accept writes (another broker may lead
    /// its partitions by now) until etcd hears from it again.
    public var isFenced: Bool { member.fence.isFenced }

    /// Controlled shutdown (when enabled), then leaves the cluster: stops the local apply thread and
    /// revokes the lease so the controller reacts at once rather than after the session timeout.
    public func leave(controlled: Bool, timeout: Duration = .seconds(15)) async {
        if controlled { await member.controlledShutdown(timeout: timeout) }
        await member.stop()
        applier.stop()
        try? await etcd.shutdown()
    }
}

/// Applies images to local storage on a thread of its own, newest first: an image that arrives
/// while another is being applied replaces any not yet started (each image is complete, so only
/// the newest matters). Sendable: the pending image, the target and the stop flag are each under
/// a lock; the semaphore only wakes the thread.
final class ImageApplier: Sendable {
    private let next = NIOLockedValueBox<MetadataImage?>(nil)
    private let target = NIOLockedValueBox<(@Sendable (MetadataImage) -> Void)?>(nil)
    private let stopping = NIOLockedValueBox(false)
    private let wake = DispatchSemaphore(value: 0)
    private let exited = DispatchSemaphore(value: 0)
    private let logger: Logger

    init(logger: Logger) { self.logger = logger }

    func offer(_ image: MetadataImage) {
        next.withLockedValue { $0 = image }
        wake.signal()
    }

    /// Starts applying: `apply` gets each image offered from now on (the caller applies the
    /// current one itself first).
    func start(_ apply: @escaping @Sendable (MetadataImage) -> Void) {
        target.withLockedValue { $0 = apply }
        let thread = Thread { [self] in
            while !stopping.withLockedValue({ $0 }) {
                // Woken by every offer and by stop: no polling.
                wake.wait()
                if let image = next.withLockedValue({ i in defer { i = nil }; return i }) { apply(image) }
            }
            exited.signal()
        }
        thread.name = "tern-cluster-apply"
        thread.start()
    }

    func stop() {
        guard target.withLockedValue({ $0 }) != nil else { return }
        stopping.withLockedValue { $0 = true }
        wake.signal()
        exited.wait()
    }
}
