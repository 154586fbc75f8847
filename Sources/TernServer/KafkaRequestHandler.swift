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
    private let warnings: ConnectionWarnings
    private let pool: RequestMemoryPool
    private let load: ConnectionLoad
    private let maxInFlight: Int
    private var nextRequest: UInt64 = 0
    private var nextToWrite: UInt64 = 0
    /// Finished responses waiting for earlier ones (nil: a request needing no response), with the
    /// pool bytes they hold until written.
    private var ready: [UInt64: (frame: OutboundFrame?, held: Int)] = [:]
    /// Pool bytes held by each request whose response is not ready yet.
    private var reservations: [UInt64: Int] = [:]
    private var readHeldBack = false
    private var closing = false
    /// Frames read but not yet dispatched: one socket read can bring thousands of small requests,
    /// and dispatching them all at once would let one connection hold its event loop (and every
    /// other connection on it) for as long as they take, and pile their responses up however
    /// full the socket is. They are dispatched while fewer than `maxInFlight` are unanswered and
    /// the socket takes writes.
    private var waiting = CircularBuffer<RequestFrame>()
    private var draining = false
    private var drainScheduled = false
    /// Between two turns of one connection's waiting requests.
    static let turnGap = TimeAmount.microseconds(100)
    /// While the socket is above its high water mark: the check that the client still takes its
    /// responses, and the unsent bytes it found last time.
    private let stallTimeout: TimeAmount
    private var stallCheck: Scheduled<Void>?
    private var unsentAtLastCheck = 0
    /// Responses written to the socket so far: progress even when new ones refilled the buffer.
    private var responsesWritten = 0
    private var writtenAtLastCheck = 0

    init(dispatcher: RequestDispatcher, warnings: ConnectionWarnings, pool: RequestMemoryPool, load: ConnectionLoad,
         maxInFlight: Int, stallTimeout: TimeAmount = .seconds(5)) {
        precondition(maxInFlight > 0)
        self.stallTimeout = stallTimeout
        self.dispatcher = dispatcher
        self.warnings = warnings
        self.pool = pool
        self.load = load
        self.maxInFlight = maxInFlight
    }

    /// Requests read but not yet answered on the wire — including finished responses parked behind
    /// an earlier long poll, so those cannot pile up either.
    private var unanswered: Int { Int(nextRequest - nextToWrite) }

    private func mustPause(_ context: ChannelHandlerContext) -> Bool {
        unanswered >= maxInFlight || !context.channel.isWritable || !waiting.isEmpty
    }

    private func canDispatch(_ context: ChannelHandlerContext) -> Bool {
        unanswered < maxInFlight && context.channel.isWritable
    }

    /// Dispatches waiting frames while there is room, at most `maxInFlight` per turn: a client
    /// whose replies drain as fast as they are made (into kernel buffers) would otherwise keep
    /// its event loop to itself. The rest wait for the loop's next turn, after other channels'
    /// I/O. Re-entrant calls (a response completing inside a dispatch) leave the work to the
    /// outer loop.
    private func drainWaiting(_ context: ChannelHandlerContext) {
        guard !draining, !drainScheduled else { return }
        draining = true
        defer { draining = false }
        var budget = maxInFlight
        while !closing, budget > 0, canDispatch(context), let next = waiting.popFirst() {
            dispatch(next, context: context)
            budget -= 1
        }
        if budget == 0 && !waiting.isEmpty && !closing {
            drainScheduled = true
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            // A timer, not `execute`: tasks queued while tasks run are run in the same pass,
            // before the loop looks at any other channel's I/O again.
            context.eventLoop.scheduleTask(in: Self.turnGap) {
                let (handler, context) = loopBound.value
                handler.drainScheduled = false
                handler.resumeIfPossible(context)
            }
        }
    }

    func read(context: ChannelHandlerContext) {
        if mustPause(context) {
            readHeldBack = true
        } else {
            context.read()
        }
    }

    private func resumeIfPossible(_ context: ChannelHandlerContext) {
        drainWaiting(context)
        if readHeldBack && !closing && !mustPause(context) {
            readHeldBack = false
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            stallCheck?.cancel()
            stallCheck = nil
        } else if stallCheck == nil {
            unsentAtLastCheck = unsentBytes(context)
            writtenAtLastCheck = responsesWritten
            armStallCheck(context)
        }
        resumeIfPossible(context)
        context.fireChannelWritabilityChanged()
    }

    private func unsentBytes(_ context: ChannelHandlerContext) -> Int {
        (try? context.channel.syncOptions?.getOption(.bufferedWritableBytes)) ?? 0
    }

    /// A client that stopped reading holds its responses — and their share of the request memory
    /// budget — for as long as it likes, and with enough such connections the budget is theirs and
    /// every other client waits. So while the socket stays full the handler looks every
    /// `stallTimeout`: if the client took none of the unsent bytes meanwhile and the budget is
    /// half used, the connection is closed. A slow reader makes progress and stays; with memory
    /// to spare, so does a stalled one (a long pause is no harm then).
    private func armStallCheck(_ context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        stallCheck = context.eventLoop.scheduleTask(in: stallTimeout) {
            let (handler, context) = loopBound.value
            guard !handler.closing, !context.channel.isWritable else { return handler.stallCheck = nil }
            let unsent = handler.unsentBytes(context)
            let progressed = unsent < handler.unsentAtLastCheck || handler.responsesWritten != handler.writtenAtLastCheck
            if !progressed && handler.pool.underPressure {
                handler.stallCheck = nil
                let seconds = Double(handler.stallTimeout.nanoseconds) / 1e9
                return handler.fail(
                    context: context, reason: "took none of \(unsent) unsent response bytes in \(seconds) s while the request memory budget is half used")
            }
            handler.unsentAtLastCheck = unsent
            handler.writtenAtLastCheck = handler.responsesWritten
            handler.armStallCheck(context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        stallCheck?.cancel()
        stallCheck = nil
        for bytes in reservations.values { pool.release(bytes) }
        reservations = [:]
        for parked in ready.values { pool.release(parked.held) }
        ready = [:]
        while let frame = waiting.popFirst() { pool.release(frame.reservedBytes) }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let request = unwrapInboundIn(data)
        guard !closing else { return pool.release(request.reservedBytes) }
        waiting.append(request)
        drainWaiting(context)
    }

    private func dispatch(_ request: RequestFrame, context: ChannelHandlerContext) {
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
        // The request's bytes stay charged until its response is on the socket, and the
        // response's own bytes (not the file data it sends) are charged with them.
        var held = reservations.removeValue(forKey: sequence) ?? 0
        guard !closing else { return pool.release(held) }
        if let response {
            let bytes = response.memoryBytes
            pool.forceReserve(bytes)
            held += bytes
        }
        ready[sequence] = (response, held)
        var wrote = false
        while let next = ready.removeValue(forKey: nextToWrite) {
            if let frame = next.frame {
                write(frame, releasing: next.held, context: context)
                wrote = true
            } else {
                pool.release(next.held)
                load.outstanding -= 1
            }
            nextToWrite += 1
        }
        if wrote { context.flush() }
        resumeIfPossible(context)
    }

    /// Byte parts are written as buffers; file slices as `FileRegion`s, which NIO sends with
    /// sendfile(2): record data goes from the page cache to the socket without passing through
    /// user space. A region borrows its slice's shared descriptor (sendfile names the offset);
    /// the slice is kept until the write is done, and the handle gives the descriptor back
    /// without closing it.
    private func write(_ frame: OutboundFrame, releasing held: Int, context: ChannelHandlerContext) {
        // Written (or the connection gone): the memory is free and the request no longer
        // outstanding. A channel completes its writes in order, so the last part's completion
        // stands for the frame's.
        let written = context.eventLoop.makePromise(of: Void.self)
        let pool = self.pool
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        written.futureResult.whenComplete { _ in
            pool.release(held)
            loopBound.value.load.outstanding -= 1
            loopBound.value.responsesWritten += 1
        }
        let parts = frame.parts
        guard !parts.isEmpty else { return written.succeed(()) }
        for (i, part) in parts.enumerated() {
            let isLast = i == parts.count - 1
            switch part {
            case .bytes(let buffer):
                context.write(wrapOutboundOut(.byteBuffer(buffer)), promise: isLast ? written : nil)
            case .file(let slice):
                let handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: slice.descriptor)
                let region = FileRegion(fileHandle: handle, readerIndex: Int(slice.offset), endIndex: Int(slice.offset) + slice.length)
                let promise = context.eventLoop.makePromise(of: Void.self)
                promise.futureResult.whenComplete { _ in
                    _ = try? handle.takeDescriptorOwnership()
                    withExtendedLifetime(slice) {}
                }
                if isLast { promise.futureResult.cascade(to: written) }
                context.write(wrapOutboundOut(.fileRegion(region)), promise: promise)
            }
        }
    }

    private func fail(context: ChannelHandlerContext, reason: String) {
        guard !closing else { return }
        closing = true
        warnings.warn(.closed, peer: context.remoteAddress, reason: reason)
        context.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        fail(context: context, reason: "\(error)")
    }
}
