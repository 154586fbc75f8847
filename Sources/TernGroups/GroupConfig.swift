import TernProtocol

/// Group coordinator settings, with Kafka's broker config names.
public struct GroupConfig: Sendable {
    /// `group.min.session.timeout.ms` / `group.max.session.timeout.ms`.
    public var minSessionTimeoutMs: Int32 = 6000
    public var maxSessionTimeoutMs: Int32 = 1_800_000
    /// `group.initial.rebalance.delay.ms`: how long a new (empty) group waits for more members
    /// before its first rebalance completes.
    public var initialRebalanceDelayMs: Int64 = 3000
    /// `group.consumer.heartbeat.interval.ms`: told to KIP-848 consumers.
    public var consumerHeartbeatIntervalMs: Int32 = 5000
    /// `group.consumer.session.timeout.ms`.
    public var consumerSessionTimeoutMs: Int32 = 45000
    /// `group.consumer.migration.policy`: whether a live group may move between the classic and
    /// the consumer (KIP-848) protocol.
    public var migrationPolicy: MigrationPolicy = .bidirectional

    public enum MigrationPolicy: String, Sendable, CaseIterable {
        case bidirectional, upgrade, downgrade, disabled
        var allowsUpgrade: Bool { self == .bidirectional || self == .upgrade }
        var allowsDowngrade: Bool { self == .bidirectional || self == .downgrade }
    }
    /// `offset.metadata.max.bytes`.
    public var offsetMetadataMaxBytes: Int = 4096
    /// `group.max.size`: most members of a classic group (Kafka's default: no limit).
    public var maxSize: Int32 = .max
    /// `group.consumer.max.size`: most members of a consumer-protocol (KIP-848) group.
    public var consumerMaxSize: Int32 = .max
    /// `offsets.retention.minutes` (7 days), in ms: how long committed offsets outlive their
    /// group's members (classic groups), or their last commit (standalone and KIP-848 groups, for
    /// topics they no longer subscribe to).
    public var offsetsRetentionMs: Int64 = 7 * 24 * 60 * 60_000
    /// `offsets.retention.check.interval.ms`: how often expired offsets and empty groups are removed.
    public var offsetsRetentionCheckIntervalMs: Int64 = 600_000

    public init() {}
}

/// What the coordinator needs to know about topics (the broker owns them).
public struct TopicCatalog: Sendable {
    public var partitions: @Sendable (String) -> Int32?
    public var id: @Sendable (String) -> KafkaUUID?
    public var name: @Sendable (KafkaUUID) -> String?
    public var names: @Sendable () -> [String]

    public init(partitions: @escaping @Sendable (String) -> Int32?, id: @escaping @Sendable (String) -> KafkaUUID?,
                name: @escaping @Sendable (KafkaUUID) -> String?, names: @escaping @Sendable () -> [String]) {
        self.partitions = partitions
        self.id = id
        self.name = name
        self.names = names
    }
}
