import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TernProtocol

/// Errors of the native client.
public enum ClientError: Error, CustomStringConvertible, Sendable {
    case connectionClosed
    case unsupportedApi(ApiKey)
    case kafka(code: Int16, context: String)
    case noBrokers
    case unknownTopic(String)
    case timedOut(String)
    case invalidResponse(String)

    public var description: String {
        switch self {
        case .connectionClosed: return "connection closed"
        case .unsupportedApi(let k): return "broker does not support \(k)"
        case .kafka(let code, let context): return "\(context): Kafka error \(code) (\(KafkaErrorNames.name(code)))"
        case .noBrokers: return "no broker reachable"
        case .unknownTopic(let t): return "unknown topic \(t)"
        case .timedOut(let what): return "timed out: \(what)"
        case .invalidResponse(let s): return "invalid response: \(s)"
        }
    }
}

/// One TCP connection to one broker: requests are pipelined, responses matched by correlation id.
/// API versions are negotiated once (ApiVersions v0, which every broker answers).
public final class BrokerConnection: Sendable {
    private let channel: Channel
    private let handler: NIOLoopBound<ResponseRouter>
    private let nextCorrelationId = NIOLockedValueBox<Int32>(1)
    private let brokerVersions: NIOLockedValueBox<[Int16: ClosedRange<Int16>]>
    let clientId: String
    public let host: String
    public let port: Int

    private init(channel: Channel, handler: NIOLoopBound<ResponseRouter>, clientId: String, host: String, port: Int) {
        self.channel = channel
        self.handler = handler
        self.clientId = clientId
        self.host = host
        self.port = port
        self.brokerVersions = NIOLockedValueBox([:])
    }

    /// Connects and negotiates versions; `timeout` bounds the connection and the ApiVersions answer.
    public static func connect(host: String, port: Int, clientId: String, group: EventLoopGroup, timeout: Duration = .seconds(10)) async throws
        -> BrokerConnection
    {
        let channel = try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            // Fetch responses are megabytes: read them in large chunks rather than NIO's 64 KiB default.
            .channelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64 << 10, initial: 1 << 20, maximum: 8 << 20))
            .connectTimeout(.nanoseconds(Int64(timeout / .nanoseconds(1))))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(KafkaFrameDecoder(maxFrameSize: 1 << 30, minFrameSize: 4)))
                    try channel.pipeline.syncOperations.addHandler(ResponseRouter())
                }
            }
            .connect(host: host, port: port).get()
        let router = try await channel.pipeline.handler(type: ResponseRouter.self).map { NIOLoopBound($0, eventLoop: channel.eventLoop) }.get()
        let connection = BrokerConnection(channel: channel, handler: router, clientId: clientId, host: host, port: port)
        // A broker that accepts the connection but never answers (paused) must not hold it forever.
        let versions = try await connection.send(ApiVersionsRequest(), version: 0, as: ApiVersionsResponse.self, timeout: timeout)
        guard versions.errorCode == 0 else { throw ClientError.kafka(code: versions.errorCode, context: "ApiVersions") }
        connection.brokerVersions.withLockedValue { map in
            for v in versions.apiKeys { map[v.apiKey] = v.minVersion...v.maxVersion }
        }
        return connection
    }

    /// The highest version both sides support, capped at `max` (the newest this client speaks).
    public func version(_ api: ApiKey, max ourMax: Int16) throws -> Int16 {
        guard let range = brokerVersions.withLockedValue({ $0[api.rawValue] }), range.lowerBound <= ourMax else {
            throw ClientError.unsupportedApi(api)
        }
        return min(range.upperBound, ourMax)
    }

    /// Sends a request and awaits its response. With a `timeout`, a response that has not come by
    /// then fails the request with `ClientError.timedOut` and closes the connection (as Kafka's
    /// clients do: a late answer must not be taken for another request's), so a broker that stopped
    /// answering — paused, or cut off without a reset — cannot hold the caller forever.
    public func send<Request: KafkaMessage, Response: KafkaMessage>(
        _ request: Request, version: Int16, as: Response.Type, timeout: Duration? = nil
    ) async throws -> Response {
        try await start(request, version: version, as: Response.self, timeout: timeout).response()
    }

    /// Queues a request for writing now and returns its response to await later. Requests started
    /// one after another on a connection reach the broker in that order, whichever task awaits
    /// which response first — what keeps a producer's batches for one partition in order.
    public func start<Request: KafkaMessage, Response: KafkaMessage>(
        _ request: Request, version: Int16, as: Response.Type, timeout: Duration? = nil
    ) -> PendingResponse<Response> {
        PendingResponse(payload: startRaw(request, version: version, expectResponse: true, timeout: timeout),
                        version: version, flexibleHeader: Request.isFlexible(version) && Request.apiKey != ApiKey.apiVersions.rawValue)
    }

    /// Sends a request that gets no response (Produce with acks=0).
    public func sendWithoutResponse<Request: KafkaMessage>(_ request: Request, version: Int16) async throws {
        _ = try await startRaw(request, version: version, expectResponse: false).get()
    }

    private func startRaw<Request: KafkaMessage>(_ request: Request, version: Int16, expectResponse: Bool, timeout: Duration? = nil) -> EventLoopFuture<ByteBuffer?> {
        let correlationId = nextCorrelationId.withLockedValue { id in
            defer { id = id == Int32.max ? 1 : id + 1 }
            return id
        }
        var frame = ByteBuffer()
        frame.writeInteger(0 as Int32)
        RequestHeader(requestApiKey: Request.apiKey, requestApiVersion: version, correlationId: correlationId, clientId: clientId)
            .encode(to: &frame, version: Request.isFlexible(version) ? 2 : 1)
        request.encode(to: &frame, version: version)
        frame.setInteger(Int32(frame.readableBytes - 4), at: 0)
        let promise = channel.eventLoop.makePromise(of: ByteBuffer?.self)
        let frameToSend = frame
        channel.eventLoop.execute { [handler, channel] in
            if expectResponse {
                handler.value.expect(correlationId, promise)
            } else {
                promise.succeed(nil)
            }
            channel.writeAndFlush(frameToSend).whenFailure { error in
                if expectResponse { handler.value.fail(correlationId, error) }
            }
            if expectResponse, let timeout {
                let expiry = channel.eventLoop.scheduleTask(in: .nanoseconds(Int64(timeout / .nanoseconds(1)))) {
                    let api = ApiKey(rawValue: Request.apiKey).map { "\($0)" } ?? "api \(Request.apiKey)"
                    handler.value.fail(correlationId, ClientError.timedOut("\(api) request to \(channel.remoteAddress.map { "\($0)" } ?? "the broker")"))
                    channel.close(promise: nil)
                }
                promise.futureResult.whenComplete { _ in expiry.cancel() }
            }
        }
        return promise.futureResult
    }

    public func close() async {
        try? await channel.close()
    }

    public var isActive: Bool { channel.isActive }
}

