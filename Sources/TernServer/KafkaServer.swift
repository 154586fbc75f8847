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
        let config = broker.config
        let pool = RequestMemoryPool(limit: config.queuedMaxRequestBytes)
        let warnings = ConnectionWarnings(logger: logger)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // Above 1 MiB of unsent responses a connection stops being read (KafkaRequestHandler).
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 256 * 1024, high: 1024 * 1024))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let address = channel.remoteAddress?.ipAddress
                    if let refusal = broker.admitConnection(address: address) {
                        warnings.warn(.refused, peer: channel.remoteAddress, reason: "\(refusal)")
                        channel.close(promise: nil)
                        return
                    }
                    // Admitted: given back when the channel closes, whatever happens next.
                    channel.closeFuture.whenComplete { _ in broker.connectionClosed(address: address) }
                    let close: (ChannelHandlerContext, String) -> Void = { context, reason in
                        warnings.warn(.closed, peer: context.remoteAddress, reason: reason)
                        context.close(promise: nil)
                    }
                    let sync = channel.pipeline.syncOperations
                    let load = ConnectionLoad()
                    try sync.addHandler(IdleStateHandler(allTimeout: .milliseconds(config.connectionsMaxIdleMs)))
                    try sync.addHandler(RequestFramer(
                        maxFrameSize: config.socketRequestMaxBytes, pool: pool, load: load, frameTimeout: .milliseconds(config.frameTimeoutMs),
                        onClose: close))
                    try sync.addHandler(KafkaRequestHandler(
                        dispatcher: dispatcher, warnings: warnings, pool: pool, load: load,
                        maxInFlight: config.maxInFlightRequestsPerConnection))
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
