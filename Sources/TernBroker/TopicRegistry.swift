import Foundation
import Logging
import NIOConcurrencyHelpers
import TernLog
import TernProtocol

/// A topic and the logs of its partitions on this broker.
public final class Topic: Sendable {
    public let metadata: TopicMetadata
    /// Index = partition id; nil where this broker holds no replica (cluster mode).
    let logs: [PartitionLog?]
    /// The partitions' logs that are on this broker.
    public var partitions: [PartitionLog] { logs.compactMap { $0 } }
    /// What produced batches are checked against (topic overrides over broker defaults).
    public let batchPolicy: BatchPolicy
    /// `message.timestamp.type` is LogAppendTime: batches are stamped with the broker's clock.
    public let logAppendTime: Bool
    /// `min.insync.replicas`: acks=all needs this many in-sync replicas.
    public let minInsyncReplicas: Int32
    /// `compression.type`: the codec batches are stored with (nil: as the producer sent them).
    public let storedCodec: CompressionCodec?

    init(metadata: TopicMetadata, logs: [PartitionLog?], broker config: BrokerConfig) {
        precondition(logs.count == Int(metadata.partitions), "one slot per partition")
        self.metadata = metadata
        self.logs = logs
        let configs = metadata.configs
        let cleanup = configs["cleanup.policy"].flatMap(LogConfig.CleanupPolicy.init(kafka:)) ?? config.log.cleanupPolicy
        let logAppendTime = (configs["message.timestamp.type"] ?? config.timestampType) == "LogAppendTime"
        var policy = BatchPolicy(
            maxMessageBytes: configs["max.message.bytes"].flatMap(Int.init) ?? config.messageMaxBytes,
            compacted: cleanup.contains(.compact),
            timestampBeforeMaxMs: configs["message.timestamp.before.max.ms"].flatMap(Int64.init) ?? config.timestampBeforeMaxMs,
            timestampAfterMaxMs: configs["message.timestamp.after.max.ms"].flatMap(Int64.init) ?? config.timestampAfterMaxMs)
        policy.logAppendTime = logAppendTime
        self.batchPolicy = policy
        self.logAppendTime = logAppendTime
        self.minInsyncReplicas = configs["min.insync.replicas"].flatMap(Int32.init) ?? config.minInsyncReplicas
        self.storedCodec = (configs["compression.type"].flatMap(TopicCompression.init(rawValue:)) ?? config.compression).codec
    }

    public func partition(_ index: Int32) -> PartitionLog? {
        index >= 0 && Int(index) < logs.count ? logs[Int(index)] : nil
    }
}

enum TopicRegistryError: Error {
    /// A topic changed while `adopt` opened its logs (it is applied again with the next image).
    case changedMeanwhile(String)
}

/// The single owner of topic metadata on a broker: creates, opens and deletes topics and their
/// logs, and persists the topic list. Readers get immutable `Topic` snapshots. Sendable: the topic
/// map and the store are touched only under `lock`.
public final class TopicRegistry: @unchecked Sendable {
    private let lock = NIOLock()
    /// Changed only through `set(_:_:)`, which keeps `topicNamesById` in step.
    private var topics: [String: Topic] = [:]
    /// Topic id → name (Fetch v13+, Metadata v12+ and DeleteTopics v6 name topics by id).
    private var topicNamesById: [KafkaUUID: String] = [:]

    /// Adds, replaces (same id) or removes (nil) a topic. Lock held (or in init).
    private func set(_ name: String, _ topic: Topic?) {
        if let old = topics[name] { topicNamesById[old.metadata.topicId] = nil }
        topics[name] = topic
        if let topic { topicNamesById[topic.metadata.topicId] = name }
        assert(topics.count == topicNamesById.count, "every topic has one id")
    }
    private let store: TopicStore
    /// Held from start to exit: no second broker process on this directory.
    private let directoryLock: DataDirectoryLock
    /// The settings topics default to: the static ones with dynamic broker configs applied
    /// (`reconfigure`). A lock of its own, read with `lock` held (creating a topic) and without.
    private let defaults: NIOLockedValueBox<BrokerConfig>
    private var config: BrokerConfig { defaults.withLockedValue { $0 } }
    /// The broker settings in effect (static and dynamic).
    public var brokerConfig: BrokerConfig { config }
    let io: DiskIO
    private let logger: Logger
    public let clusterId: String

