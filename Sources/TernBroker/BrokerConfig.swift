import TernGroups
import TernLog
import TernReplication

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
    /// `socket.send.buffer.bytes` / `socket.receive.buffer.bytes` (Kafka's 100 KiB; -1: the
    /// operating system's, autotuned): the kernel buffers of each client connection. Fixed, they
    /// bound what a client that pipelines requests and never reads the replies makes the broker
    /// compute before backpressure stops it — autotuned send buffers grow to megabytes each.
    public var socketSendBufferBytes: Int = 102_400
    public var socketReceiveBufferBytes: Int = 102_400
    /// `fetch.max.bytes`: the most record bytes one fetch response carries (beyond one batch,
    /// KIP-74), whatever the request asks — Kafka's 55 MiB. It also keeps a response far below
    /// the int32 frame size a fetch naming one partition many times would otherwise pass.
    public var fetchMaxBytes: Int32 = 57_671_680
    /// `log.message.timestamp.before.max.ms` / `after.max.ms`: how far a CreateTime timestamp may
    /// lie behind or ahead of the broker's clock (Kafka's defaults: unlimited).
    public var timestampBeforeMaxMs: Int64 = .max
    public var timestampAfterMaxMs: Int64 = .max
    /// `connections.max.idle.ms`: a connection with no reads or writes this long is closed.
    public var connectionsMaxIdleMs: Int64 = 600_000
    /// `max.connections`: connections beyond this are closed as soon as they are accepted.
    public var maxConnections: Int = Int(Int32.max)
    /// `max.connections.per.ip`: the same, for the connections from one address (Kafka's default:
    /// unlimited). Whatever both say, connections never take the descriptors kept for storage.
    public var maxConnectionsPerIp: Int = Int(Int32.max)
    /// `queued.max.request.bytes`: request bytes all connections may hold at once, from a frame's
    /// size prefix until its response is written (-1: unlimited, Kafka's default). Past it,
    /// connections stop reading — as Kafka mutes them — until memory is released. A single frame
    /// larger than the budget still proceeds when nothing else is held.
    public var queuedMaxRequestBytes: Int = 256 << 20
    /// Requests one connection may have in progress before the broker stops reading from it (Kafka
    /// handles one at a time per connection; pipelining clients such as librdkafka keep up to five
    /// batches per partition in flight). It bounds what one client's unread replies can cost: at
    /// most this many responses per connection are made before the budget of
    /// `queued.max.request.bytes` stops the rest.
    public var maxInFlightRequestsPerConnection: Int = 16
    /// `tern.socket.frame.timeout.ms`: within this time a frame being received must complete or
    /// bring another 64 KiB, so a client trickling bytes cannot hold a buffer (and a connection)
    /// forever while a slow upload still gets through.
    public var frameTimeoutMs: Int64 = 30_000
    /// `tern.socket.stall.timeout.ms`: a connection whose client has taken none of its unsent
    /// responses for this long is closed if the request memory budget is half used meanwhile — so
    /// clients that pipeline requests and never read cannot keep the budget, and everyone else
    /// waiting on it, for ever.
    public var stallTimeoutMs: Int64 = 5_000
    /// Segment, index, flush and retention defaults for every partition log.
    public var log = LogConfig()
    /// `log.retention.check.interval.ms`: how often retention and the cleaner run.
    public var retentionCheckIntervalMs: Int64 = 300_000
    /// `transactional.id.expiration.ms`: a transactional id with no transaction in progress and no
    /// update for this long is forgotten (Kafka's default, 7 days), so the coordinator's map does
    /// not grow with every id ever used.
    public var transactionalIdExpirationMs: Int64 = 604_800_000
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`: how often that is checked.
    public var transactionCleanupIntervalMs: Int64 = 3_600_000
    /// Group coordinator settings (`group.*`).
    public var groups = GroupConfig()
    /// `min.insync.replicas`: with acks=all, a produce needs this many in-sync replicas (one broker:
    /// one replica, so a value above 1 refuses acks=all with NOT_ENOUGH_REPLICAS, as Kafka would).
    public var minInsyncReplicas: Int32 = 1
    /// `log.message.timestamp.type`: CreateTime keeps the producer's timestamps, LogAppendTime
    /// stamps each batch with the broker's clock.
    public var timestampType: String = "CreateTime"
    /// Every setting given explicitly (server.properties, `--set`, flags), as written: what
    /// DescribeConfigs reports as STATIC_BROKER_CONFIG.
    public var explicitSettings: [String: String] = [:]
    /// `compression.type`: broker default for topics without their own.
    public var compression: TopicCompression = .producer
    /// Cluster mode: where the cluster's metadata lives (`tern.cluster.etcd`, or `--cluster`); nil
    /// for a single broker, which needs nothing but itself.
    public var etcdEndpoint: String?
    /// `tern.cluster.name`: the etcd key prefix, so several clusters can share one etcd.
    public var clusterName: String = "tern"
    /// `broker.rack`: rack-aware replica placement.
    public var rack: String?
    /// `broker.session.timeout.ms`: a broker that has not heartbeated for this long is dead to the
    /// cluster (its etcd lease TTL, in whole seconds, at least 2).
    public var brokerSessionTimeoutMs: Int64 = 9000
    /// `default.replication.factor`: replicas of auto-created topics and CreateTopics with -1.
    public var defaultReplicationFactor: Int16 = 1
    /// `offsets.topic.replication.factor` / `transaction.state.log.replication.factor`: capped at
    /// the live broker count when the internal topics are created.
    public var offsetsTopicReplicationFactor: Int16 = 3
    public var transactionStateReplicationFactor: Int16 = 3
    /// `offsets.topic.num.partitions` / `transaction.state.log.num.partitions`: partitions of the
    /// internal topics when they are first created. Groups and transactional ids are spread over
    /// them by hash, so an existing data directory (or cluster) keeps the count it has.
    public var offsetsTopicPartitions: Int32 = 50
    public var transactionStatePartitions: Int32 = 50
    /// `auto.leader.rebalance.enable`: the controller moves leadership back to preferred replicas,
    /// checking every `leader.imbalance.check.interval.seconds`.
    public var autoLeaderRebalance: Bool = true
    public var leaderImbalanceCheckIntervalSeconds: Int64 = 300
    /// `controlled.shutdown.enable`: SIGTERM moves leaderships away before the broker exits.
    public var controlledShutdown: Bool = true
    /// `replica.*`: followers' fetching and the ISR (cluster mode).
    public var replication = ReplicationConfig()
    /// `tern.test.unsafe.ack.before.replication` — a deliberate bug, for testing checkers only:
    /// acks=all is answered after the leader's own write, as if every in-sync replica had the
    /// batch, so a leader's death loses acknowledged records. `tern verify` must find it (CI runs it
    /// both ways). Never set it anywhere else.
    public var unsafeAckBeforeReplication = false

    public init() {}

    public var advertised: (host: String, port: Int) {
        (advertisedHost ?? (host == "0.0.0.0" ? "127.0.0.1" : host), advertisedPort ?? port)
    }
}
