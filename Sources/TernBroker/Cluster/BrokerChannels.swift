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
/// `BrokerConnection`. Its event loop group (one thread: network waits only) is its own.
actor BrokerChannels {
    private let nodeId: Int32
    private let image: @Sendable () -> MetadataImage
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private var connections: [Int32: (BrokerConnection, host: String, port: Int32)] = [:]
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
        if let (stale, _, _) = connections.removeValue(forKey: broker) { await stale.close() }
        let made = try await BrokerConnection.connect(
            host: registration.host, port: Int(registration.port), clientId: "tern-broker-\(nodeId)", group: group, timeout: Self.requestTimeout)
        connections[broker] = (made, registration.host, registration.port)
        return made
    }

    private func drop(_ broker: Int32, _ connection: BrokerConnection) async {
        if let (current, _, _) = connections[broker], current === connection { connections[broker] = nil }
        await connection.close()
    }

    func shutdown() async {
        for (connection, _, _) in connections.values { await connection.close() }
        connections = [:]
        try? await group.shutdownGracefully()
    }
}
