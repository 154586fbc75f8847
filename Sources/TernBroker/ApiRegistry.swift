import NIOCore
import TernProtocol

/// What a handler needs besides its decoded request.
struct RequestContext {
    let broker: Broker
    let eventLoop: EventLoop
    let version: Int16
    let correlationId: Int32
    let clientId: String
    let clientHost: String
    /// Response header v1 (tagged fields) for flexible versions — except ApiVersions, always v0.
    let flexibleResponseHeader: Bool

    /// The response frame once `response` completes.
    func answer<M: KafkaMessage>(_ response: EventLoopFuture<M>) -> DispatchOutcome {
        .respond(response.map { [version, correlationId, flexibleResponseHeader] in
            RequestDispatcher.frame($0, version: version, correlationId: correlationId, flexibleHeader: flexibleResponseHeader)
        })
    }
}

/// One API the broker answers: its key, the versions advertised in ApiVersions and the versions
/// actually served, and the handler. Each API is registered exactly once (`ApiRegistry.all`), and
/// both ApiVersions and the dispatcher read that one table, so what is advertised and what is
/// served cannot drift apart.
///
/// The advertised ranges are Kafka 4.0.1's (`KafkaFaceTests` holds its table; clients
/// fingerprint a broker by them, and kafka-python pinned to a release uses that release's
/// versions; the codecs of the few 4.0 added after the shared schemas come from
/// `TernProtocolGenerator/Kafka40Schemas`). Kafka 4.0 still
/// advertises Produce 0-2 (librdkafka before 2.11.1 sends gzip, snappy and lz4 only when Produce 0
/// is in range, KAFKA-18659) but refuses those message formats; so does Tern, with
/// `refuseUnserved`. A version outside the advertised range closes the connection, as Kafka does.
struct ApiRegistration: Sendable {
    typealias Handler = @Sendable (inout ByteBuffer, RequestContext) throws -> DispatchOutcome
    let key: ApiKey
    let advertised: ClosedRange<Int16>
    let served: ClosedRange<Int16>
    /// Decodes the body (the reader is past the request header) and starts the work.
    private(set) var handle: Handler
    /// Answers a request of an advertised but unserved version with UNSUPPORTED_VERSION.
    var refuseUnserved: Handler? = nil

    /// A request answered at once.
    static func immediate<Request: KafkaMessage, Response: KafkaMessage>(
        _ key: ApiKey, advertised: ClosedRange<Int16>, served: ClosedRange<Int16>? = nil,
        _ body: @escaping @Sendable (Request, RequestContext) -> Response
    ) -> ApiRegistration {
        ApiRegistration(key: key, advertised: advertised, served: served ?? advertised) { bytes, context in
            let request = try Request(from: &bytes, version: context.version)
            return context.answer(context.eventLoop.makeSucceededFuture(body(request, context)))
        }
    }

    /// The same registration, answering unserved versions with `body`'s response.
    func refusing<Request: KafkaMessage, Response: KafkaMessage>(_ body: @escaping @Sendable (Request, RequestContext) -> Response?) -> ApiRegistration {
        var copy = self
        copy.refuseUnserved = { bytes, context in
            let request = try Request(from: &bytes, version: context.version)
            guard let response = body(request, context) else { return .noResponse }
            return context.answer(context.eventLoop.makeSucceededFuture(response))
        }
        return copy
    }

    /// The same registration for a coordinator API: in a cluster, a request for keys (group or
    /// transactional ids, `keys`) this broker does not coordinate gets `refuse`'s NOT_COORDINATOR
    /// response instead. A request naming several keys is served only if all are coordinated here
    /// (clients batch keys by coordinator, so a mixed request is a stale client view: refusing it
    /// whole sends the client to FindCoordinator for each).
    func coordinated<Request: KafkaMessage, Response: KafkaMessage>(
        _ kind: CoordinatorKind, keys: @escaping @Sendable (Request, Int16) -> [String],
        _ refuse: @escaping @Sendable (Request, Int16) -> Response
    ) -> ApiRegistration {
        var copy = self
        let inner = handle
        copy.handle = { bytes, context in
            guard context.broker.cluster != nil else { return try inner(&bytes, context) }
            var peek = bytes
            let request = try Request(from: &peek, version: context.version)
            guard !context.broker.coordinates(kind, keys(request, context.version)) else { return try inner(&bytes, context) }
            bytes = peek
            return context.answer(context.eventLoop.makeSucceededFuture(refuse(request, context.version)))
        }
        return copy
    }

