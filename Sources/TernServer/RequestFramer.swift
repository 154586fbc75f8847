import NIOCore
import TernProtocol

/// One request frame (size prefix removed) and the pool bytes reserved for it, which the request
/// handler releases once the response is ready.
package struct RequestFrame {
    package var bytes: ByteBuffer
    package var reservedBytes: Int
}

/// Cuts a connection's byte stream into request frames with bounded memory, and is the first
/// line of defence against slow or hostile clients:
/// - a size below 8 or above `socket.request.max.bytes` closes the connection before any of the
///   frame is buffered;
/// - a frame's size is reserved from the broker-wide `RequestMemoryPool` when its prefix arrives;
///   while the pool is full this connection stops reading (reads are held back, not dropped);
/// - a frame must keep arriving: each `tern.socket.frame.timeout.ms` it must complete or bring
///   another 64 KiB, so a client trickling bytes (slowloris) is cut off and a slow upload is not;
/// - an idle connection (`IdleStateHandler` in front) is closed.
///
/// Runs on the connection's event loop only, like every channel handler.
package final class RequestFramer: ChannelDuplexHandler {
    package typealias InboundIn = ByteBuffer
    package typealias InboundOut = RequestFrame
    package typealias OutboundIn = IOData
    package typealias OutboundOut = IOData

    private let maxFrameSize: Int
    private let pool: RequestMemoryPool
    private let load: ConnectionLoad
    private let frameTimeout: TimeAmount
    private let onClose: (ChannelHandlerContext, String) -> Void
    private var buffer: ByteBuffer?
    /// Pool bytes reserved for the frame being assembled (0: none yet).
    private var reserved = 0
    private var waitingForMemory = false
    private var readHeldBack = false
    private var frameDeadline: Scheduled<Void>?
    /// Buffered bytes when the frame deadline was last armed.
    private var bytesWhenArmed = 0
    private var memoryRetry: Scheduled<Void>?
    private var closed = false

    static let minFrameSize = 8
    static let progressPerDeadline = 64 * 1024
    /// How often a connection waiting for request memory tries again.
    static let memoryRetryInterval = TimeAmount.milliseconds(5)

    package init(
        maxFrameSize: Int, pool: RequestMemoryPool, load: ConnectionLoad, frameTimeout: TimeAmount,
        onClose: @escaping (ChannelHandlerContext, String) -> Void
    ) {
        self.maxFrameSize = maxFrameSize
        self.pool = pool
        self.load = load
        self.frameTimeout = frameTimeout
        self.onClose = onClose
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closed else { return }
        let incoming = unwrapInboundIn(data)
        if buffer == nil {
            buffer = incoming
        } else {
            buffer!.writeImmutableBuffer(incoming)
        }
        deliverFrames(context: context)
    }

    private func deliverFrames(context: ChannelHandlerContext) {
        while !closed, var pending = buffer, pending.readableBytes >= 4 {
            let size = Int(pending.getInteger(at: pending.readerIndex, as: Int32.self)!)
            guard size >= Self.minFrameSize, size <= maxFrameSize else {
                return close(context: context, reason: "invalid frame size \(size)")
            }
            if reserved == 0 {
                let charge = max(size, RequestMemoryPool.minimumCharge)
                if pool.tryReserve(charge) {
                    reserved = charge
                } else if load.outstanding == 0 && size <= ConnectionLoad.idleAllowance {
                    // Nothing outstanding here: this client is not what fills the budget.
                    pool.forceReserve(charge)
                    reserved = charge
                } else {
                    waitForMemory(context: context)
                    break
                }
            }
            guard pending.readableBytes >= 4 + size else {
                // A large frame arriving slowly but steadily is not a slowloris: each 64 KiB that
                // arrives buys it another deadline.
                if frameDeadline != nil && pending.readableBytes - bytesWhenArmed >= Self.progressPerDeadline {
                    frameDeadline?.cancel()
                    frameDeadline = nil
                }
                armFrameDeadline(context: context)
                break
            }
            pending.moveReaderIndex(forwardBy: 4)
            let frame = RequestFrame(bytes: pending.readSlice(length: size)!, reservedBytes: reserved)
            reserved = 0
            load.outstanding += 1
            frameDeadline?.cancel()
            frameDeadline = nil
            buffer = pending.readableBytes > 0 ? pending : nil
            context.fireChannelRead(wrapInboundOut(frame))
        }
        if let pending = buffer, pending.readableBytes > 0 {
            armFrameDeadline(context: context)
        }
        // Drop consumed bytes so a long-lived connection's buffer does not grow.
        if buffer != nil, buffer!.readerIndex > 64 * 1024 { buffer!.discardReadBytes() }
    }

    private func armFrameDeadline(context: ChannelHandlerContext) {
        guard frameDeadline == nil else { return }
        bytesWhenArmed = buffer?.readableBytes ?? 0
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        frameDeadline = context.eventLoop.scheduleTask(in: frameTimeout) {
            let (framer, context) = loopBound.value
            framer.frameDeadline = nil
            framer.close(context: context, reason: "request frame incomplete after \(framer.frameTimeout.nanoseconds / 1_000_000) ms")
        }
    }

    private func waitForMemory(context: ChannelHandlerContext) {
        waitingForMemory = true
        guard memoryRetry == nil else { return }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        memoryRetry = context.eventLoop.scheduleTask(in: Self.memoryRetryInterval) {
            let (framer, context) = loopBound.value
            framer.memoryRetry = nil
            framer.waitingForMemory = false
            framer.deliverFrames(context: context)
            if !framer.waitingForMemory && framer.readHeldBack {
                framer.readHeldBack = false
                context.read()
            }
        }
    }

    package func read(context: ChannelHandlerContext) {
        if waitingForMemory {
            readHeldBack = true
        } else {
            context.read()
        }
    }

    package func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            close(context: context, reason: "idle for connections.max.idle.ms")
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    package func channelInactive(context: ChannelHandlerContext) {
        releaseAll()
        context.fireChannelInactive()
    }

    package func handlerRemoved(context: ChannelHandlerContext) { releaseAll() }

    private func releaseAll() {
        closed = true
        frameDeadline?.cancel()
        memoryRetry?.cancel()
        frameDeadline = nil
        memoryRetry = nil
        pool.release(reserved)
        reserved = 0
        buffer = nil
    }

    private func close(context: ChannelHandlerContext, reason: String) {
        guard !closed else { return }
        releaseAll()
        onClose(context, reason)
    }
}
