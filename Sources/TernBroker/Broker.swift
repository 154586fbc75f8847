import Dispatch
import Logging
import NIOConcurrencyHelpers
import NIOCore
import TernGroups
import TernLog
import TernProtocol
import TernReplication

/// A single Kafka-compatible broker: request handlers over the topic registry.
/// The broker knows Kafka requests and responses; it knows nothing about sockets or io_uring.
public final class Broker: Sendable {
    public let config: BrokerConfig
    public let topics: TopicRegistry
    let logger: Logger
    let fetchWaiters = FetchWaiters()
    let metrics = BrokerMetrics()
    /// Connection limits and the descriptor reserve (`ConnectionAdmission`).
    let admission = ConnectionAdmission()
    /// Flusher, cleaner and housekeeping threads (`Broker+Maintenance`).
    let maintenanceThreads = NIOLockedValueBox<[PeriodicThread]>([])
    /// The group-commit writer every produce goes through.
    public let appender: LogAppender
    /// Threads checking compressed produced batches, off the event loops.
    let produceValidation = ProduceValidation(threads: max(2, System.coreCount / 2))
    /// Where producer ids come from: etcd's counter, or on a single broker the data directory.
    private let producerIds: ProducerIdBlocks
    /// Consumer groups and committed offsets.
    public let groups: GroupCoordinator
    /// Transactional ids, open transactions, markers.
    let transactions: TransactionCoordinator
    /// The internal, compacted topic holding committed offsets.
    public static let offsetsTopic = "__consumer_offsets"
    /// Internal topics: not produced to, deleted or altered by clients.
    public static let internalTopics: Set<String> = [offsetsTopic, TransactionCoordinator.stateTopic]
    /// Cluster mode: membership, the metadata image, the controller (nil: a single broker).
    public let cluster: BrokerCluster?
    /// Cluster mode: this broker's role — leader or follower — for each of its replicas.
    public let replicas: ReplicaManager?
    /// Cluster mode: connections to the other brokers (transaction markers).
    let channels: BrokerChannels?
    /// After a leader append that is not a client's produce: completes once it is on the ISR.
    let replicatedWrite: @Sendable (String, Int32, Int64, EventLoop) -> EventLoopFuture<KafkaError>
    /// The `__transaction_state` partitions this broker's transaction coordinator serves, with
    /// the leader epoch it took each over at (a new epoch is a new hand-over).
    let transactionCoordination = NIOLockedValueBox([Int: Int32]())
    /// The `__consumer_offsets` partitions whose groups the coordinator has loaded, with the
    /// leader epoch it loaded each in (cluster mode: the ones this broker leads;
    /// `handOverGroupCoordination` keeps it in step with the image). A group is served only while
    /// its partition's current leader epoch is the loaded one.
    let groupCoordination = NIOLockedValueBox([Int: Int32]())
    /// Cluster mode: topics whose auto-creation is being written to etcd (one write each, at most
    /// `maxConcurrentAutoCreations`, each leaving when its write ends).
    let autoCreating = NIOLockedValueBox(Set<String>())
    /// A single broker's dynamic broker configs (a cluster's are in its image).
    let dynamicConfigFile: DynamicConfigFile?
    /// The dynamic broker configs the topics were last reconfigured with.
    let appliedDynamicConfigs: NIOLockedValueBox<DynamicBrokerConfigs>

