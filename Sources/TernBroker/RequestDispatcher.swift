import Dispatch
import Logging
import NIOCore
import TernProtocol

/// What to do with one request frame.
public enum DispatchOutcome {
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
        guard let apiKey = ApiKey(rawValue: apiKeyRaw), let supported = SupportedApis.table[apiKey] else {
            return .close(reason: "unknown api key \(apiKeyRaw)")
        }
        do {
            let clientId = try body.readKafkaNullableString(compact: false) ?? ""
            if apiKey == .apiVersions && !supported.handled.contains(version) {
                // KIP-511: answer an unknown ApiVersions version with a v0 body listing what we support.
                return .respond(eventLoop.makeSucceededFuture(
                    Self.frame(Broker.unsupportedApiVersionsResponse(), version: 0, correlationId: correlationId, flexibleHeader: false)))
            }
            guard supported.handled.contains(version) else {
                return .close(reason: "unsupported version \(version) of \(apiKey)")
            }
            let flexible = version >= apiKey.firstFlexibleVersion
            if flexible { try skipTaggedFields(&body) }
            // ApiVersions responses always use header v0, even when the body is flexible.
            let flexibleResponseHeader = flexible && apiKey != .apiVersions
            func respond<M: KafkaMessage>(_ message: M) -> DispatchOutcome {
                .respond(eventLoop.makeSucceededFuture(Self.frame(message, version: version, correlationId: correlationId, flexibleHeader: flexibleResponseHeader)))
            }
            func respond<M: KafkaMessage>(_ future: EventLoopFuture<M>) -> DispatchOutcome {
                .respond(future.map { Self.frame($0, version: version, correlationId: correlationId, flexibleHeader: flexibleResponseHeader) })
            }
            let groups = broker.groups
            switch apiKey {
            case .apiVersions:
                return respond(broker.apiVersions(try decode(ApiVersionsRequest.self, &body, version), version: version))
            case .metadata:
                return respond(broker.metadata(try decode(MetadataRequest.self, &body, version), version: version))
            case .produce:
                guard let response = broker.produce(try decode(ProduceRequest.self, &body, version), version: version, on: eventLoop) else {
                    return .noResponse
                }
                return .respond(response.map { response in
                    Self.frame(response, version: version, correlationId: correlationId, flexibleHeader: flexibleResponseHeader)
                })
            case .fetch:
                let request = try decode(FetchRequest.self, &body, version)
                return .respond(broker.fetch(request, version: version, on: eventLoop).map { response in
                    Self.frame(response, version: version, correlationId: correlationId, flexibleHeader: flexibleResponseHeader)
                })
            case .listOffsets:
                return respond(broker.listOffsets(try decode(ListOffsetsRequest.self, &body, version), version: version))
            case .createTopics:
                return respond(broker.createTopics(try decode(CreateTopicsRequest.self, &body, version), version: version))
            case .deleteTopics:
                return respond(broker.deleteTopics(try decode(DeleteTopicsRequest.self, &body, version), version: version))
            case .findCoordinator:
                return respond(broker.findCoordinator(try decode(FindCoordinatorRequest.self, &body, version), version: version))
            case .deleteRecords:
                return respond(broker.deleteRecords(try decode(DeleteRecordsRequest.self, &body, version), version: version))
            case .joinGroup:
                return respond(groups.joinGroup(try decode(JoinGroupRequest.self, &body, version), version: version, clientId: clientId, clientHost: clientHost))
            case .syncGroup:
                return respond(groups.syncGroup(try decode(SyncGroupRequest.self, &body, version), version: version))
            case .heartbeat:
                return respond(groups.heartbeat(try decode(HeartbeatRequest.self, &body, version), version: version))
            case .leaveGroup:
                return respond(groups.leaveGroup(try decode(LeaveGroupRequest.self, &body, version), version: version))
            case .offsetCommit:
                return respond(groups.offsetCommit(try decode(OffsetCommitRequest.self, &body, version), version: version))
            case .offsetFetch:
                return respond(groups.offsetFetch(try decode(OffsetFetchRequest.self, &body, version), version: version))
            case .offsetDelete:
                return respond(groups.offsetDelete(try decode(OffsetDeleteRequest.self, &body, version), version: version))
            case .describeGroups:
                return respond(groups.describeGroups(try decode(DescribeGroupsRequest.self, &body, version), version: version))
            case .listGroups:
                return respond(groups.listGroups(try decode(ListGroupsRequest.self, &body, version), version: version))
            case .deleteGroups:
                return respond(groups.deleteGroups(try decode(DeleteGroupsRequest.self, &body, version), version: version))
            case .consumerGroupHeartbeat:
                return respond(groups.consumerGroupHeartbeat(
                    try decode(ConsumerGroupHeartbeatRequest.self, &body, version), version: version, clientId: clientId, clientHost: clientHost))
            case .describeConfigs:
                return respond(broker.describeConfigs(try decode(DescribeConfigsRequest.self, &body, version), version: version))
            case .incrementalAlterConfigs:
                return respond(broker.incrementalAlterConfigs(try decode(IncrementalAlterConfigsRequest.self, &body, version), version: version))
            case .initProducerId:
                let request = try decode(InitProducerIdRequest.self, &body, version)
                if let tid = request.transactionalId, !tid.isEmpty {
                    return respond(broker.initProducerIdTransactional(request, version: version, transactionalId: tid, on: eventLoop))
                }
                return respond(broker.initProducerId(request, version: version))
            case .addPartitionsToTxn:
                return respond(broker.addPartitionsToTxn(try decode(AddPartitionsToTxnRequest.self, &body, version), version: version))
            case .addOffsetsToTxn:
                return respond(broker.addOffsetsToTxn(try decode(AddOffsetsToTxnRequest.self, &body, version), version: version))
            case .txnOffsetCommit:
                return respond(broker.txnOffsetCommit(try decode(TxnOffsetCommitRequest.self, &body, version), version: version))
            case .endTxn:
                return respond(broker.endTxn(try decode(EndTxnRequest.self, &body, version), version: version))
            case .describeTransactions:
                return respond(broker.describeTransactions(try decode(DescribeTransactionsRequest.self, &body, version), version: version))
            case .listTransactions:
                return respond(broker.listTransactions(try decode(ListTransactionsRequest.self, &body, version), version: version))
            case .saslHandshake:
                return respond(broker.saslHandshake(try decode(SaslHandshakeRequest.self, &body, version)))
            case .saslAuthenticate:
                return respond(broker.saslAuthenticate(try decode(SaslAuthenticateRequest.self, &body, version)))
            case .describeAcls:
                return respond(broker.describeAcls(try decode(DescribeAclsRequest.self, &body, version)))
            case .createAcls:
                return respond(broker.createAcls(try decode(CreateAclsRequest.self, &body, version)))
            case .deleteAcls:
                return respond(broker.deleteAcls(try decode(DeleteAclsRequest.self, &body, version)))
            default:
                return .close(reason: "unhandled api \(apiKey)")
            }
        } catch {
            return .close(reason: "malformed \(apiKey) v\(version) request: \(error)")
        }
    }

    private func decode<M: KafkaMessage>(_: M.Type, _ body: inout ByteBuffer, _ version: Int16) throws -> M {
        // Trailing bytes are ignored, as Kafka does: librdkafka 2.16 sends three extra bytes after
        // a Metadata v12 request for all topics, and Kafka accepts it.
        try M(from: &body, version: version)
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