    public init(config: BrokerConfig, logger: Logger) throws {
        self.defaults = NIOLockedValueBox(config)
        self.logger = logger
        self.io = DiskIO(logger: logger)
        try FileManager.default.createDirectory(atPath: config.logDir, withIntermediateDirectories: true)
        self.directoryLock = try DataDirectoryLock(directory: config.logDir)
        self.store = TopicStore(directory: config.logDir)
        let contents = try store.load(warn: { logger.critical("\($0)") })
        self.clusterId = contents?.clusterId ?? Self.newClusterId()
        for meta in contents?.topics ?? [] {
            set(meta.name, try openTopic(meta, creating: false))
        }
        if contents == nil { try persist() }
        logger.info(
            "topics loaded",
            metadata: ["count": "\(topics.count)", "io_uring": "\(io.usesIOUring)", "dir": "\(config.logDir)"])
    }

    private static func newClusterId() -> String {
        // Kafka cluster ids are 22-character base64url UUIDs; any stable string works for clients.
        String(KafkaUUID.random().description.prefix(22))
    }

    private func openTopic(_ meta: TopicMetadata, creating: Bool) throws -> Topic {
        let logConfig = Self.logConfig(base: config.log, overrides: meta.configs)
        var logs: [PartitionLog?] = []
        logs.reserveCapacity(Int(meta.partitions))
        do {
            for p in 0..<meta.partitions {
                logs.append(meta.hosts(p) ? try openLog(meta.name, p, logConfig) : nil)
            }
        } catch {
            // Leave nothing behind: no open descriptors, no directories of a topic that does not exist.
            logger.error("opening topic failed", metadata: ["topic": "\(meta.name)", "partitions": "\(logs.count)/\(meta.partitions)", "error": "\(error)"])
            if creating { logs.forEach { $0?.delete() } } else { logs.forEach { $0?.close() } }
            throw error
        }
        return Topic(metadata: meta, logs: logs, broker: config)
    }

    private func openLog(_ topic: String, _ partition: Int32, _ logConfig: LogConfig) throws -> PartitionLog {
        try PartitionLog(directory: "\(config.logDir)/\(topic)-\(partition)", config: logConfig, io: io, logger: logger)
    }

    /// Topic configs that change how the log behaves, over the broker defaults.
    static func logConfig(base: LogConfig, overrides: [String: String]) -> LogConfig {
        var c = base
        if let v = overrides["segment.bytes"].flatMap(Int.init) { c.segmentBytes = v }
        if let v = overrides["segment.ms"].flatMap(Int64.init) { c.rollMs = v }
        if let v = overrides["index.interval.bytes"].flatMap(Int.init) { c.indexIntervalBytes = v }
        if let v = overrides["flush.messages"].flatMap(Int64.init) { c.flushIntervalMessages = v }
        if let v = overrides["tern.replication.fsync"].flatMap(Bool.init) { c.replicationFsync = v }
        if let v = overrides["flush.ms"].flatMap(Int64.init) { c.flushIntervalMs = v }
        if let v = overrides["retention.ms"].flatMap(Int64.init) { c.retentionMs = v }
        if let v = overrides["retention.bytes"].flatMap(Int64.init) { c.retentionBytes = v }
        if let v = overrides["delete.retention.ms"].flatMap(Int64.init) { c.deleteRetentionMs = v }
        if let v = overrides["cleanup.policy"].flatMap(LogConfig.CleanupPolicy.init(kafka:)) { c.cleanupPolicy = v }
        return c
    }

    /// Topic configs as Kafka checks them (`TopicConfigCatalog`): unknown keys and bad values are
    /// refused with INVALID_CONFIG and a message naming the key.
    static func validate(configs: [String: String]) throws {
        try TopicConfigCatalog.validate(configs)
    }

    private func persist() throws {
        try store.save(TopicStore.Contents(clusterId: clusterId, topics: topics.values.map(\.metadata).sorted { $0.name < $1.name }))
    }

    public func topic(_ name: String) -> Topic? { lock.withLock { topics[name] } }

    public func topic(id: KafkaUUID) -> Topic? { lock.withLock { topicNamesById[id].flatMap { topics[$0] } } }