    /// A single broker, or with `cluster` (already joined) one broker of a cluster: local storage
    /// is made to match the cluster's image before this returns, and follows it afterwards.
    public init(config: BrokerConfig, logger: Logger, cluster: BrokerCluster? = nil) throws {
        self.config = config
        self.logger = logger
        self.cluster = cluster
        let dynamicConfigFile = cluster == nil ? try DynamicConfigFile(directory: config.logDir) : nil
        let dynamicConfigs = cluster.map { DynamicBrokerConfigs($0.image.brokerConfigs) } ?? dynamicConfigFile?.current ?? DynamicBrokerConfigs()
        self.dynamicConfigFile = dynamicConfigFile
        self.appliedDynamicConfigs = NIOLockedValueBox(dynamicConfigs)
        self.topics = try TopicRegistry(config: dynamicConfigs.applied(to: config), logger: logger)
        self.producerIds = try cluster?.producerIds ?? ProducerIdBlocks.local(directory: config.logDir, topics: topics, logger: logger)
        let (appender, registry) = (LogAppender(io: topics.io, logger: logger), topics)
        self.appender = appender
        let replicas = cluster.map { Self.replicaManager(config: config, cluster: $0, appender: appender, registry: registry, logger: logger) }
        self.replicas = replicas
        let replicated = Self.replicatedWrite(replicas: replicas, fetchWaiters: fetchWaiters, registry: registry)
        self.replicatedWrite = replicated
        self.channels = cluster.map { c in BrokerChannels(nodeId: config.nodeId, image: { c.image }) }
        let offsetsCount = try Self.openInternalTopic(
            Self.offsetsTopic, in: topics, partitions: cluster?.internalPartitions[Self.offsetsTopic] ?? config.offsetsTopicPartitions,
            clusterRequires: cluster != nil)
        let stateCount = try Self.openInternalTopic(
            TransactionCoordinator.stateTopic, in: topics,
            partitions: cluster?.internalPartitions[TransactionCoordinator.stateTopic] ?? config.transactionStatePartitions,
            clusterRequires: cluster != nil)
        // The group coordinator sees every topic of the cluster (KIP-848 assignments cover topics
        // this broker holds no replica of), not only the local ones.
        let (nodeId, advertised, rack) = (config.nodeId, config.advertised, config.rack)
        let view: @Sendable () -> ClusterView = { ClusterView(nodeId: nodeId, advertised: advertised, rack: rack, image: cluster?.image, registry: registry) }
        let catalog = TopicCatalog(
            partitions: { view().topic($0).map { Int32($0.partitions.count) } },
            id: { view().topic($0)?.id },
            name: { view().topic(id: $0)?.name },
            names: { view().allTopics.map(\.name).filter { !Self.internalTopics.contains($0) } })
        // A coordinator serves the internal partitions this broker leads (all, on a single broker).
        let leads = { @Sendable (topic: String, partition: Int32) in
            Self.leadershipRefusal(topic, partition, in: view(), cluster: cluster, nodeId: nodeId, registry: registry) == nil
        }
        let offsetsLogs = (0..<offsetsCount).map { registry.topic(Self.offsetsTopic)!.partition($0)! }
        let coordinatingEpochs = (0..<Int(offsetsCount)).reduce(into: [Int: Int32]()) { epochs, p in
            let current = view()
            guard leads(Self.offsetsTopic, Int32(p)) else { return }
            epochs[p] = current.isCluster ? current.partition(Self.offsetsTopic, Int32(p))?.leaderEpoch : 0
        }
        let coordinating = Set(coordinatingEpochs.keys)
        groupCoordination.withLockedValue { $0 = coordinatingEpochs }
        self.groups = try GroupCoordinator(
            config: config.groups, offsetsLogs: offsetsLogs, coordinating: coordinating, appender: appender, logger: logger, topics: catalog,
            replicated: { partition, end, loop in
                replicated(Self.offsetsTopic, Int32(partition), end, loop).map { $0 == .none }
            })
        let producerIds = producerIds
        self.transactions = try TransactionCoordinator(
            topics: topics, appender: appender, groups: groups,
            allocateProducerId: { try producerIds.take() },
            stateLogs: (0..<stateCount).map { registry.topic(TransactionCoordinator.stateTopic)!.partition($0)! },
            leaderEpoch: { partition in
                let current = view()
                let refusal = Self.leadershipRefusal(
                    TransactionCoordinator.stateTopic, Int32(partition), in: current, cluster: cluster, nodeId: nodeId, registry: registry)
                guard refusal == nil else { return nil }
                return current.isCluster ? current.partition(TransactionCoordinator.stateTopic, Int32(partition))?.leaderEpoch : 0
            },
            idExpirationMs: config.transactionalIdExpirationMs, logger: logger,
            ledHere: { topic, partition in
                // Unknown partitions pass, to be refused as unknown.
                let refusal = Self.leadershipRefusal(topic, partition, in: view(), cluster: cluster, nodeId: nodeId, registry: registry)
                return refusal == nil || refusal == .unknownTopicOrPartition
            },
            partitionExists: { topic, partition in view().partition(topic, partition) != nil },
            replicated: replicated)
        transactionCoordination.withLockedValue { $0 = transactions.coordinatorEpochs }
        if let cluster, let channels {
            let markerLoop = groups.eventLoop
            transactions.installRemoteMarkers { topic, partition, producerId, epoch, coordinatorEpoch, commit in
                Self.sendMarker(
                    channels: channels, cluster: cluster, topic: topic, partition: partition, producerId: producerId, epoch: epoch,
                    coordinatorEpoch: coordinatorEpoch, commit: commit, on: markerLoop)
            }
            applyToLocalReplicas(cluster.image)
            cluster.applier.start { [weak self] image in self?.applyToLocalReplicas(image) }
        }
        // Transactions a crash interrupted in their commit or abort are finished now that
        // markers can be written (to other brokers too).
        transactions.recover()
        // The logs are open now: what connections may use of the open-file limit is known.
        admission.sampleDescriptors()
        FileDescriptorBudget.connections.withLockedValue { [admission] in $0 = { admission.total } }
    }

