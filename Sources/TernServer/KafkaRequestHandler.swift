import Logging
import NIOCore
import TernBroker
import TernProtocol

#if canImport(Glibc)
    import Glibc
#endif

/// Dispatches each frame to the broker and writes responses strictly in request order, even when
/// a later request (a Produce) finishes before an earlier one (a long-polling Fetch): clients
/// pipeline and match responses by order as well as by correlation id.
///
/// Backpressure: the handler stops reading from its connection (holds back NIO's `read`) while
/// `maxInFlight` requests are unanswered (read, response not yet written) or the socket's send
/// buffer is above its high water mark
/// — a client that pipelines requests and never reads the responses stops being read instead of
/// growing broker memory. Each frame's pool reservation is released once its response is ready.
/// Runs on the connection's event loop only.
final class KafkaRequestHandler: ChannelDuplexHandler {
    typealias InboundIn = RequestFrame
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    private let dispatcher: RequestDispatcher
    private let logger: Logger
    private let pool: RequestMemoryPool
    private let maxInFlight: Int
    private var nextRequest: UInt64 = 0
    private var nextToWrite: UInt64 = 0
    /// Finished responses waiting for earlier ones; nil = request needing no response.
    private var ready: [UInt64: OutboundFrame?] = [:]
    /// Pool bytes held by each request whose response is not ready yet.
    private var reservations: [UInt64: Int] = [:]
    private var readHeldBack = false
    private var closing = false

    init(dispatcher: RequestDispatcher, logger: Logger, pool: RequestMemoryPool, maxInFlight: Int) {
        precondition(maxInFlight > 0)
        self.dispatcher = dispatcher
        self.logger = logger
        self.pool = pool
        self.maxInFlight = maxInFlight
    }

    /// Requests read but not yet answered on the wire — including finished responses parked behind
    /// an earlier long poll, so those cannot pile up either.
    private var unanswered: Int { Int(nextRequest - nextToWrite) }

    private func mustPause(_ context: ChannelHandlerContext) -> Bool {
        unanswered >= maxInFlight || !context.channel.isWritable
    }

    func read(context: ChannelHandlerContext) {
        if mustPause(context) {
            readHeldBack = true
        } else {
            context.read()
        }
    }

    private func resumeIfPossible(_ context: ChannelHandlerContext) {
        if readHeldBack && !closing && !mustPause(context) {
            readHeldBack = false
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        resumeIfPossible(context)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        for bytes in reservations.values { pool.release(bytes) }
        reservations = [:]
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let request = unwrapInboundIn(data)
        guard !closing else { return pool.release(request.reservedBytes) }
        let frame = request.bytes
        let sequence = nextRequest
        nextRequest += 1
        reservations[sequence] = request.reservedBytes
        let host = context.remoteAddress?.ipAddress.map { "/\($0)" } ?? ""
        switch dispatcher.dispatch(frame, on: context.eventLoop, clientHost: host) {
        case .noResponse:
            complete(sequence, nil, context: context)
        case .respond(let future):
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            future.hop(to: context.eventLoop).whenComplete { result in
                let (handler, context) = loopBound.value
                switch result {
                case .success(let response): handler.complete(sequence, response, context: context)
                case .failure(let error): handler.fail(context: context, reason: "handler failed: \(error)")
                }
            }
        case .close(let reason):
            fail(context: context, reason: reason)
        }
    }

    private func complete(_ sequence: UInt64, _ response: OutboundFrame?, context: ChannelHandlerContext) {
        // The request's bytes are no longer needed once its response exists (the response holds
        // what it needs from them).
        if let bytes = reservations.removeValue(forKey: sequence) { pool.release(bytes) }
        guard !closing else { return }
        ready[sequence] = .some(response)
        var wrote = false
        while let next = ready.removeValue(forKey: nextToWrite) {
            if let frame = next {
                write(frame, context: context)
                wrote = true
            }
            nextToWrite += 1
        }
        if wrote { context.flush() }
        resumeIfPossible(context)
    }

    /// Byte parts are written as buffers; file slices as `FileRegion`s, which NIO sends with
    /// sendfile(2): record data goes from the page cache to the socket without passing through
    /// user space. Each region gets its own descriptor, closed once the write is done.
    private func write(_ frame: OutboundFrame, context: ChannelHandlerContext) {
        for part in frame.parts {
            switch part {
            case .bytes(let buffer):
                context.write(wrapOutboundOut(.byteBuffer(buffer)), promise: nil)
            case .file(let slice):
                let fd = dup(slice.descriptor)
                guard fd >= 0 else {
                    fail(context: context, reason: "dup failed: \(errno)")
                    return
                }
                let handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: fd)
                let region = FileRegion(fileHandle: handle, readerIndex: Int(slice.offset), endIndex: Int(slice.offset) + slice.length)
                let promise = context.eventLoop.makePromise(of: Void.self)
                promise.futureResult.whenComplete { _ in try? handle.close() }
                context.write(wrapOutboundOut(.fileRegion(region)), promise: promise)
            }
        }
    }

    private func fail(context: ChannelHandlerContext, reason: String) {
        guard !closing else { return }
        closing = true
        logger.warning("closing connection", metadata: ["peer": "\(context.remoteAddress?.description ?? "?")", "reason": "\(reason)"])
        context.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        fail(context: context, reason: "\(error)")
    }
}
