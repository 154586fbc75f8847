import Foundation

/// Per-log settings, named after Kafka's broker/topic configs.
public struct LogConfig: Sendable, Equatable {
    /// `log.segment.bytes`: roll to a new segment when the active one would grow past this.
    public var segmentBytes: Int = 1 << 30
    /// `log.index.interval.bytes`: add an offset/time index entry after this many log bytes.
    public var indexIntervalBytes: Int = 4096
    /// `log.flush.interval.messages`: fdatasync after this many messages (Kafka's default: never,
    /// relying on replication; a single broker keeps the same default and documents it).
    public var flushIntervalMessages: Int64 = Int64.max
    /// `log.flush.interval.ms`: fdatasync when data has been unflushed this long (checked by a timer).
    public var flushIntervalMs: Int64 = Int64.max

    /// `log.roll.ms` / topic `segment.ms`: roll the active segment once it is this old.
    public var rollMs: Int64 = 7 * 24 * 3_600_000
    /// `log.retention.ms` / topic `retention.ms`: delete sealed segments whose newest record is
    /// older than this; -1 keeps them forever.
    public var retentionMs: Int64 = 7 * 24 * 3_600_000
    /// `log.retention.bytes` / topic `retention.bytes`: delete the oldest sealed segments while the
    /// log is larger than this; -1 means no limit.
    public var retentionBytes: Int64 = -1
    /// `log.cleanup.policy` / topic `cleanup.policy`.
    public var cleanupPolicy: CleanupPolicy = .delete
    /// `log.cleaner.delete.retention.ms` / topic `delete.retention.ms`: how long tombstones stay
    /// readable after their segment is cleaned.
    public var deleteRetentionMs: Int64 = 24 * 3_600_000
    /// `log.cleaner.dedupe.buffer.size`: memory for a compaction pass's key map (Kafka's default,
    /// 128 MiB; broker-wide). A log with more distinct keys is compacted in several passes.
    public var cleanerDedupeBufferBytes: Int = 128 << 20
    /// `producer.id.expiration.ms`: idempotent producers idle this long are forgotten.
    public var producerIdExpirationMs: Int64 = 24 * 3_600_000
    /// `tern.replication.fsync` (beyond Kafka): an acks=all write is acknowledged only once it is
    /// fdatasync'ed on every in-sync replica — the leader syncs it, followers sync what they copy
    /// before asking for more — so a power loss of every replica at once loses no acknowledged
    /// record. Kafka acknowledges page-cache copies.
    public var replicationFsync: Bool = false

    public struct CleanupPolicy: OptionSet, Sendable, Equatable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        public static let delete = CleanupPolicy(rawValue: 1)
        public static let compact = CleanupPolicy(rawValue: 2)

        /// Kafka's spelling: "delete", "compact", or both comma-separated.
        public init?(kafka: String) {
            var p: CleanupPolicy = []
            for part in kafka.split(separator: ",") {
                switch part.trimmingCharacters(in: .whitespaces) {
                case "delete": p.insert(.delete)
                case "compact": p.insert(.compact)
                default: return nil
                }
            }
            if p.isEmpty { return nil }
            self = p
        }
    }

    public init() {}
}