    /// How long the coordinators' writes wait for followers (Kafka's `offsets.commit.timeout.ms`).
    static let internalWriteTimeoutMs: Int64 = 5_000

    /// After a leader append that is not a client's produce — a coordinator's record, a transaction
    /// marker: wakes waiting fetches, lets a lone in-sync leader's high watermark follow, and
    /// completes once the records are on every in-sync replica (acks=all, as Kafka writes them) or
    /// with the error that stopped them. At once on a single broker.
    static func replicatedWrite(replicas: ReplicaManager?, fetchWaiters: FetchWaiters, registry: TopicRegistry)
        -> @Sendable (String, Int32, Int64, EventLoop) -> EventLoopFuture<KafkaError>
    {
        { topic, partition, end, loop in
            let log = registry.topic(topic)?.partition(partition)
            guard let replicas, let leadership = replicas.leadership(ReplicaKey(topic, partition)), leadership.log === log else {
                if let log { fetchWaiters.notify(log) }
                return loop.makeSucceededFuture(replicas == nil ? .none : .notLeaderOrFollower)
            }
            leadership.leaderAppended()
            fetchWaiters.notify(leadership.log)
            return leadership.waitForReplication(of: end, minInsync: 1, timeoutMs: internalWriteTimeoutMs, on: loop)
        }
    }

    private static func replicaManager(
        config: BrokerConfig, cluster: BrokerCluster, appender: LogAppender, registry: TopicRegistry, logger: Logger
    ) -> ReplicaManager {
        let member = cluster.member
        return ReplicaManager(
            nodeId: config.nodeId, config: config.replication, appender: appender, logger: logger,
            logs: { registry.topic($0.topic)?.partition($0.partition) },
            writeIsr: { key, leaderEpoch, partitionEpoch, isr in
                do {
                    let outcome = try await member.alterPartition(
                        topic: key.topic, partition: key.partition, leaderEpoch: leaderEpoch, partitionEpoch: partitionEpoch, isr: isr)
                    if case .invalid(let why) = outcome { logger.warning("ISR change refused", metadata: ["partition": "\(key)", "reason": "\(why)"]) }
                    if case .altered = outcome { return true }
                } catch {
                    logger.warning("ISR change not written", metadata: ["partition": "\(key)", "error": "\(error)"])
                }
                return false
            })
    }

    /// Opens (creating if new) an internal topic and returns its partition count. A data directory
    /// keeps the count it has — the group/transactional-id → partition hash depends on it — and
    /// in a cluster every broker must have the cluster's count.
    private static func openInternalTopic(_ name: String, in topics: TopicRegistry, partitions: Int32, clusterRequires: Bool) throws -> Int32 {
        if let existing = topics.topic(name) {
            guard !clusterRequires || existing.metadata.partitions == partitions else {
                throw InternalTopicMismatch(topic: name, local: existing.metadata.partitions, cluster: partitions)
            }
            return existing.metadata.partitions
        }
        try topics.createTopic(name: name, partitions: partitions, configs: internalTopicConfigs[name] ?? [:])
        return partitions
    }

    /// The internal topics' configs, as Kafka creates them (`GroupCoordinator.groupMetadataTopicConfigs`,
    /// `TransactionStateManager.transactionTopicConfigs`): compacted, 100 MiB segments.
    static let internalTopicConfigs: [String: [String: String]] = [
        offsetsTopic: ["cleanup.policy": "compact", "segment.bytes": "104857600", "compression.type": "producer"],
        TransactionCoordinator.stateTopic: ["cleanup.policy": "compact", "segment.bytes": "104857600"],
    ]

    /// The partition count the coordinators hash `name` (an internal topic) over: its local copy,
    /// opened at start (in a cluster with the count the brokers agreed, `InternalTopicMismatch`
    /// otherwise). Nil for other topics.
    func internalPartitionCount(_ name: String) -> Int32? {
        Self.internalTopics.contains(name) ? topics.topic(name)?.metadata.partitions : nil
    }

    /// The cluster's id: etcd's in cluster mode, the data directory's on a single broker.
    public var clusterId: String { cluster?.clusterId ?? topics.clusterId }

    /// A producer id never handed out before (partitions remember ids for deduplication).
    func allocateProducerId() throws -> Int64 { try producerIds.take() }