/// Matches response frames to waiting requests by correlation id; fails them all on close.
final class ResponseRouter: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private var waiting: [Int32: EventLoopPromise<ByteBuffer?>] = [:]
    private var closed = false

    func expect(_ correlationId: Int32, _ promise: EventLoopPromise<ByteBuffer?>) {
        if closed {
            promise.fail(ClientError.connectionClosed)
        } else {
            waiting[correlationId] = promise
        }
    }

    func fail(_ correlationId: Int32, _ error: Error) {
        waiting.removeValue(forKey: correlationId)?.fail(error)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var frame = unwrapInboundIn(data)
        guard let correlationId = frame.readInteger(as: Int32.self), let promise = waiting.removeValue(forKey: correlationId) else { return }
        promise.succeed(frame)
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        let pending = waiting
        waiting.removeAll()
        for p in pending.values { p.fail(ClientError.connectionClosed) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

/// Names for the error codes a command-line user may see.
public enum KafkaErrorNames {
    static let names: [Int16: String] = [
        -1: "UNKNOWN_SERVER_ERROR", 1: "OFFSET_OUT_OF_RANGE", 2: "CORRUPT_MESSAGE", 3: "UNKNOWN_TOPIC_OR_PARTITION",
        5: "LEADER_NOT_AVAILABLE", 6: "NOT_LEADER_OR_FOLLOWER", 7: "REQUEST_TIMED_OUT", 10: "MESSAGE_TOO_LARGE",
        15: "COORDINATOR_NOT_AVAILABLE", 16: "NOT_COORDINATOR", 17: "INVALID_TOPIC_EXCEPTION", 22: "ILLEGAL_GENERATION",
        25: "UNKNOWN_MEMBER_ID", 27: "REBALANCE_IN_PROGRESS", 35: "UNSUPPORTED_VERSION", 36: "TOPIC_ALREADY_EXISTS",
        37: "INVALID_PARTITIONS", 38: "INVALID_REPLICATION_FACTOR", 40: "INVALID_CONFIG", 42: "INVALID_REQUEST",
        41: "NOT_CONTROLLER", 68: "NON_EMPTY_GROUP", 69: "GROUP_ID_NOT_FOUND", 76: "UNSUPPORTED_COMPRESSION_TYPE",
        79: "MEMBER_ID_REQUIRED", 80: "PREFERRED_LEADER_NOT_AVAILABLE", 83: "ELIGIBLE_LEADERS_NOT_AVAILABLE",
        13: "NETWORK_EXCEPTION", 14: "COORDINATOR_LOAD_IN_PROGRESS", 19: "NOT_ENOUGH_REPLICAS", 20: "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
        39: "INVALID_REPLICA_ASSIGNMENT", 45: "OUT_OF_ORDER_SEQUENCE_NUMBER", 46: "DUPLICATE_SEQUENCE_NUMBER", 47: "INVALID_PRODUCER_EPOCH",
        48: "INVALID_TXN_STATE", 49: "INVALID_PRODUCER_ID_MAPPING", 56: "KAFKA_STORAGE_ERROR", 59: "UNKNOWN_PRODUCER_ID",
        84: "ELECTION_NOT_NEEDED", 85: "NO_REASSIGNMENT_IN_PROGRESS", 87: "INVALID_RECORD",
    ]

    public static func name(_ code: Int16) -> String { names[code] ?? "error \(code)" }
}

/// A request already on its way (see `BrokerConnection.start`); `response()` waits for and decodes its answer.
public struct PendingResponse<Response: KafkaMessage>: Sendable {
    let payload: EventLoopFuture<ByteBuffer?>
    let version: Int16
    let flexibleHeader: Bool

    public func response() async throws -> Response {
        guard var payload = try await payload.get() else { throw ClientError.invalidResponse("no response expected") }
        // Response header v1 (tagged fields) for flexible versions, except ApiVersions (always v0).
        if flexibleHeader {
            let count = try payload.readUnsignedVarint()
            for _ in 0..<count {
                _ = try payload.readUnsignedVarint()
                try payload.skipKafkaBytes(Int(try payload.readUnsignedVarint()))
            }
        }
        return try Response(from: &payload, version: version)
    }
}
