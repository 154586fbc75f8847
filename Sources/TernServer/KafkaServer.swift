import Logging
import NIOCore
import NIOPosix
import TernBroker
import TernProtocol

/// The TCP listener: framing, then per-connection ordered dispatch to the broker.
public final class KafkaServer: Sendable {
    private let group: MultiThreadedEventLoopGroup
    private let broker: Broker
    private let logger: Logger
    private let channel: Channel

    /// Binds and starts serving. `threads` event loops (default: one per core).
    public init(broker: Broker, logger: Logger, threads: Int = System.coreCount) async throws {
        self.broker = broker
        self.logger = logger
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        self.group = group
        let dispatcher = RequestDispatcher(broker: broker)
        let maxFrame = broker.config.socketRequestMaxBytes
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(KafkaFrameDecoder(maxFrameSize: maxFrame)))
                    try channel.pipeline.syncOperations.addHandler(KafkaRequestHandler(dispatcher: dispatcher, logger: logger))
                }
            }
        do {
            self.channel = try await bootstrap.bind(host: broker.config.host, port: broker.config.port).get()
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        logger.info("listening", metadata: ["address": "\(channel.localAddress?.description ?? "?")"])
    }

    public var localPort: Int? { channel.localAddress?.port }

    /// Stops accepting, closes connections and event loops; the caller then shuts the broker down.
    public func shutdown() async {
        try? await channel.close()
        try? await group.shutdownGracefully()
    }
}