    public var allTopics: [Topic] { lock.withLock { topics.values.sorted { $0.metadata.name < $1.metadata.name } } }

    /// Creates a topic, or with `validateOnly` only checks that it could be created.
    @discardableResult
    public func createTopic(name: String, partitions: Int32, configs: [String: String] = [:], validateOnly: Bool = false) throws -> TopicMetadata {
        guard TopicName.isValid(name) else { throw KafkaError.invalidTopic }
        guard partitions > 0, partitions <= 100_000 else { throw KafkaError.invalidPartitions }
        try Self.validate(configs: configs)
        try FileDescriptorBudget.check(partitions: Int(partitions))
        return try lock.withLock {
            guard topics[name] == nil else { throw KafkaError.topicAlreadyExists }
            if let other = TopicName.collision(of: name, among: topics.keys) {
                logger.warning("topic name collides with an existing one", metadata: ["topic": "\(name)", "existing": "\(other)"])
                throw KafkaError.invalidTopic
            }
            let meta = TopicMetadata(name: name, id: KafkaUUID.random().description, partitions: partitions, configs: configs)
            if validateOnly { return meta }
            let topic = try openTopic(meta, creating: true)
            set(name, topic)
            try persist()
            logger.info("created topic", metadata: ["topic": "\(name)", "partitions": "\(partitions)"])
            return meta
        }
    }

    /// CreatePartitions: grows a topic to `count` partitions (never shrinks it), opening the new
    /// logs before the metadata names them; a failure leaves neither logs nor metadata behind.
    public func addPartitions(_ name: String, count: Int32, validateOnly: Bool = false) throws {
        guard let current = topic(name)?.metadata.partitions else { throw KafkaError.unknownTopicOrPartition }
        if count > current { try FileDescriptorBudget.check(partitions: Int(count - current)) }
        try lock.withLock {
            guard let topic = topics[name] else { throw KafkaError.unknownTopicOrPartition }
            let have = topic.metadata.partitions
            guard count != have else { throw DescribedKafkaError(.invalidPartitions, "Topic already has \(have) partition(s).") }
            guard count > have else {
                throw DescribedKafkaError(.invalidPartitions, "The topic \(name) currently has \(have) partition(s); \(count) would not be an increase.")
            }
            guard count <= 100_000 else { throw DescribedKafkaError(.invalidPartitions, "A topic may have at most 100000 partitions, not \(count).") }
            if validateOnly { return }
            var meta = topic.metadata
            meta.partitions = count
            let logConfig = Self.logConfig(base: config.log, overrides: meta.configs)
            var added: [PartitionLog] = []
            do {
                for p in have..<count {
                    added.append(try openLog(name, p, logConfig))
                }
                set(name, Topic(metadata: meta, logs: topic.logs + added, broker: config))
                try persist()
            } catch {
                set(name, topic)
                added.forEach { $0.delete() }
                throw error
            }
            logger.info("added partitions", metadata: ["topic": "\(name)", "partitions": "\(have) -> \(count)"])
        }
    }

    /// Replaces a topic's overrides (keys absent from `configs` fall back to the broker's values).
    public func replaceConfigs(_ name: String, with configs: [String: String], validateOnly: Bool = false) throws {
        try Self.validate(configs: configs)
        try lock.withLock {
            guard let topic = topics[name] else { throw KafkaError.unknownTopicOrPartition }
            if validateOnly { return }
            var meta = topic.metadata
            meta.configs = configs
            set(name, Topic(metadata: meta, logs: topic.logs, broker: config))
            try persist()
            let logConfig = Self.logConfig(base: config.log, overrides: configs)
            topic.partitions.forEach { $0.update(config: logConfig) }
            logger.info("altered topic configs", metadata: ["topic": "\(name)", "configs": "\(configs)"])
        }
    }

    /// Makes `config` the defaults of every topic without a value of its own (a dynamic broker
    /// config changed): each `Topic` snapshot is rebuilt and each log takes its new `LogConfig`.
    /// No disk work.
    public func reconfigure(broker config: BrokerConfig) {
        defaults.withLockedValue { $0 = config }
        lock.withLock {
            for (name, topic) in topics {
                set(name, Topic(metadata: topic.metadata, logs: topic.logs, broker: config))
                let logConfig = Self.logConfig(base: config.log, overrides: topic.metadata.configs)
                topic.partitions.forEach { $0.update(config: logConfig) }
            }
        }
    }

