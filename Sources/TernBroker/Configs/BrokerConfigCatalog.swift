/// The broker settings Tern reads (`BrokerProperties`), as DescribeConfigs reports them for a
/// BROKER resource: type, current value and what it does. Those in `dynamicNames` can be changed
/// at run time (`DynamicBrokerConfigs`); the rest are read-only.
enum BrokerConfigCatalog {
    struct Entry: Sendable {
        let name: String
        let type: ConfigType
        let value: @Sendable (BrokerConfig) -> String?
        let about: String
        /// Set for a setting Tern accepts without applying: the check its value gets, and why
        /// it is not applied (sent as part of DescribeConfigs' documentation).
        var acceptedOnly: (check: ConfigCheck, reason: String)? = nil

        var documentation: String {
            acceptedOnly.map { "\(about) Tern accepts this setting but does not apply it: \($0.reason)" } ?? about
        }
    }

    /// The settings that change while the broker runs, per broker or cluster-wide — Kafka's
    /// dynamic log defaults (`DynamicLogConfig`), the cleaner's buffer, producer-id expiry and
    /// `max.connections` — each applied at once: topics without their own value take the new
    /// default, and new connections meet the new limit.
    static let dynamicNames: Set<String> = Set([
        "log.segment.bytes", "log.roll.ms", "log.roll.hours", "log.index.interval.bytes",
        "log.retention.ms", "log.retention.minutes", "log.retention.hours", "log.retention.bytes",
        "log.cleanup.policy", "log.cleaner.delete.retention.ms", "log.cleaner.dedupe.buffer.size",
        "log.flush.interval.messages", "log.flush.interval.ms", "tern.replication.fsync",
        "log.message.timestamp.type", "log.message.timestamp.before.max.ms", "log.message.timestamp.after.max.ms",
        "message.max.bytes", "min.insync.replicas", "compression.type", "producer.id.expiration.ms", "max.connections", "max.connections.per.ip",
    ]).union(acceptedOnly.map(\.name))

    /// Dynamic settings of one broker's own listeners, which Kafka refuses as cluster-wide
    /// defaults (`DynamicBrokerConfig.PerBrokerConfigs`).
    static let perBrokerOnly: Set<String> = Set(acceptedOnly.map(\.name).filter { $0.hasPrefix("sasl.") })

