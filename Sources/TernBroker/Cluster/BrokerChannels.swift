import Logging
import NIOCore
import NIOPosix
import TernClient
import TernCluster
import TernProtocol

/// Cluster mode: connections from this broker to the others, for the requests brokers send each
/// other outside replication — transaction markers (WriteTxnMarkers) and transaction verification
/// (AddPartitionsToTxn v4 `verify_only`). One connection per broker, opened on first use and
/// again after a failure or when the broker re-registers elsewhere.
///
/// Concurrency: an actor owns the connection table; requests on a connection are pipelined by
/// `BrokerConnection`. Its event loop group (one thread: network waits only) is its own. A
/// connection being opened is in the table too (`connecting`), so callers arriving while the
/// actor awaits it share it: one connection per broker even under concurrent first sends.
actor BrokerChannels {
    private let nodeId: Int32
    private let image: @Sendable () -> MetadataImage
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private var connections: [Int32: (BrokerConnection, host: String, port: Int32)] = [:]
    private var connecting: [Int32: (Task<BrokerConnection, Error>, host: String, port: Int32)] = [:]
    private var closed = false
    /// How long a request waits for its answer (connecting included) before failing — and the
    /// connection with it — so a paused or partitioned broker costs the caller a retry (at the
    /// partition's next leader, once there is one), not a wait until it comes back.
    static let requestTimeout: Duration = .seconds(10)

    init(nodeId: Int32, image: @escaping @Sendable () -> MetadataImage) {
        self.nodeId = nodeId
        self.image = image
    }

    /// Sends `request` to broker `broker` at the highest version both speak (at most `maxVersion`).
    func send<Request: KafkaMessage, Response: KafkaMessage>(
        _ request: Request, to broker: Int32, api: ApiKey, maxVersion: Int16, as: Response.Type
    ) async throws -> Response {
        let connection = try await connection(to: broker)
        do {
            return try await connection.send(
                request, version: try connection.version(api, max: maxVersion), as: Response.self, timeout: Self.requestTimeout)
        } catch {
            await drop(broker, connection)
            throw error
        }
    }

    private func connection(to broker: Int32) async throws -> BrokerConnection {
        guard let registration = image().brokers[broker] else { throw KafkaError.notLeaderOrFollower }
        if let (existing, host, port) = connections[broker], existing.isActive, host == registration.host, port == registration.port {
            return existing
        }
        if let (pending, host, port) = connecting[broker], host == registration.host, port == registration.port {
            return try await pending.value
        }
        // The new connection is in the table before the first suspension: a caller arriving
        // while this one waits (for the stale connection to close, for the connect) shares it.
        let stale = connections.removeValue(forKey: broker)?.0
        let (host, port, clientId, group) = (registration.host, registration.port, "tern-broker-\(nodeId)", group)
        let pending = Task {
            try await BrokerConnection.connect(host: host, port: Int(port), clientId: clientId, group: group, timeout: Self.requestTimeout)
        }
        connecting[broker] = (pending, host, port)
        defer { if connecting[broker]?.0 == pending { connecting[broker] = nil } }
        if let stale { await stale.close() }
        let made = try await pending.value
        guard !closed else {
            await made.close()
            throw KafkaError.notLeaderOrFollower
        }
        // Registered elsewhere meanwhile: the caller gets what it asked for, the table keeps the
        // newest (the next request finds it stale and reconnects).
        if let (current, _, _) = connections[broker], current !== made { await current.close() }
        connections[broker] = (made, host, port)
        return made
    }

    private func drop(_ broker: Int32, _ connection: BrokerConnection) async {
        if let (current, _, _) = connections[broker], current === connection { connections[broker] = nil }
        await connection.close()
    }

    func shutdown() async {
        closed = true
        let pending = connecting.values.map(\.0)
        connecting = [:]
        for task in pending { if let made = try? await task.value { await made.close() } }
        for (connection, _, _) in connections.values { await connection.close() }
        connections = [:]
        try? await group.shutdownGracefully()
    }
}
