import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TernProtocol

/// A cluster as a client sees it: bootstrap, metadata, one connection per broker. Works against
/// any Kafka-compatible broker, not only Tern.
public final class KafkaClient: Sendable {
    public struct TopicInfo: Sendable {
        public var name: String
        public var id: KafkaUUID
        public var partitions: [Int32: Int32]  // partition → leader node id
        public var isInternal: Bool
    }

    public let clientId: String
    let bootstrap: [(host: String, port: Int)]
    let group: EventLoopGroup
    private let ownsGroup: Bool
    private let connections = NIOLockedValueBox<[Int32: BrokerConnection]>([:])
    private let brokers = NIOLockedValueBox<[Int32: (host: String, port: Int)]>([:])
    private let topics = NIOLockedValueBox<[String: TopicInfo]>([:])
    private let bootstrapConnection = NIOLockedValueBox<BrokerConnection?>(nil)

    /// Bounds connecting and the client's own requests (metadata, coordinators, offsets); nil
    /// waits as long as the broker takes (and 10 s to connect).
    public let requestTimeout: Duration?

    /// `servers`: "host:port" strings.
    public init(bootstrap servers: [String], clientId: String = "tern", group: EventLoopGroup? = nil, requestTimeout: Duration? = nil) {
        self.requestTimeout = requestTimeout
        self.bootstrap = servers.map { s in
            let parts = s.split(separator: ":")
            return (String(parts.dropLast().joined(separator: ":")).isEmpty ? "127.0.0.1" : parts.dropLast().joined(separator: ":"),
                    Int(parts.last ?? "9092") ?? 9092)
        }
        self.clientId = clientId
        self.group = group ?? MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.ownsGroup = group == nil
    }

    public func close() async {
        let all = connections.withLockedValue { c in
            defer { c.removeAll() }
            return Array(c.values)
        }
        for c in all { await c.close() }
        if let b = bootstrapConnection.withLockedValue({ $0 }) { await b.close() }
        if ownsGroup { try? await group.shutdownGracefully() }
    }

    /// Any live connection (for cluster-wide requests like Metadata).
    public func anyConnection() async throws -> BrokerConnection {
        if let c = bootstrapConnection.withLockedValue({ $0 }), c.isActive { return c }
        var lastError: Error = ClientError.noBrokers
        for (host, port) in bootstrap {
            do {
                let c = try await BrokerConnection.connect(host: host, port: port, clientId: clientId, group: group, timeout: requestTimeout ?? .seconds(10))
                bootstrapConnection.withLockedValue { $0 = c }
                return c
            } catch {
                lastError = error
            }
        }
        throw lastError
    }

    /// The connection to broker `nodeId` (from the last metadata).
    public func connection(to nodeId: Int32) async throws -> BrokerConnection {
        if let c = connections.withLockedValue({ $0[nodeId] }), c.isActive { return c }
        if brokers.withLockedValue({ $0[nodeId] }) == nil { _ = try await refreshMetadata(topics: []) }
        guard let address = brokers.withLockedValue({ $0[nodeId] }) else { throw ClientError.noBrokers }
        let c = try await BrokerConnection.connect(host: address.host, port: address.port, clientId: clientId, group: group, timeout: requestTimeout ?? .seconds(10))
        connections.withLockedValue { $0[nodeId] = c }
        return c
    }

    /// Metadata for `topics` (nil = all). Auto-creation is never requested.
    @discardableResult
    public func refreshMetadata(topics names: [String]?) async throws -> MetadataResponse {
        let c = try await anyConnection()
        let version = try c.version(.metadata, max: 12)
        let request = MetadataRequest(
            topics: names.map { $0.map { MetadataRequest.MetadataRequestTopic(name: $0) } }, allowAutoTopicCreation: false)
        let response = try await c.send(request, version: version, as: MetadataResponse.self, timeout: requestTimeout)
        brokers.withLockedValue { b in
            for broker in response.brokers { b[broker.nodeId] = (broker.host, Int(broker.port)) }
        }
        topics.withLockedValue { t in
            for topic in response.topics where topic.errorCode == 0 {
                guard let name = topic.name else { continue }
                t[name] = TopicInfo(
                    name: name, id: topic.topicId,
                    partitions: Dictionary(uniqueKeysWithValues: topic.partitions.map { ($0.partitionIndex, $0.leaderId) }),
                    isInternal: topic.isInternal)
            }
        }
        return response
    }

    /// The topic as last seen in metadata, without asking the broker.
    public func cachedTopic(_ name: String) -> TopicInfo? { topics.withLockedValue { $0[name] } }

    public func topic(_ name: String) async throws -> TopicInfo {
        if let t = topics.withLockedValue({ $0[name] }) { return t }
        try await refreshMetadata(topics: [name])
        guard let t = topics.withLockedValue({ $0[name] }) else { throw ClientError.unknownTopic(name) }
        return t
    }

    public func leaderConnection(topic: String, partition: Int32) async throws -> BrokerConnection {
        let info = try await self.topic(topic)
        guard let leader = info.partitions[partition] else { throw ClientError.unknownTopic("\(topic)[\(partition)]") }
        return try await connection(to: leader)
    }

    /// The coordinator of `group` (FindCoordinator), as a connection.
    public func coordinator(group: String) async throws -> BrokerConnection { try await coordinator(key: group, keyType: 0) }

    /// The transaction coordinator of `transactionalId`, as a connection.
    public func coordinator(transactionalId: String) async throws -> BrokerConnection { try await coordinator(key: transactionalId, keyType: 1) }

    /// The node id of the coordinator of `group` (FindCoordinator).
    public func coordinatorNode(group: String) async throws -> Int32 { try await findCoordinator(key: group, keyType: 0) }

    /// The node id of the transaction coordinator of `transactionalId`.
    public func coordinatorNode(transactionalId: String) async throws -> Int32 { try await findCoordinator(key: transactionalId, keyType: 1) }

    private func coordinator(key: String, keyType: Int8) async throws -> BrokerConnection {
        try await connection(to: try await findCoordinator(key: key, keyType: keyType))
    }

    private func findCoordinator(key: String, keyType: Int8) async throws -> Int32 {
        let c = try await anyConnection()
        let version = try c.version(.findCoordinator, max: 3)
        let response = try await c.send(FindCoordinatorRequest(key: key, keyType: keyType), version: version, as: FindCoordinatorResponse.self, timeout: requestTimeout)
        guard response.errorCode == 0 else { throw ClientError.kafka(code: response.errorCode, context: "FindCoordinator(\(key))") }
        brokers.withLockedValue { $0[response.nodeId] = (response.host, Int(response.port)) }
        return response.nodeId
    }
}