    static let byName: [String: Entry] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })

    /// The names a setting shares its value with, finest unit first (Kafka's
    /// `DynamicBrokerConfig.brokerConfigSynonyms`).
    static func synonyms(of name: String) -> [String] {
        switch name {
        case "log.roll.ms", "log.roll.hours": return ["log.roll.ms", "log.roll.hours"]
        case "log.retention.ms", "log.retention.minutes", "log.retention.hours":
            return ["log.retention.ms", "log.retention.minutes", "log.retention.hours"]
        default: return [name]
        }
    }

    static let all: [Entry] = applied + acceptedOnly

    /// Kafka's dynamic broker configs that Tern accepts — in server.properties and at run time —
    /// and describes without applying them, as it does with some topic configs, so that tools and
    /// client test suites setting them work (librdkafka's admin test sets
    /// `sasl.kerberos.min.time.before.relogin` on a broker). Values are checked by type.
    static let acceptedOnly: [Entry] = {
        let threads = "Tern sizes its event loops and I/O threads from the machine's cores."
        let sasl = "Tern has no SASL or Kerberos login yet."
        func entry(_ name: String, _ type: ConfigType, _ kafkaDefault: String?, _ check: ConfigCheck, _ about: String, _ reason: String) -> Entry {
            Entry(name: name, type: type, value: { _ in kafkaDefault }, about: about, acceptedOnly: (check, reason))
        }
        let positive = ConfigCheck.int(atLeast: 1)
        return [
            entry("num.io.threads", .int, "8", positive, "Threads handling requests.", threads),
            entry("num.network.threads", .int, "3", positive, "Threads receiving and sending on the network.", threads),
            entry("num.replica.fetchers", .int, "1", positive, "Follower fetcher threads per source broker.", threads),
            entry("background.threads", .int, "10", positive, "Threads for background work.", threads),
            entry("num.recovery.threads.per.data.dir", .int, "2", positive, "Threads recovering logs at start.", threads),
            entry("log.cleaner.threads", .int, "1", .int(atLeast: 0), "Compaction threads.", "one cleaner thread runs compaction."),
            entry("log.cleaner.backoff.ms", .long, "15000", .long(atLeast: 0), "Cleaner sleep when there is nothing to clean.",
                  "compaction runs every log.retention.check.interval.ms."),
            entry("max.connection.creation.rate", .int, "\(Int32.max)", .int(atLeast: 0), "New connections accepted per second.",
                  "connections are limited by max.connections only."),
            entry("transaction.partition.verification.enable", .boolean, "true", .boolean, "Verify transactional produce partitions (KIP-890).",
                  "Tern always verifies."),
            entry("sasl.kerberos.service.name", .string, nil, .any, "Kerberos principal name the broker runs as.", sasl),
            entry("sasl.kerberos.kinit.cmd", .string, "/usr/bin/kinit", .any, "Kerberos kinit command path.", sasl),
            entry("sasl.kerberos.ticket.renew.window.factor", .double, "0.8", .double(between: 0, and: 1), "Kerberos ticket renewal point.", sasl),
            entry("sasl.kerberos.ticket.renew.jitter", .double, "0.05", .double(between: 0, and: 1), "Kerberos ticket renewal jitter.", sasl),
            entry("sasl.kerberos.min.time.before.relogin", .long, "60000", .anyLong, "Login thread sleep time between refresh attempts.", sasl),
            entry("sasl.kerberos.principal.to.local.rules", .list, "DEFAULT", .any, "Principal name to short name rules.", sasl),
            entry("sasl.login.refresh.window.factor", .double, "0.8", .double(between: 0.5, and: 1), "Login credential refresh point.", sasl),
            entry("sasl.login.refresh.window.jitter", .double, "0.05", .double(between: 0, and: 0.25), "Login credential refresh jitter.", sasl),
            entry("sasl.login.refresh.min.period.seconds", .short, "60", .int(atLeast: 0, atMost: 900), "Smallest login refresh period.", sasl),
            entry("sasl.login.refresh.buffer.seconds", .short, "300", .int(atLeast: 0, atMost: 3600), "Login refresh buffer before expiry.", sasl),
        ]
    }()

    private static let applied: [Entry] = [
        .init(name: "node.id", type: .int, value: { "\($0.nodeId)" }, about: "This broker's id."),
        .init(name: "broker.id", type: .int, value: { "\($0.nodeId)" }, about: "This broker's id (older name of node.id)."),
        .init(name: "log.dirs", type: .string, value: { $0.logDir }, about: "Directory holding the partition logs."),
        .init(name: "listeners", type: .list, value: { "PLAINTEXT://\($0.host):\($0.port)" }, about: "Where the broker accepts connections."),
        .init(name: "advertised.listeners", type: .list, value: { c in "PLAINTEXT://\(c.advertised.host):\(c.advertised.port)" },
              about: "What Metadata tells clients to connect to."),
        .init(name: "num.partitions", type: .int, value: { "\($0.numPartitions)" }, about: "Partitions of auto-created topics."),
        .init(name: "auto.create.topics.enable", type: .boolean, value: { "\($0.autoCreateTopics)" }, about: "Create unknown topics on Metadata requests."),
        .init(name: "log.segment.bytes", type: .int, value: { "\($0.log.segmentBytes)" }, about: "Default segment.bytes."),
        .init(name: "log.index.interval.bytes", type: .int, value: { "\($0.log.indexIntervalBytes)" }, about: "Default index.interval.bytes."),
        .init(name: "log.flush.interval.messages", type: .long, value: { "\($0.log.flushIntervalMessages)" }, about: "Default flush.messages."),
        .init(name: "tern.replication.fsync", type: .boolean, value: { "\($0.log.replicationFsync)" },
              about: "Default tern.replication.fsync: acks=all waits for fdatasync on every in-sync replica."),
        .init(name: "tern.test.unsafe.ack.before.replication", type: .boolean, value: { "\($0.unsafeAckBeforeReplication)" },
              about: "A deliberate bug for testing checkers: acks=all answered before followers have the batch. Never set it."),
        .init(name: "log.flush.interval.ms", type: .long, value: { c in c.log.flushIntervalMs == Int64.max ? nil : "\(c.log.flushIntervalMs)" },
              about: "Default flush.ms."),
        .init(name: "log.roll.ms", type: .long, value: { _ in nil }, about: "Default segment.ms (milliseconds)."),
        .init(name: "log.roll.hours", type: .int, value: { "\($0.log.rollMs / 3_600_000)" }, about: "Default segment.ms (hours)."),
        .init(name: "log.retention.ms", type: .long, value: { _ in nil }, about: "Default retention.ms (milliseconds)."),
        .init(name: "log.retention.minutes", type: .int, value: { _ in nil }, about: "Default retention.ms (minutes)."),
        .init(name: "log.retention.hours", type: .int, value: { "\($0.log.retentionMs < 0 ? -1 : $0.log.retentionMs / 3_600_000)" },
              about: "Default retention.ms (hours)."),
        .init(name: "log.retention.bytes", type: .long, value: { "\($0.log.retentionBytes)" }, about: "Default retention.bytes."),
        .init(name: "log.retention.check.interval.ms", type: .long, value: { "\($0.retentionCheckIntervalMs)" },
              about: "How often retention and compaction run."),
        .init(name: "log.cleanup.policy", type: .list, value: { TopicConfigCatalog.byName["cleanup.policy"]!.brokerValue($0) },
              about: "Default cleanup.policy."),
        .init(name: "log.cleaner.delete.retention.ms", type: .long, value: { "\($0.log.deleteRetentionMs)" }, about: "Default delete.retention.ms."),
        .init(name: "log.cleaner.dedupe.buffer.size", type: .long, value: { "\($0.log.cleanerDedupeBufferBytes)" },
              about: "Memory for one compaction pass's key map."),
        .init(name: "log.message.timestamp.type", type: .string, value: { $0.timestampType }, about: "Default message.timestamp.type."),
        .init(name: "log.message.timestamp.before.max.ms", type: .long, value: { "\($0.timestampBeforeMaxMs)" },
              about: "Default message.timestamp.before.max.ms."),
        .init(name: "log.message.timestamp.after.max.ms", type: .long, value: { "\($0.timestampAfterMaxMs)" },
              about: "Default message.timestamp.after.max.ms."),
        .init(name: "min.insync.replicas", type: .int, value: { "\($0.minInsyncReplicas)" }, about: "Default min.insync.replicas."),
        .init(name: "compression.type", type: .string, value: { $0.compression.rawValue }, about: "Default compression.type."),
        .init(name: "message.max.bytes", type: .int, value: { "\($0.messageMaxBytes)" }, about: "Default max.message.bytes."),
        .init(name: "producer.id.expiration.ms", type: .int, value: { "\($0.log.producerIdExpirationMs)" },
              about: "Forget idempotent producers idle this long."),
        .init(name: "transactional.id.expiration.ms", type: .int, value: { "\($0.transactionalIdExpirationMs)" },
              about: "Forget idle transactional ids after this long."),
        .init(name: "transaction.remove.expired.transaction.cleanup.interval.ms", type: .int,
              value: { "\($0.transactionCleanupIntervalMs)" }, about: "How often transactional ids are checked for expiry."),
        .init(name: "group.initial.rebalance.delay.ms", type: .int, value: { "\($0.groups.initialRebalanceDelayMs)" },
              about: "How long a new group waits for more members."),
        .init(name: "group.min.session.timeout.ms", type: .int, value: { "\($0.groups.minSessionTimeoutMs)" }, about: "Smallest session timeout accepted."),
        .init(name: "group.max.session.timeout.ms", type: .int, value: { "\($0.groups.maxSessionTimeoutMs)" }, about: "Largest session timeout accepted."),
        .init(name: "group.consumer.heartbeat.interval.ms", type: .int, value: { "\($0.groups.consumerHeartbeatIntervalMs)" },
              about: "Heartbeat interval for KIP-848 consumers."),
        .init(name: "group.consumer.session.timeout.ms", type: .int, value: { "\($0.groups.consumerSessionTimeoutMs)" },
              about: "Session timeout of KIP-848 consumers."),
        .init(name: "group.max.size", type: .int, value: { "\($0.groups.maxSize)" }, about: "Most members of a classic group."),
        .init(name: "group.consumer.max.size", type: .int, value: { "\($0.groups.consumerMaxSize)" },
              about: "Most members of a consumer-protocol group."),
        .init(name: "offsets.retention.minutes", type: .int, value: { "\($0.groups.offsetsRetentionMs / 60_000)" },
              about: "How long committed offsets outlive their group's members or their last commit."),
        .init(name: "offsets.retention.check.interval.ms", type: .long, value: { "\($0.groups.offsetsRetentionCheckIntervalMs)" },
              about: "How often expired offsets and empty groups are removed."),
        .init(name: "group.consumer.migration.policy", type: .string, value: { $0.groups.migrationPolicy.rawValue },
              about: "Whether a live group may move between the classic and the consumer (KIP-848) protocol."),
        .init(name: "fetch.max.bytes", type: .int, value: { "\($0.fetchMaxBytes)" },
              about: "The most record bytes one fetch response carries (beyond one whole batch)."),
        .init(name: "socket.request.max.bytes", type: .int, value: { "\($0.socketRequestMaxBytes)" }, about: "Largest request frame."),
        .init(name: "socket.send.buffer.bytes", type: .int, value: { "\($0.socketSendBufferBytes)" },
              about: "SO_SNDBUF of client connections (-1: the operating system's)."),
        .init(name: "socket.receive.buffer.bytes", type: .int, value: { "\($0.socketReceiveBufferBytes)" },
              about: "SO_RCVBUF of client connections (-1: the operating system's)."),
        .init(name: "connections.max.idle.ms", type: .long, value: { "\($0.connectionsMaxIdleMs)" }, about: "Close connections idle this long."),
        .init(name: "max.connections", type: .int, value: { "\($0.maxConnections)" }, about: "Most connections accepted at once."),
        .init(name: "max.connections.per.ip", type: .int, value: { "\($0.maxConnectionsPerIp)" },
              about: "Most connections accepted at once from one address."),
        .init(name: "queued.max.request.bytes", type: .long, value: { "\($0.queuedMaxRequestBytes)" },
              about: "Request memory all connections may hold at once."),
        .init(name: "tern.socket.frame.timeout.ms", type: .long, value: { "\($0.frameTimeoutMs)" },
              about: "Time for a request frame to complete or bring another 64 KiB."),
        .init(name: "tern.socket.stall.timeout.ms", type: .long, value: { "\($0.stallTimeoutMs)" },
              about: "Close a connection that took none of its responses this long while the request memory budget is half used."),
        .init(name: "tern.cluster.etcd", type: .string, value: { $0.etcdEndpoint }, about: "etcd holding the cluster's metadata (unset: a single broker)."),
        .init(name: "tern.cluster.name", type: .string, value: { $0.clusterName }, about: "The cluster's key prefix in etcd."),
        .init(name: "broker.rack", type: .string, value: { $0.rack }, about: "This broker's rack, for rack-aware replica placement."),
        .init(name: "broker.session.timeout.ms", type: .int, value: { "\($0.brokerSessionTimeoutMs)" },
              about: "A broker silent this long is dead to the cluster (its etcd lease)."),
        .init(name: "default.replication.factor", type: .int, value: { "\($0.defaultReplicationFactor)" },
              about: "Replicas of auto-created topics."),
        .init(name: "offsets.topic.replication.factor", type: .short, value: { "\($0.offsetsTopicReplicationFactor)" },
              about: "Replicas of __consumer_offsets (capped at the live brokers)."),
        .init(name: "transaction.state.log.replication.factor", type: .short, value: { "\($0.transactionStateReplicationFactor)" },
              about: "Replicas of __transaction_state (capped at the live brokers)."),
        .init(name: "offsets.topic.num.partitions", type: .int, value: { "\($0.offsetsTopicPartitions)" },
              about: "Partitions of __consumer_offsets when it is created (an existing one keeps its count)."),
        .init(name: "transaction.state.log.num.partitions", type: .int, value: { "\($0.transactionStatePartitions)" },
              about: "Partitions of __transaction_state when it is created (an existing one keeps its count)."),
        .init(name: "auto.leader.rebalance.enable", type: .boolean, value: { "\($0.autoLeaderRebalance)" },
              about: "Move leadership back to preferred replicas."),
        .init(name: "leader.imbalance.check.interval.seconds", type: .long, value: { "\($0.leaderImbalanceCheckIntervalSeconds)" },
              about: "How often the controller checks for leadership away from preferred replicas."),
        .init(name: "controlled.shutdown.enable", type: .boolean, value: { "\($0.controlledShutdown)" },
              about: "Move leaderships away before shutting down."),
        .init(name: "replica.lag.time.max.ms", type: .long, value: { "\($0.replication.lagTimeMaxMs)" },
              about: "A follower that has not caught up for this long leaves the ISR."),
        .init(name: "replica.fetch.wait.max.ms", type: .int, value: { "\($0.replication.fetchWaitMaxMs)" },
              about: "How long a follower's fetch waits at the leader for new records."),
        .init(name: "replica.fetch.min.bytes", type: .int, value: { "\($0.replication.fetchMinBytes)" },
              about: "How many bytes of new records a follower's fetch waits for at the leader."),
        .init(name: "replica.fetch.max.bytes", type: .int, value: { "\($0.replication.fetchMaxBytes)" },
              about: "Bytes per partition in a follower's fetch."),
        .init(name: "replica.fetch.response.max.bytes", type: .int, value: { "\($0.replication.fetchResponseMaxBytes)" },
              about: "Bytes per follower fetch response."),
        .init(name: "replica.fetch.backoff.ms", type: .int, value: { "\($0.replication.fetchBackoffMs)" },
              about: "Pause after a failed follower fetch."),
        .init(name: "replica.high.watermark.checkpoint.interval.ms", type: .long, value: { "\($0.replication.highWatermarkCheckpointIntervalMs)" },
              about: "How often high watermarks are written to disk."),
    ]
}
