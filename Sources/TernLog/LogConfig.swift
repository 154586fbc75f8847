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

    public init() {}
}
