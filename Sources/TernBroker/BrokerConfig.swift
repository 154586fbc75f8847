import TernGroups
import TernLog

/// Broker settings, named after Kafka's `server.properties` keys where one exists.
public struct BrokerConfig: Sendable {
    /// `node.id` / `broker.id`.
    public var nodeId: Int32 = 0
    /// `listeners` host and port (PLAINTEXT://host:port).
    public var host: String = "127.0.0.1"
    public var port: Int = 9092
    /// `advertised.listeners`: what Metadata tells clients; defaults to the listener.
    public var advertisedHost: String?
    public var advertisedPort: Int?
    /// `log.dirs` (the first directory is used).
    public var logDir: String = "./data"
    /// `num.partitions`: partitions of auto-created topics and of CreateTopics with -1.
    public var numPartitions: Int32 = 1
    /// `auto.create.topics.enable`.
    public var autoCreateTopics: Bool = true
    /// `message.max.bytes`: largest record batch accepted.
    public var messageMaxBytes: Int = 1_048_588
    /// `socket.request.max.bytes`: largest request frame; bigger frames close the connection.
    public var socketRequestMaxBytes: Int = 104_857_600
    /// Segment, index, flush and retention defaults for every partition log.
    public var log = LogConfig()
    /// `log.retention.check.interval.ms`: how often retention and the cleaner run.
    public var retentionCheckIntervalMs: Int64 = 300_000
    /// Group coordinator settings (`group.*`).
    public var groups = GroupConfig()
    /// `compression.type`: broker default for topics without their own.
    public var compression: TopicCompression = .producer

    public init() {}

    public var advertised: (host: String, port: Int) {
        (advertisedHost ?? (host == "0.0.0.0" ? "127.0.0.1" : host), advertisedPort ?? port)
    }
}
