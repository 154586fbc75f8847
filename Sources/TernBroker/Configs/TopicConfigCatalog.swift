import TernLog

/// One Kafka topic config: its type and check, the broker settings that give its default (with
/// Kafka's own default for each), and whether Tern applies it or accepts it for compatibility
/// only — with the reason, reported in DescribeConfigs' documentation.
struct TopicConfigDefinition: Sendable {
    enum Effect: Sendable {
        case applied
        case accepted(reason: String)
    }

    let name: String
    let type: ConfigType
    let check: ConfigCheck
    /// Broker settings that supply the default, highest priority first (Kafka's synonyms), each
    /// with the default Kafka documents for it (nil: none of its own).
    let brokerSynonyms: [(name: String, kafkaDefault: String?)]
    /// The value a topic without an override gets from this broker.
    let brokerValue: @Sendable (BrokerConfig) -> String
    let effect: Effect
    let about: String

    /// What DescribeConfigs sends as documentation: Kafka's meaning, and for configs Tern only
    /// accepts, why.
    var documentation: String {
        switch effect {
        case .applied: return about
        case .accepted(let reason): return "\(about) Tern accepts this setting but does not apply it: \(reason)"
        }
    }
}

/// Every topic config a Kafka 3.9/4.x broker accepts (Kafka's `LogConfig` definitions and
/// `ServerTopicConfigSynonyms`), each applied or accepted with a stated reason. CreateTopics,
/// AlterConfigs, IncrementalAlterConfigs and DescribeConfigs all answer from this one table.
enum TopicConfigCatalog {
    static let maxLong = "\(Int64.max)"

