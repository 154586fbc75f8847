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
        var bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.socketOption(.so_reuseaddr), value: 1)
        // Kafka's fixed kernel buffers: on the listening socket for the receive side (its window
        // scale is agreed in the handshake, before accept), on each connection for the send side.
        if config.socketReceiveBufferBytes > 0 {
            bootstrap = bootstrap.serverChannelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(config.socketReceiveBufferBytes))
        }
        if config.socketSendBufferBytes > 0 {
            bootstrap = bootstrap.childChannelOption(.socketOption(.so_sndbuf), value: SocketOptionValue(config.socketSendBufferBytes))
        }
        bootstrap = bootstrap
            // Above 256 KiB of unsent responses a connection stops being read (KafkaRequestHandler):
            // with Kafka's 100 KiB kernel buffer, a client that never reads holds well under a
            // megabyte (a fetch's file regions count their size here but are not in memory).
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 128 * 1024, high: 256 * 1024))
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
                        maxInFlight: config.maxInFlightRequestsPerConnection, stallTimeout: .milliseconds(config.stallTimeoutMs)))
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
