import TernProtocol

/// Kafka's replication settings, with Kafka's names and defaults.
public struct ReplicationConfig: Sendable {
    /// `replica.lag.time.max.ms`: a follower that has not caught up for this long leaves the ISR.
    public var lagTimeMaxMs: Int64 = 30_000
    /// `replica.fetch.wait.max.ms`: how long a follower's fetch waits at the leader for new data.
    public var fetchWaitMaxMs: Int32 = 500
    /// `replica.fetch.min.bytes`: how much new data a follower's fetch waits for (up to
    /// `fetchWaitMaxMs`) before the leader answers it.
    public var fetchMinBytes: Int32 = 1
    /// `replica.fetch.max.bytes`: per partition in one fetch (a larger first batch still comes).
    public var fetchMaxBytes: Int32 = 1 << 20
    /// `replica.fetch.response.max.bytes`: per fetch response.
    public var fetchResponseMaxBytes: Int32 = 10 << 20
    /// `replica.fetch.backoff.ms`: pause after a failed fetch, and for a partition the leader refused.
    public var fetchBackoffMs: Int64 = 1_000
    /// `replica.high.watermark.checkpoint.interval.ms`.
    public var highWatermarkCheckpointIntervalMs: Int64 = 5_000

    public init() {}
}

/// One partition, by topic name.
public struct ReplicaKey: Hashable, Sendable, CustomStringConvertible {
    public let topic: String
    public let partition: Int32

    public init(_ topic: String, _ partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    public var description: String { "\(topic)-\(partition)" }
}
