import Dispatch
import Logging
import NIOCore
import TernProtocol

/// What to do with one request frame.
public enum DispatchOutcome: Sendable {
    /// Send this response frame (size prefix included) when the future completes.
    case respond(EventLoopFuture<OutboundFrame>)
    /// Send nothing (Produce with acks=0).
    case noResponse
    /// The request cannot be understood: close the connection, as Kafka does.
    case close(reason: String)
}

/// Parses request headers, decodes bodies with the generated codecs, calls the broker and encodes
/// the response with the right header version. One frame in, one outcome out.
public struct RequestDispatcher: Sendable {
    public let broker: Broker

    public init(broker: Broker) { self.broker = broker }

    /// `clientHost` is the peer's address, shown by DescribeGroups.
    public func dispatch(_ frame: ByteBuffer, on eventLoop: EventLoop, clientHost: String = "") -> DispatchOutcome {
        let started = DispatchTime.now().uptimeNanoseconds
        let outcome = route(frame, on: eventLoop, clientHost: clientHost)
        // Request latency per API, from decode to the response being ready (long polls included).
        if case .respond(let future) = outcome, let key = frame.getInteger(at: frame.readerIndex, as: Int16.self),
            let api = ApiKey(rawValue: key)
        {
            let timer = broker.metrics.requestTimer(api: key, name: "\(api)")
            future.whenSuccess { _ in timer.recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - started)) }
        }
        return outcome
    }

    private func route(_ frame: ByteBuffer, on eventLoop: EventLoop, clientHost: String) -> DispatchOutcome {
        var body = frame
        // Request header v1 prefix is common to every version: key, version, correlation id, client id
        // (always a classic int16 string, so ApiVersions of any version can be read).
        guard let apiKeyRaw = body.readInteger(as: Int16.self), let version = body.readInteger(as: Int16.self),
            let correlationId = body.readInteger(as: Int32.self)
        else { return .close(reason: "truncated request header") }
        guard let apiKey = ApiKey(rawValue: apiKeyRaw), let registration = ApiRegistry.byKey[apiKey] else {
            return .close(reason: "unknown api key \(apiKeyRaw)")
        }
        do {
            let clientId = try body.readKafkaNullableString(compact: false) ?? ""
            if apiKey == .apiVersions && !registration.served.contains(version) {
                // KIP-511: answer an unknown ApiVersions version with a v0 body listing what we support.
                return .respond(eventLoop.makeSucceededFuture(
                    Self.frame(Broker.unsupportedApiVersionsResponse(), version: 0, correlationId: correlationId, flexibleHeader: false)))
            }
            guard registration.advertised.contains(version) else {
                return .close(reason: "unsupported version \(version) of \(apiKey)")
            }
            let flexible = version >= apiKey.firstFlexibleVersion
            if flexible { try skipTaggedFields(&body) }
            // Trailing bytes after the body are ignored, as Kafka does: librdkafka 2.16 sends three
            // extra bytes after a Metadata v12 request for all topics, and Kafka accepts it.
            let context = RequestContext(
                broker: broker, eventLoop: eventLoop, version: version, correlationId: correlationId, clientId: clientId,
                clientHost: clientHost, flexibleResponseHeader: flexible && apiKey != .apiVersions)
            guard registration.served.contains(version) else {
                // Advertised but not served (Produce v0-2, as Kafka 4.0 advertises and refuses them):
                // UNSUPPORTED_VERSION where the response can say so, else the connection is closed.
                guard let refuse = registration.refuseUnserved else { return .close(reason: "unsupported version \(version) of \(apiKey)") }
                return try refuse(&body, context)
            }
            return try registration.handle(&body, context)
        } catch {
            return .close(reason: "malformed \(apiKey) v\(version) request: \(error)")
        }
    }

    private func skipTaggedFields(_ body: inout ByteBuffer) throws {
        let count = try body.readUnsignedVarint()
        for _ in 0..<count {
            _ = try body.readUnsignedVarint()
            try body.skipKafkaBytes(Int(try body.readUnsignedVarint()))
        }
    }

    /// Encodes `[size][correlation id][tagged fields if header v1][body]`; file-backed records stay
    /// file slices for sendfile.
    static func frame<M: KafkaMessage>(_ message: M, version: Int16, correlationId: Int32, flexibleHeader: Bool) -> OutboundFrame {
        var out = OutboundFrame.Writer()
        out.writeKafkaInteger(correlationId)
        if flexibleHeader { out.writeUnsignedVarint(0) }
        message.encode(to: &out, version: version)
        return out.frame()
    }
}