    /// A request answered when its future completes (disk writes, long polls, coordinators).
    static func later<Request: KafkaMessage, Response: KafkaMessage>(
        _ key: ApiKey, advertised: ClosedRange<Int16>, served: ClosedRange<Int16>? = nil,
        _ body: @escaping @Sendable (Request, RequestContext) -> EventLoopFuture<Response>
    ) -> ApiRegistration {
        ApiRegistration(key: key, advertised: advertised, served: served ?? advertised) { bytes, context in
            let request = try Request(from: &bytes, version: context.version)
            return context.answer(body(request, context))
        }
    }
}

enum ApiRegistry {
    static let all: [ApiRegistration] = [
        ApiRegistration(key: .produce, advertised: 0...12, served: 3...12) { bytes, c in
            let request = try ProduceRequest(from: &bytes, version: c.version)
            // acks=0: nothing is sent back.
            guard let response = c.broker.produce(request, version: c.version, on: c.eventLoop) else { return .noResponse }
            return c.answer(response)
        }.refusing { (r: ProduceRequest, c) in Broker.refusedProduce(r) },
        .later(.fetch, advertised: 4...17) { (r: FetchRequest, c) in c.broker.fetch(r, version: c.version, on: c.eventLoop) },
        .immediate(.listOffsets, advertised: 1...10) { (r: ListOffsetsRequest, c) in c.broker.listOffsets(r, version: c.version) },
        .immediate(.offsetForLeaderEpoch, advertised: 2...4) { (r: OffsetForLeaderEpochRequest, c) in
            c.broker.offsetForLeaderEpoch(r, version: c.version)
        },
        .immediate(.metadata, advertised: 0...13) { (r: MetadataRequest, c) in c.broker.metadata(r, version: c.version) },
        .immediate(.describeCluster, advertised: 0...2) { (r: DescribeClusterRequest, c) in c.broker.describeCluster(r, version: c.version) },
        .immediate(.describeTopicPartitions, advertised: 0...0) { (r: DescribeTopicPartitionsRequest, c) in
            c.broker.describeTopicPartitions(r, version: c.version)
        },
        .immediate(.findCoordinator, advertised: 0...6) { (r: FindCoordinatorRequest, c) in c.broker.findCoordinator(r, version: c.version) },
        .later(.offsetCommit, advertised: 2...9) { (r: OffsetCommitRequest, c) in c.broker.groups.offsetCommit(r, version: c.version) }
            .coordinated(.group, keys: { r, _ in [r.groupId] }, CoordinatorRefusals.offsetCommit),
        .later(.offsetFetch, advertised: 1...9) { (r: OffsetFetchRequest, c) in c.broker.groups.offsetFetch(r, version: c.version) }
            .coordinated(.group, keys: { r, v in v >= 8 ? r.groups.map(\.groupId) : [r.groupId] }, CoordinatorRefusals.offsetFetch),
        .later(.joinGroup, advertised: 0...9) { (r: JoinGroupRequest, c) in
            c.broker.groups.joinGroup(r, version: c.version, clientId: c.clientId, clientHost: c.clientHost)
        }.coordinated(.group, keys: { (r: JoinGroupRequest, _) in [r.groupId] }) { (_: JoinGroupRequest, _) in JoinGroupResponse(errorCode: CoordinatorRefusals.code) },
        .later(.heartbeat, advertised: 0...4) { (r: HeartbeatRequest, c) in c.broker.groups.heartbeat(r, version: c.version) }
            .coordinated(.group, keys: { (r: HeartbeatRequest, _) in [r.groupId] }) { (_: HeartbeatRequest, _) in HeartbeatResponse(errorCode: CoordinatorRefusals.code) },
        .later(.leaveGroup, advertised: 0...5) { (r: LeaveGroupRequest, c) in c.broker.groups.leaveGroup(r, version: c.version) }
            .coordinated(.group, keys: { (r: LeaveGroupRequest, _) in [r.groupId] }) { (_: LeaveGroupRequest, _) in LeaveGroupResponse(errorCode: CoordinatorRefusals.code) },
        .later(.syncGroup, advertised: 0...5) { (r: SyncGroupRequest, c) in c.broker.groups.syncGroup(r, version: c.version) }
            .coordinated(.group, keys: { (r: SyncGroupRequest, _) in [r.groupId] }) { (_: SyncGroupRequest, _) in SyncGroupResponse(errorCode: CoordinatorRefusals.code) },
        .later(.describeGroups, advertised: 0...6) { (r: DescribeGroupsRequest, c) in c.broker.groups.describeGroups(r, version: c.version) }
            .coordinated(.group, keys: { (r: DescribeGroupsRequest, _) in r.groups }) { (r: DescribeGroupsRequest, _) in DescribeGroupsResponse(groups: r.groups.map { .init(errorCode: CoordinatorRefusals.code, groupId: $0) }) },
        .later(.listGroups, advertised: 0...5) { (r: ListGroupsRequest, c) in c.broker.groups.listGroups(r, version: c.version) },
        .later(.deleteGroups, advertised: 0...2) { (r: DeleteGroupsRequest, c) in c.broker.groups.deleteGroups(r, version: c.version) }
            .coordinated(.group, keys: { (r: DeleteGroupsRequest, _) in r.groupsNames }) { (r: DeleteGroupsRequest, _) in DeleteGroupsResponse(results: r.groupsNames.map { .init(groupId: $0, errorCode: CoordinatorRefusals.code) }) },
        .later(.offsetDelete, advertised: 0...0) { (r: OffsetDeleteRequest, c) in c.broker.groups.offsetDelete(r, version: c.version) }
            .coordinated(.group, keys: { (r: OffsetDeleteRequest, _) in [r.groupId] }) { (_: OffsetDeleteRequest, _) in OffsetDeleteResponse(errorCode: CoordinatorRefusals.code) },
        .later(.consumerGroupDescribe, advertised: 0...1) { (r: ConsumerGroupDescribeRequest, c) in
            c.broker.groups.consumerGroupDescribe(r, version: c.version)
        }.coordinated(.group, keys: { (r: ConsumerGroupDescribeRequest, _) in r.groupIds }) { (r: ConsumerGroupDescribeRequest, _) in
            ConsumerGroupDescribeResponse(groups: r.groupIds.map { .init(errorCode: CoordinatorRefusals.code, groupId: $0) })
        },
        // KIP-848; librdkafka's group.protocol=consumer needs exactly v1.
        .later(.consumerGroupHeartbeat, advertised: 0...1) { (r: ConsumerGroupHeartbeatRequest, c) in
            c.broker.groups.consumerGroupHeartbeat(r, version: c.version, clientId: c.clientId, clientHost: c.clientHost)
        }.coordinated(.group, keys: { (r: ConsumerGroupHeartbeatRequest, _) in [r.groupId] }) { (_: ConsumerGroupHeartbeatRequest, _) in ConsumerGroupHeartbeatResponse(errorCode: CoordinatorRefusals.code) },
        .immediate(.apiVersions, advertised: 0...4) { (r: ApiVersionsRequest, c) in c.broker.apiVersions(r, version: c.version) },
        // Cluster mode: the controller's, through etcd (`Broker+ClusterAdmin`).
        .later(.createTopics, advertised: 2...7) { (r: CreateTopicsRequest, c) in
            c.broker.cluster == nil
                ? c.eventLoop.makeSucceededFuture(c.broker.createTopics(r, version: c.version))
                : c.broker.createTopicsInCluster(r, version: c.version, on: c.eventLoop)
        },
        .later(.createPartitions, advertised: 0...3) { (r: CreatePartitionsRequest, c) in
            c.broker.cluster == nil
                ? c.eventLoop.makeSucceededFuture(c.broker.createPartitions(r, version: c.version))
                : c.broker.createPartitionsInCluster(r, version: c.version, on: c.eventLoop)
        },
        .later(.deleteTopics, advertised: 1...6) { (r: DeleteTopicsRequest, c) in
            c.broker.cluster == nil
                ? c.eventLoop.makeSucceededFuture(c.broker.deleteTopics(r, version: c.version))
                : c.broker.deleteTopicsInCluster(r, version: c.version, on: c.eventLoop)
        },
        .later(.initProducerId, advertised: 0...5) { (r: InitProducerIdRequest, c) in
            if let id = r.transactionalId, !id.isEmpty {
                guard c.broker.coordinates(.transaction, [id]) else {
                    return c.eventLoop.makeSucceededFuture(InitProducerIdResponse(errorCode: CoordinatorRefusals.code))
                }
                return c.broker.initProducerIdTransactional(r, version: c.version, transactionalId: id, on: c.eventLoop)
            }
            return c.eventLoop.makeSucceededFuture(c.broker.initProducerId(r, version: c.version))
        },
        .later(.addPartitionsToTxn, advertised: 0...5) { (r: AddPartitionsToTxnRequest, c) in
            c.broker.addPartitionsToTxn(r, version: c.version, on: c.eventLoop)
        }.coordinated(.transaction, keys: { r, v in v >= 4 ? r.transactions.map(\.transactionalId) : [r.v3AndBelowTransactionalId] }, CoordinatorRefusals.addPartitionsToTxn),
        .later(.addOffsetsToTxn, advertised: 0...4) { (r: AddOffsetsToTxnRequest, c) in c.broker.addOffsetsToTxn(r, version: c.version) }
            .coordinated(.transaction, keys: { (r: AddOffsetsToTxnRequest, _) in [r.transactionalId] }) { (_: AddOffsetsToTxnRequest, _) in AddOffsetsToTxnResponse(errorCode: CoordinatorRefusals.code) },
        .later(.writeTxnMarkers, advertised: 1...1) { (r: WriteTxnMarkersRequest, c) in
            c.broker.writeTxnMarkers(r, version: c.version, on: c.eventLoop)
        },
        .later(.endTxn, advertised: 0...5) { (r: EndTxnRequest, c) in c.broker.endTxn(r, version: c.version) }
            .coordinated(.transaction, keys: { (r: EndTxnRequest, _) in [r.transactionalId] }) { (_: EndTxnRequest, _) in EndTxnResponse(errorCode: CoordinatorRefusals.code) },
        .later(.txnOffsetCommit, advertised: 0...5) { (r: TxnOffsetCommitRequest, c) in c.broker.txnOffsetCommit(r, version: c.version, on: c.eventLoop) }
            .coordinated(.group, keys: { r, _ in [r.groupId] }, CoordinatorRefusals.txnOffsetCommit),
        .immediate(.describeTransactions, advertised: 0...0) { (r: DescribeTransactionsRequest, c) in c.broker.describeTransactions(r, version: c.version) }
            .coordinated(.transaction, keys: { (r: DescribeTransactionsRequest, _) in r.transactionalIds }) { (r: DescribeTransactionsRequest, _) in
                DescribeTransactionsResponse(transactionStates: r.transactionalIds.map { .init(errorCode: CoordinatorRefusals.code, transactionalId: $0) })
            },
        .immediate(.listTransactions, advertised: 0...1) { (r: ListTransactionsRequest, c) in c.broker.listTransactions(r, version: c.version) },
        .later(.electLeaders, advertised: 0...2) { (r: ElectLeadersRequest, c) in c.broker.electLeaders(r, version: c.version, on: c.eventLoop) },
        .later(.alterPartitionReassignments, advertised: 0...0) { (r: AlterPartitionReassignmentsRequest, c) in
            c.broker.alterPartitionReassignments(r, on: c.eventLoop)
        },
        .immediate(.listPartitionReassignments, advertised: 0...0) { (r: ListPartitionReassignmentsRequest, c) in
            c.broker.listPartitionReassignments(r)
        },
        .immediate(.describeLogDirs, advertised: 1...4) { (r: DescribeLogDirsRequest, c) in c.broker.describeLogDirs(r, version: c.version) },
        .immediate(.alterReplicaLogDirs, advertised: 1...2) { (r: AlterReplicaLogDirsRequest, c) in
            c.broker.alterReplicaLogDirs(r, version: c.version)
        },
        // KIP-714 client metrics subscriptions are not supported, so there are none to list (API 74,
        // renamed ListConfigResources in Kafka 4.1 with more resource types in v1).
        .immediate(.listClientMetricsResources, advertised: 0...0) { (_: ListClientMetricsResourcesRequest, _) in
            ListClientMetricsResourcesResponse(errorCode: 0, clientMetricsResources: [])
        },
        .immediate(.describeProducers, advertised: 0...0) { (r: DescribeProducersRequest, c) in c.broker.describeProducers(r, version: c.version) },
        .immediate(.deleteRecords, advertised: 0...2) { (r: DeleteRecordsRequest, c) in c.broker.deleteRecords(r, version: c.version) },
        .immediate(.describeConfigs, advertised: 1...4) { (r: DescribeConfigsRequest, c) in c.broker.describeConfigs(r, version: c.version) },
        .later(.alterConfigs, advertised: 0...2) { (r: AlterConfigsRequest, c) in
            c.broker.alteringConfigs(on: c.eventLoop) { writers in c.broker.alterConfigs(r, version: c.version, writers: writers) }
        },
        .later(.incrementalAlterConfigs, advertised: 0...1) { (r: IncrementalAlterConfigsRequest, c) in
            c.broker.alteringConfigs(on: c.eventLoop) { writers in c.broker.incrementalAlterConfigs(r, version: c.version, writers: writers) }
        },
        // Answered as Kafka does on a PLAINTEXT listener without an authorizer (ILLEGAL_SASL_STATE,
        // SECURITY_DISABLED). SaslHandshake and SaslAuthenticate are advertised together (client-compat §16).
        .immediate(.saslHandshake, advertised: 0...1) { (r: SaslHandshakeRequest, c) in c.broker.saslHandshake(r) },
        .immediate(.saslAuthenticate, advertised: 0...2) { (r: SaslAuthenticateRequest, c) in c.broker.saslAuthenticate(r) },
        .immediate(.describeAcls, advertised: 1...3) { (r: DescribeAclsRequest, c) in c.broker.describeAcls(r) },
        .immediate(.createAcls, advertised: 1...3) { (r: CreateAclsRequest, c) in c.broker.createAcls(r) },
        .immediate(.deleteAcls, advertised: 1...3) { (r: DeleteAclsRequest, c) in c.broker.deleteAcls(r) },
    ]

    static let byKey: [ApiKey: ApiRegistration] = {
        let table = Dictionary(all.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in
            preconditionFailure("API \(first.key) registered twice")
        })
        for r in all {
            precondition(r.advertised.contains(r.served), "\(r.key): served versions must be advertised")
            precondition(r.key.schemaVersions.contains(r.advertised), "\(r.key): advertised versions beyond the schema")
        }
        return table
    }()

    public static func serves(_ key: ApiKey, version: Int16) -> Bool {
        byKey[key]?.served.contains(version) ?? false
    }

    /// The ApiVersions list: exactly the registrations.
    static var apiVersionsList: [ApiVersionsResponse.ApiVersion] {
        all.map { ApiVersionsResponse.ApiVersion(apiKey: $0.key.rawValue, minVersion: $0.advertised.lowerBound, maxVersion: $0.advertised.upperBound) }
            .sorted { $0.apiKey < $1.apiKey }
    }
}
