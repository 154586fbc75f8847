/// The broker settings Tern reads (`BrokerProperties`), as DescribeConfigs reports them for a
/// BROKER resource: type, current value and what it does. None can be changed at run time, so all
/// are read-only; an explicitly given one has source STATIC_BROKER_CONFIG, the rest DEFAULT_CONFIG.
enum BrokerConfigCatalog {
    struct Entry: Sendable {
        let name: String
        let type: ConfigType
        let value: @Sendable (BrokerConfig) -> String?
        let about: String
    }

    static let all: [Entry] = [
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
        .init(name: "group.consumer.migration.policy", type: .string, value: { $0.groups.migrationPolicy.rawValue },
              about: "Whether a live group may move between the classic and the consumer (KIP-848) protocol."),
        .init(name: "socket.request.max.bytes", type: .int, value: { "\($0.socketRequestMaxBytes)" }, about: "Largest request frame."),
        .init(name: "connections.max.idle.ms", type: .long, value: { "\($0.connectionsMaxIdleMs)" }, about: "Close connections idle this long."),
        .init(name: "max.connections", type: .int, value: { "\($0.maxConnections)" }, about: "Most connections accepted at once."),
        .init(name: "queued.max.request.bytes", type: .long, value: { "\($0.queuedMaxRequestBytes)" },
              about: "Request memory all connections may hold at once."),
        .init(name: "tern.socket.frame.timeout.ms", type: .long, value: { "\($0.frameTimeoutMs)" },
              about: "Time for a request frame to complete or bring another 64 KiB."),
    ]
}
