import NIOCore

/// Counts the `read` calls that reach the socket end of a test pipeline: what the connection would
/// ask the kernel for. A handler holding reads back (backpressure) shows as a count that stops.
final class ReadCounter: ChannelOutboundHandler, @unchecked Sendable {
    // Touched only on the test channel's event loop.
    typealias OutboundIn = IOData
    var count = 0

    func read(context: ChannelHandlerContext) {
        count += 1
        context.read()
    }
}
