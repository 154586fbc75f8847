import Foundation
import TernGroups
import TernLog

/// Reads Kafka-style `server.properties` settings into a `BrokerConfig`.
public enum BrokerProperties {
    public enum ParseError: Error, CustomStringConvertible {
        case badLine(Int, String)
        case badValue(String, String)
        case unknownKey(String)
        case unsupportedListener(String, String)
        case severalListeners(String, String)

        public var description: String {
            switch self {
            case .badLine(let n, let l): return "line \(n): cannot parse '\(l)'"
            case .badValue(let k, let v): return "\(k): invalid value '\(v)'"
            case .unknownKey(let k): return "unknown setting '\(k)'"
            case .unsupportedListener(let k, let scheme):
                return "\(k): \(scheme) listeners are not supported yet (TLS and SASL are not implemented); use PLAINTEXT://host:port"
            case .severalListeners(let k, let v):
                return "\(k): Tern serves one listener, '\(v)' names several; give one PLAINTEXT://host:port"
            }
        }
    }

    /// Parses `key=value` lines; `#` and `!` start comments.
    public static func parse(_ text: String) throws -> [(String, String)] {
        var out: [(String, String)] = []
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix("!") { continue }
            guard let eq = line.firstIndex(where: { $0 == "=" || $0 == ":" }) else { throw ParseError.badLine(n + 1, line) }
            out.append((line[..<eq].trimmingCharacters(in: .whitespaces), line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)))
        }
        return out
    }

    /// Applies one setting. Settings Tern does not know are refused rather than silently ignored.
    public static func apply(_ key: String, _ value: String, to config: inout BrokerConfig) throws {
        try applyValue(key, value, to: &config)
        config.explicitSettings[key] = value
    }

    /// Applies one setting's value without recording it as given explicitly (dynamic configs).
    static func applyValue(_ key: String, _ value: String, to config: inout BrokerConfig) throws {
        func int<T: FixedWidthInteger>(_: T.Type) throws -> T {
            guard let v = T(value), v >= 0 else { throw ParseError.badValue(key, value) }
            return v
        }
        func positive<T: FixedWidthInteger>(_: T.Type) throws -> T {
            let v = try int(T.self)
            guard v > 0 else { throw ParseError.badValue(key, value) }
            return v
        }
        func bool() throws -> Bool {
            guard let b = Bool(value.lowercased()) else { throw ParseError.badValue(key, value) }
            return b
        }
        // -1 disables a retention limit; otherwise a count of `unit`s.
        func retention(_ unit: Int64 = 1) throws -> Int64 {
            guard let v = Int64(value), v >= -1 else { throw ParseError.badValue(key, value) }
            return v == -1 ? -1 : try scaled(v, unit)
        }
        // Hours and minutes in milliseconds. A client sets these too (dynamic broker configs): a
        // product past Int64 is refused, never a trap.
        func scaled(_ v: Int64, _ unit: Int64) throws -> Int64 {
            let (ms, overflow) = v.multipliedReportingOverflow(by: unit)
            guard !overflow else { throw ParseError.badValue(key, value) }
            return ms
        }
        // An interval that becomes a timer: in nanoseconds it must fit an Int64 (NIO's TimeAmount
        // traps past it), so at most 2^42 ms (139 years).
        func timerMs() throws -> Int64 {
            let v = try positive(Int64.self)
            guard v <= 1 << 42 else { throw ParseError.badValue(key, value) }
            return v
        }
        // A kernel socket buffer: -1 leaves the operating system's; otherwise at least 1 KiB and
        // within an Int32 (setsockopt takes an int).
        func socketBuffer() throws -> Int {
            guard let v = Int32(value), v == -1 || v >= 1024 else { throw ParseError.badValue(key, value) }
            return Int(v)
        }
        switch key {
        case "node.id", "broker.id": config.nodeId = try int(Int32.self)
        case "log.dirs", "log.dir":
            guard let first = value.split(separator: ",").first else { throw ParseError.badValue(key, value) }
            config.logDir = String(first)
        case "listeners":
            let (host, port) = try listener(key, value)
            config.host = host
            config.port = port
        case "advertised.listeners":
            let (host, port) = try listener(key, value)
            config.advertisedHost = host
            config.advertisedPort = port
        case "num.partitions":
            config.numPartitions = try int(Int32.self)
            guard config.numPartitions > 0 else { throw ParseError.badValue(key, value) }
        case "auto.create.topics.enable":
            guard let b = Bool(value.lowercased()) else { throw ParseError.badValue(key, value) }
            config.autoCreateTopics = b
        case "log.segment.bytes":
            // Kafka: an int, at least the 14-byte overhead of the smallest legacy record.
            config.log.segmentBytes = Int(try int(Int32.self))
            guard config.log.segmentBytes >= 14 else { throw ParseError.badValue(key, value) }
        case "log.index.interval.bytes": config.log.indexIntervalBytes = try int(Int.self)
        case "log.flush.interval.messages":
            config.log.flushIntervalMessages = try int(Int64.self)
            guard config.log.flushIntervalMessages > 0 else { throw ParseError.badValue(key, value) }
        case "log.flush.interval.ms": config.log.flushIntervalMs = try int(Int64.self)
        case "tern.replication.fsync": config.log.replicationFsync = try bool()
        case "tern.test.unsafe.ack.before.replication": config.unsafeAckBeforeReplication = try bool()
        case "log.roll.ms": config.log.rollMs = try positive(Int64.self)
        case "log.roll.hours": config.log.rollMs = try scaled(try positive(Int64.self), 3_600_000)
        case "log.retention.ms": config.log.retentionMs = try retention()
        case "log.retention.minutes": config.log.retentionMs = try retention(60_000)
        case "log.retention.hours": config.log.retentionMs = try retention(3_600_000)
        case "log.retention.bytes": config.log.retentionBytes = try retention()
        case "log.retention.check.interval.ms": config.retentionCheckIntervalMs = try positive(Int64.self)
        case "log.cleanup.policy":
            guard let p = LogConfig.CleanupPolicy(kafka: value) else { throw ParseError.badValue(key, value) }
            config.log.cleanupPolicy = p
        case "log.cleaner.delete.retention.ms": config.log.deleteRetentionMs = try int(Int64.self)
        case "log.cleaner.dedupe.buffer.size": config.log.cleanerDedupeBufferBytes = Int(try positive(Int64.self))
        case "producer.id.expiration.ms": config.log.producerIdExpirationMs = try positive(Int64.self)
        case "compression.type":
            guard let c = TopicCompression(rawValue: value) else { throw ParseError.badValue(key, value) }
            config.compression = c
        case "group.initial.rebalance.delay.ms": config.groups.initialRebalanceDelayMs = try int(Int64.self)
        case "group.consumer.heartbeat.interval.ms": config.groups.consumerHeartbeatIntervalMs = try positive(Int32.self)
        case "group.consumer.session.timeout.ms": config.groups.consumerSessionTimeoutMs = try positive(Int32.self)
        case "group.min.session.timeout.ms": config.groups.minSessionTimeoutMs = try int(Int32.self)
        case "group.max.session.timeout.ms": config.groups.maxSessionTimeoutMs = try int(Int32.self)
        case "group.max.size": config.groups.maxSize = try positive(Int32.self)
        case "group.consumer.max.size": config.groups.consumerMaxSize = try positive(Int32.self)
        case "offsets.retention.minutes": config.groups.offsetsRetentionMs = try scaled(try positive(Int64.self), 60_000)
        case "offsets.retention.check.interval.ms": config.groups.offsetsRetentionCheckIntervalMs = try timerMs()
        case "message.max.bytes": config.messageMaxBytes = try int(Int.self)
        case "socket.request.max.bytes": config.socketRequestMaxBytes = try int(Int.self)
        case "socket.send.buffer.bytes": config.socketSendBufferBytes = try socketBuffer()
        case "socket.receive.buffer.bytes": config.socketReceiveBufferBytes = try socketBuffer()
        case "log.message.timestamp.before.max.ms": config.timestampBeforeMaxMs = try int(Int64.self)
        case "log.message.timestamp.after.max.ms": config.timestampAfterMaxMs = try int(Int64.self)
        case "connections.max.idle.ms": config.connectionsMaxIdleMs = try timerMs()
        case "max.connections": config.maxConnections = Int(try int(Int32.self))
        case "max.connections.per.ip": config.maxConnectionsPerIp = Int(try int(Int32.self))
        case "queued.max.request.bytes":
            guard let v = Int(value), v == -1 || v > 0 else { throw ParseError.badValue(key, value) }
            config.queuedMaxRequestBytes = v
        case "min.insync.replicas": config.minInsyncReplicas = try positive(Int32.self)
        case "group.consumer.migration.policy":
            guard let policy = GroupConfig.MigrationPolicy(rawValue: value.lowercased()) else { throw ParseError.badValue(key, value) }
            config.groups.migrationPolicy = policy
        case "log.message.timestamp.type":
            guard ["CreateTime", "LogAppendTime"].contains(value) else { throw ParseError.badValue(key, value) }
            config.timestampType = value
        case "transactional.id.expiration.ms": config.transactionalIdExpirationMs = try positive(Int64.self)
        case "transaction.remove.expired.transaction.cleanup.interval.ms": config.transactionCleanupIntervalMs = try positive(Int64.self)
        case "tern.socket.frame.timeout.ms": config.frameTimeoutMs = try timerMs()
        case "tern.socket.stall.timeout.ms": config.stallTimeoutMs = try timerMs()
        case "tern.cluster.etcd":
            guard value.hasPrefix("etcd://") || value.hasPrefix("http://") else { throw ParseError.badValue(key, value) }
            config.etcdEndpoint = value
        case "tern.cluster.name":
            guard !value.isEmpty, !value.contains("/") else { throw ParseError.badValue(key, value) }
            config.clusterName = value
        case "broker.rack": config.rack = value.isEmpty ? nil : value
        case "broker.session.timeout.ms": config.brokerSessionTimeoutMs = try positive(Int64.self)
        case "default.replication.factor": config.defaultReplicationFactor = try positive(Int16.self)
        case "offsets.topic.replication.factor": config.offsetsTopicReplicationFactor = try positive(Int16.self)
        case "transaction.state.log.replication.factor": config.transactionStateReplicationFactor = try positive(Int16.self)
        case "offsets.topic.num.partitions": config.offsetsTopicPartitions = try positive(Int32.self)
        case "transaction.state.log.num.partitions": config.transactionStatePartitions = try positive(Int32.self)
        case "auto.leader.rebalance.enable": config.autoLeaderRebalance = try bool()
        case "controlled.shutdown.enable": config.controlledShutdown = try bool()
        case "leader.imbalance.check.interval.seconds": config.leaderImbalanceCheckIntervalSeconds = try positive(Int64.self)
        case "replica.lag.time.max.ms": config.replication.lagTimeMaxMs = try positive(Int64.self)
        case "replica.fetch.wait.max.ms": config.replication.fetchWaitMaxMs = try positive(Int32.self)
        case "replica.fetch.min.bytes": config.replication.fetchMinBytes = try positive(Int32.self)
        case "fetch.max.bytes":
            let v = try positive(Int32.self)
            guard v >= 1024 else { throw ParseError.badValue(key, value) }
            config.fetchMaxBytes = v
        case "replica.fetch.max.bytes": config.replication.fetchMaxBytes = try positive(Int32.self)
        case "replica.fetch.response.max.bytes": config.replication.fetchResponseMaxBytes = try positive(Int32.self)
        case "replica.fetch.backoff.ms": config.replication.fetchBackoffMs = try positive(Int64.self)
        case "replica.high.watermark.checkpoint.interval.ms": config.replication.highWatermarkCheckpointIntervalMs = try positive(Int64.self)
        default:
            // Kafka settings Tern accepts without applying (`BrokerConfigCatalog.acceptedOnly`).
            guard let accepted = BrokerConfigCatalog.byName[key]?.acceptedOnly else { throw ParseError.unknownKey(key) }
            guard accepted.check.problem(value) == nil else { throw ParseError.badValue(key, value) }
        }
    }

    /// `PLAINTEXT://host:port`, `host:port` or `:port`. Tern serves one listener: a list of
    /// several is refused rather than serving its first and silently dropping the rest.
    static func listener(_ key: String, _ value: String) throws -> (String, Int) {
        let listeners = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        for other in listeners.dropFirst() {
            if let r = other.range(of: "://"), other[..<r.lowerBound].uppercased() != "PLAINTEXT" {
                throw ParseError.unsupportedListener(key, String(other[..<r.lowerBound].uppercased()))
            }
        }
        guard listeners.count <= 1 else { throw ParseError.severalListeners(key, value) }
        var s = listeners.first ?? ""
        if let r = s.range(of: "://") {
            // Serving plaintext on a listener the operator declared secure would be worse than not
            // starting: until TLS and SASL land, only PLAINTEXT listeners are accepted.
            let scheme = s[..<r.lowerBound].uppercased()
            guard scheme == "PLAINTEXT" else { throw ParseError.unsupportedListener(key, String(scheme)) }
            s = String(s[r.upperBound...])
        }
        guard let colon = s.lastIndex(of: ":"), let port = Int(s[s.index(after: colon)...]), (0...65535).contains(port) else {
            throw ParseError.badValue(key, value)
        }
        var host = String(s[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host.isEmpty ? "0.0.0.0" : host, port)
    }
}