    /// Creates `name` with the broker's default partition count if auto-creation is on.
    func autoCreate(_ name: String) -> Topic? {
        guard config.autoCreateTopics else { return nil }
        do {
            try topics.createTopic(name: name, partitions: config.numPartitions)
        } catch KafkaError.topicAlreadyExists {
            // Lost a race with another request: fine, it exists now.
        } catch {
            logger.warning("auto-create failed", metadata: ["topic": "\(name)", "error": "\(error)"])
            return nil
        }
        return topics.topic(name)
    }

    /// Open client connections (the `tern_connections_active` gauge).
    public var connectionCount: Int { admission.total }

    /// Takes a new connection from `address` under `max.connections`, `max.connections.per.ip`
    /// (both dynamic: read per connection) and the descriptor reserve; nil, or why not (the
    /// caller closes it). Every admitted connection is given back with `connectionClosed`.
    public func admitConnection(address: String?) -> String? {
        let live = liveConfig
        let refusal = admission.admit(address: address, maxConnections: live.maxConnections, maxPerAddress: live.maxConnectionsPerIp)
        if refusal == nil { metrics.connections.record(admission.total) }
        return refusal
    }

    public func connectionClosed(address: String?) { metrics.connections.record(admission.release(address: address)) }

    /// Refreshes the gauges that are cheaper to sample than to track (log sizes, group count).
    public func sampleGauges() {
        admission.sampleDescriptors()
        let local = topics.allTopics
        metrics.logSizes.sample(Dictionary(local.map { t in (t.metadata.name, t.partitions.reduce(Int64(0)) { $0 + $1.sizeInBytes }) }, uniquingKeysWith: { $1 }))
        metrics.forgetTopics(except: Set(local.map(\.metadata.name)))
        groups.groupCount { [metrics] n in metrics.groups.record(n) }
        metrics.appenderQueuedBytes.record(appender.queuedAppends.bytes)
        metrics.logDirOffline.record(topics.io.offlineReason == nil ? 0 : 1)
        if let cluster {
            let image = cluster.image
            let me = config.nodeId
            let partitions = image.topics.values.flatMap(\.partitions)
            metrics.clusterFenced.record(cluster.isFenced ? 1 : 0)
            metrics.clusterIsController.record(image.controller?.nodeId == me && !cluster.isFenced ? 1 : 0)
            metrics.partitionsLed.record(partitions.filter { $0.leader == me }.count)
            metrics.offlinePartitions.record(partitions.filter { image.brokers[$0.leader] == nil }.count)
        }
        if let replicas {
            let led = replicas.leaderships
            metrics.underReplicated.record(led.filter(\.isUnderReplicated).count)
            metrics.producePurgatory.record(led.reduce(0) { $0 + $1.waitingProduceRequests })
            metrics.maxFollowerLag.record(led.map(\.maxFollowerLag).max() ?? 0)
            var lags: [BrokerMetrics.FollowerKey: Int64] = [:]
            for l in led {
                for (replica, lag) in l.followerLags { lags[.init(topic: l.topic, partition: l.partition, replica: replica)] = lag }
            }
            metrics.followerLag.sample(lags)
        }
    }

    /// Aborts transactions past their timeout and restarts endings that stopped (run periodically).
    public func abortExpiredTransactions() {
        transactions.abortExpired()
        transactions.recover()
    }

    /// Forgets transactional ids idle past `transactional.id.expiration.ms` (run periodically).
    public func removeExpiredTransactionalIds() { transactions.removeExpiredTransactionalIds() }

    /// Stops the background threads, finishes queued appends, then flushes and closes every log.
    public func shutdown() async {
        replicas?.shutdown()
        await channels?.shutdown()
        closeLocally()
    }

    /// `shutdown` for a broker that is not part of a cluster (tests, the fuzz target), from code
    /// that is not async: there are no broker-to-broker channels to await.
    public func shutdownSingleBroker() {
        precondition(channels == nil && replicas == nil, "a cluster member shuts down with `await shutdown()`")
        closeLocally()
    }

    private func closeLocally() {
        stopMaintenance()
        groups.shutdown()
        produceValidation.shutdown()
        appender.shutdown()
        topics.close()
    }
}

/// A data directory whose internal topic has another partition count than its cluster's: groups
/// and transactional ids would hash to other partitions, so the broker does not start.
public struct InternalTopicMismatch: Error, CustomStringConvertible {
    let topic: String
    let local: Int32
    let cluster: Int32
    public var description: String {
        "\(topic) has \(local) partition(s) in this data directory but \(cluster) in the cluster; "
            + "a directory keeps its count (groups hash to partitions), so it cannot join this cluster"
    }
}