    static let all: [TopicConfigDefinition] = [
        .init(name: "cleanup.policy", type: .list, check: .list(of: ["compact", "delete"], allowEmpty: true),
              brokerSynonyms: [("log.cleanup.policy", "delete")],
              brokerValue: { c in [c.log.cleanupPolicy.contains(.delete) ? "delete" : nil, c.log.cleanupPolicy.contains(.compact) ? "compact" : nil].compactMap { $0 }.joined(separator: ",") },
              effect: .applied, about: "delete: old segments are removed by retention; compact: only the newest record of each key is kept."),
        .init(name: "compression.type", type: .string, check: .oneOf(TopicCompression.allCases.map(\.rawValue)),
              brokerSynonyms: [("compression.type", "producer")], brokerValue: { $0.compression.rawValue },
              effect: .applied, about: "The codec batches are stored with; producer keeps the producer's, any other value re-encodes batches sent with another codec."),
        .init(name: "compression.gzip.level", type: .int, check: ConfigCheck { v in v == "-1" ? nil : ConfigCheck.int(atLeast: 1, atMost: 9).problem(v) },
              brokerSynonyms: [("compression.gzip.level", "-1")], brokerValue: { _ in "-1" },
              effect: .accepted(reason: "recompression uses zlib's default level."), about: "gzip level used when the broker recompresses."),
        .init(name: "compression.lz4.level", type: .int, check: .int(atLeast: 1, atMost: 17),
              brokerSynonyms: [("compression.lz4.level", "9")], brokerValue: { _ in "9" },
              effect: .accepted(reason: "recompression uses LZ4's fast default level."), about: "LZ4 level used when the broker recompresses."),
        .init(name: "compression.zstd.level", type: .int, check: .int(atLeast: -131072, atMost: 22),
              brokerSynonyms: [("compression.zstd.level", "3")], brokerValue: { _ in "3" },
              effect: .accepted(reason: "recompression uses zstd's default level (3)."), about: "zstd level used when the broker recompresses."),
        .init(name: "delete.retention.ms", type: .long, check: .long(atLeast: 0),
              brokerSynonyms: [("log.cleaner.delete.retention.ms", "86400000")], brokerValue: { "\($0.log.deleteRetentionMs)" },
              effect: .applied, about: "How long tombstones stay readable on a compacted topic."),
        .init(name: "file.delete.delay.ms", type: .long, check: .long(atLeast: 0),
              brokerSynonyms: [("log.segment.delete.delay.ms", "60000")], brokerValue: { _ in "60000" },
              effect: .accepted(reason: "deleted segment files are unlinked at once; readers still sending from one keep their own descriptor."),
              about: "How long a deleted segment's files are kept before removal."),
        .init(name: "flush.messages", type: .long, check: .long(atLeast: 1),
              brokerSynonyms: [("log.flush.interval.messages", maxLong)], brokerValue: { "\($0.log.flushIntervalMessages)" },
              effect: .applied, about: "fdatasync after this many messages."),
        .init(name: "flush.ms", type: .long, check: .long(atLeast: 0),
              brokerSynonyms: [("log.flush.interval.ms", nil), ("log.flush.scheduler.interval.ms", maxLong)], brokerValue: { "\($0.log.flushIntervalMs)" },
              effect: .applied, about: "fdatasync data unflushed for this long."),
        .init(name: "follower.replication.throttled.replicas", type: .list, check: .any,
              brokerSynonyms: [], brokerValue: { _ in "" },
              effect: .accepted(reason: "a single broker has no followers to throttle."), about: "Replicas whose follower fetches are throttled."),
        .init(name: "index.interval.bytes", type: .int, check: .int(atLeast: 0),
              brokerSynonyms: [("log.index.interval.bytes", "4096")], brokerValue: { "\($0.log.indexIntervalBytes)" },
              effect: .applied, about: "Bytes of log between offset index entries."),
        .init(name: "leader.replication.throttled.replicas", type: .list, check: .any,
              brokerSynonyms: [], brokerValue: { _ in "" },
              effect: .accepted(reason: "a single broker has no followers to throttle."), about: "Replicas whose leader-side replication is throttled."),
        .init(name: "local.retention.bytes", type: .long, check: .long(atLeast: -2),
              brokerSynonyms: [("log.local.retention.bytes", "-2")], brokerValue: { _ in "-2" },
              effect: .accepted(reason: "there is no tiered storage: all data is local and retention.bytes applies."),
              about: "Local retention size when tiered storage is on (-2: retention.bytes)."),
        .init(name: "local.retention.ms", type: .long, check: .long(atLeast: -2),
              brokerSynonyms: [("log.local.retention.ms", "-2")], brokerValue: { _ in "-2" },
              effect: .accepted(reason: "there is no tiered storage: all data is local and retention.ms applies."),
              about: "Local retention time when tiered storage is on (-2: retention.ms)."),
        .init(name: "max.compaction.lag.ms", type: .long, check: .long(atLeast: 1),
              brokerSynonyms: [("log.cleaner.max.compaction.lag.ms", maxLong)], brokerValue: { _ in maxLong },
              effect: .accepted(reason: "every compacted log is cleaned on each log.retention.check.interval.ms pass, which bounds the lag."),
              about: "Longest a record may stay uncompacted."),
        .init(name: "max.message.bytes", type: .int, check: .int(atLeast: 0),
              brokerSynonyms: [("message.max.bytes", "1048588")], brokerValue: { "\($0.messageMaxBytes)" },
              effect: .applied, about: "Largest record batch accepted."),
        .init(name: "message.downconversion.enable", type: .boolean, check: .boolean,
              brokerSynonyms: [("log.message.downconversion.enable", "true")], brokerValue: { _ in "true" },
              effect: .accepted(reason: "no fetch version that would need down-conversion (Fetch v0-3) is served."),
              about: "Whether old fetch versions get batches down-converted."),
        .init(name: "message.format.version", type: .string, check: .any,
              brokerSynonyms: [("log.message.format.version", "3.0-IV1")], brokerValue: { _ in "3.0-IV1" },
              effect: .accepted(reason: "batches are always stored as magic v2 (deprecated in Kafka 3, removed in 4)."),
              about: "On-disk message format version."),
        .init(name: "message.timestamp.after.max.ms", type: .long, check: .long(atLeast: 0),
              brokerSynonyms: [("log.message.timestamp.after.max.ms", maxLong)], brokerValue: { "\($0.timestampAfterMaxMs)" },
              effect: .applied, about: "How far ahead of the broker's clock a CreateTime timestamp may be."),
        .init(name: "message.timestamp.before.max.ms", type: .long, check: .long(atLeast: 0),
              brokerSynonyms: [("log.message.timestamp.before.max.ms", maxLong)], brokerValue: { "\($0.timestampBeforeMaxMs)" },
              effect: .applied, about: "How far behind the broker's clock a CreateTime timestamp may be."),
        .init(name: "message.timestamp.difference.max.ms", type: .long, check: .long(atLeast: 0),
              brokerSynonyms: [("log.message.timestamp.difference.max.ms", maxLong)], brokerValue: { _ in maxLong },
              effect: .accepted(reason: "deprecated since Kafka 3.6 (removed in 4.0); set message.timestamp.before.max.ms and message.timestamp.after.max.ms."),
              about: "Largest difference between a CreateTime timestamp and the broker's clock."),
        .init(name: "message.timestamp.type", type: .string, check: .oneOf(["CreateTime", "LogAppendTime"]),
              brokerSynonyms: [("log.message.timestamp.type", "CreateTime")], brokerValue: { $0.timestampType },
              effect: .applied, about: "CreateTime keeps the producer's timestamps; LogAppendTime stamps each batch with the broker's clock."),
        .init(name: "min.cleanable.dirty.ratio", type: .double, check: .double(between: 0, and: 1),
              brokerSynonyms: [("log.cleaner.min.cleanable.ratio", "0.5")], brokerValue: { _ in "0.5" },
              effect: .accepted(reason: "every compacted log is cleaned on each pass, whatever its dirty ratio."),
              about: "Smallest share of uncleaned log that makes a log eligible for cleaning."),
        .init(name: "min.compaction.lag.ms", type: .long, check: .long(atLeast: 0),
              brokerSynonyms: [("log.cleaner.min.compaction.lag.ms", "0")], brokerValue: { _ in "0" },
              effect: .accepted(reason: "the active segment is never cleaned, which is the only lag applied."),
              about: "Shortest time a record stays uncompacted."),
        .init(name: "min.insync.replicas", type: .int, check: .int(atLeast: 1),
              brokerSynonyms: [("min.insync.replicas", "1")], brokerValue: { "\($0.minInsyncReplicas)" },
              effect: .applied, about: "Replicas that must have a write for acks=all to succeed (NOT_ENOUGH_REPLICAS otherwise)."),
        .init(name: "preallocate", type: .boolean, check: .boolean,
              brokerSynonyms: [("log.preallocate", "false")], brokerValue: { _ in "false" },
              effect: .accepted(reason: "segment files grow as written; nothing is preallocated."), about: "Preallocate segment files."),
        .init(name: "remote.log.copy.disable", type: .boolean, check: .boolean,
              brokerSynonyms: [], brokerValue: { _ in "false" },
              effect: .accepted(reason: "there is no tiered storage."), about: "Stop copying segments to tiered storage."),
        .init(name: "remote.log.delete.on.disable", type: .boolean, check: .boolean,
              brokerSynonyms: [], brokerValue: { _ in "false" },
              effect: .accepted(reason: "there is no tiered storage."), about: "Delete tiered data when tiering is turned off."),
        .init(name: "remote.storage.enable", type: .boolean,
              check: ConfigCheck { v in
                  if let problem = ConfigCheck.boolean.problem(v) { return problem }
                  return v.lowercased() == "true" ? "Tiered Storage functionality is disabled in the broker" : nil
              },
              brokerSynonyms: [], brokerValue: { _ in "false" },
              effect: .applied, about: "Tiered storage for this topic (refused: the broker has none)."),
        .init(name: "retention.bytes", type: .long, check: .anyLong,
              brokerSynonyms: [("log.retention.bytes", "-1")], brokerValue: { "\($0.log.retentionBytes)" },
              effect: .applied, about: "Delete old segments while the partition is larger than this (-1: no limit)."),
        .init(name: "retention.ms", type: .long, check: .long(atLeast: -1),
              brokerSynonyms: [("log.retention.ms", nil), ("log.retention.minutes", nil), ("log.retention.hours", "168")],
              brokerValue: { "\($0.log.retentionMs)" },
              effect: .applied, about: "Delete segments whose newest record is older than this (-1: keep)."),
        .init(name: "segment.bytes", type: .int, check: .int(atLeast: 14),
              brokerSynonyms: [("log.segment.bytes", "1073741824")], brokerValue: { "\($0.log.segmentBytes)" },
              effect: .applied, about: "Roll a new segment past this size."),
        .init(name: "segment.index.bytes", type: .int, check: .int(atLeast: 4),
              brokerSynonyms: [("log.index.size.max.bytes", "10485760")], brokerValue: { _ in "10485760" },
              effect: .accepted(reason: "index entries are kept in memory and written at roll, never preallocated, so no size cap is needed."),
              about: "Largest offset index file."),
        .init(name: "segment.jitter.ms", type: .long, check: .long(atLeast: 0),
              brokerSynonyms: [("log.roll.jitter.ms", nil), ("log.roll.jitter.hours", "0")], brokerValue: { _ in "0" },
              effect: .accepted(reason: "segments roll at segment.ms without jitter."), about: "Random jitter subtracted from segment.ms."),
        .init(name: "segment.ms", type: .long, check: .long(atLeast: 1),
              brokerSynonyms: [("log.roll.ms", nil), ("log.roll.hours", "168")], brokerValue: { "\($0.log.rollMs)" },
              effect: .applied, about: "Roll the active segment once its first record is this old."),
        .init(name: "tern.replication.fsync", type: .boolean, check: .boolean,
              brokerSynonyms: [("tern.replication.fsync", "false")], brokerValue: { "\($0.log.replicationFsync)" },
              effect: .applied, about: "acks=all waits until every in-sync replica has fdatasync'ed the write (beyond Kafka)."),
        .init(name: "unclean.leader.election.enable", type: .boolean, check: .boolean,
              brokerSynonyms: [("unclean.leader.election.enable", "false")], brokerValue: { _ in "false" },
              effect: .accepted(reason: "a single broker has no other replica to elect."), about: "Allow an out-of-sync replica to become leader."),
    ]

    static let byName: [String: TopicConfigDefinition] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })

    /// Checks every override; the error names the key and says why, as Kafka's does.
    static func validate(_ configs: [String: String]) throws {
        for (key, value) in configs.sorted(by: { $0.key < $1.key }) {
            guard let definition = byName[key] else {
                throw DescribedKafkaError(.invalidConfig, "Unknown topic config name: \(key)")
            }
            if let problem = definition.check.problem(value) {
                throw DescribedKafkaError(.invalidConfig, "Invalid value \(value) for configuration \(key): \(problem)")
            }
        }
    }

    /// A topic's value for `name`: its override, else the broker's.
    static func value(_ name: String, overrides: [String: String], broker: BrokerConfig) -> String? {
        overrides[name] ?? byName[name]?.brokerValue(broker)
    }
}