    public func deleteTopic(_ name: String) throws {
        try lock.withLock {
            guard let topic = topics[name] else { throw KafkaError.unknownTopicOrPartition }
            set(name, nil)
            try persist()
            topic.partitions.forEach { $0.delete() }
            logger.info("deleted topic", metadata: ["topic": "\(name)"])
        }
    }

    /// Cluster mode: makes the local topic what the cluster's metadata says — its id, partition
    /// count and configs, with logs for exactly the partitions in `meta.hosted`. A local topic with
    /// another id is a topic deleted (and perhaps re-created) while this broker was away: its logs
    /// go — except for internal topics, whose data is the coordinators' and is kept under the
    /// cluster's id. A partition no longer hosted here loses its log. Returns whether anything changed.
    ///
    /// New logs are opened outside the registry's lock (request handlers on the event loops take
    /// it on every request; opening a log creates files and may recover them). In cluster mode the
    /// apply thread is the registry's only writer, so what was read before opening still holds
    /// when the topic is swapped in under the lock — checked, and retried with the next image if not.
    @discardableResult
    public func adopt(_ meta: TopicMetadata, keepingData: Bool = false) throws -> Bool {
        var current = topic(meta.name)
        if let old = current, old.metadata.id != meta.id, !keepingData {
            logger.warning("deleting a local topic the cluster no longer has", metadata: ["topic": "\(meta.name)", "localId": "\(old.metadata.id)", "clusterId": "\(meta.id)"])
            try deleteTopic(meta.name)
            current = nil
        }
        if let current, current.metadata == meta { return false }
        let logConfig = Self.logConfig(base: config.log, overrides: meta.configs)
        var logs: [PartitionLog?] = []
        var opened: [PartitionLog] = []
        var dropped: [PartitionLog] = []
        do {
            for p in 0..<meta.partitions {
                let existing = current?.partition(p)
                if meta.hosts(p) {
                    if let existing {
                        logs.append(existing)
                    } else {
                        let log = try openLog(meta.name, p, logConfig)
                        opened.append(log)
                        logs.append(log)
                    }
                } else {
                    if let existing { dropped.append(existing) }
                    logs.append(nil)
                }
            }
            // Partitions beyond the new count cannot exist (counts only grow); keep them safe anyway.
            dropped += current?.logs.dropFirst(Int(meta.partitions)).compactMap { $0 } ?? []
            try lock.withLock {
                guard topics[meta.name] === current else { throw TopicRegistryError.changedMeanwhile(meta.name) }
                set(meta.name, Topic(metadata: meta, logs: logs, broker: config))
                try persist()
            }
        } catch {
            opened.forEach { $0.delete() }
            throw error
        }
        if let current, current.metadata.configs != meta.configs { current.partitions.forEach { $0.update(config: logConfig) } }
        dropped.forEach { $0.delete() }
        if current == nil {
            logger.info("hosting topic", metadata: ["topic": "\(meta.name)", "partitions": "\(meta.hosted.map { "\($0)" } ?? "all")"])
        }
        return true
    }

    /// Applies retention to every log (the `log.retention.check.interval.ms` task).
    public func enforceRetention() {
        for topic in allTopics {
            for log in topic.partitions {
                do { try log.enforceRetention() } catch { logger.error("retention failed: \(error)") }
            }
        }
    }

    /// Runs the cleaner over every log whose topic has `cleanup.policy` including compact.
    public func compactLogs() {
        for topic in allTopics {
            for log in topic.partitions {
                do { try log.compact() } catch { logger.error("compaction failed: \(error)") }
            }
        }
    }

    /// Flushes logs whose `log.flush.interval.ms` has passed.
    public func flushDueLogs() {
        for topic in allTopics {
            for log in topic.partitions {
                do { try log.flushIfDue() } catch { logger.error("scheduled flush failed: \(error)") }
            }
        }
    }

    /// Flushes and closes every log (graceful shutdown).
    public func close() {
        for topic in allTopics { topic.partitions.forEach { $0.close() } }
        directoryLock.release()
    }
}
