import Foundation
import NIOCore
import TernProtocol

/// Sends one request frame (no size prefix) and returns its response frame (no size prefix,
/// starting at the correlation id), or nil when none came in time. In process it is the
/// dispatcher; live it is a socket.
protocol FuzzTransport {
    mutating func roundTrip(_ frame: ByteBuffer, timeout: TimeAmount) -> ByteBuffer?
}

extension FuzzTransport {
    /// A typed request and its decoded response (nil on no answer or an undecodable one).
    mutating func call<Request: KafkaMessage, Response: KafkaMessage>(
        _ request: Request, version: Int16, _: Response.Type, timeout: TimeAmount = .seconds(10)
    ) -> Response? {
        var frame = ByteBuffer()
        RequestHeader(requestApiKey: Request.apiKey, requestApiVersion: version, correlationId: 7, clientId: "tern-fuzz-seed")
            .encode(to: &frame, version: version >= Request.firstFlexibleVersion ? 2 : 1)
        request.encode(to: &frame, version: version)
        guard var answer = roundTrip(frame, timeout: timeout), answer.readInteger(as: Int32.self) == 7 else { return nil }
        if version >= Request.firstFlexibleVersion && Request.apiKey != ApiKey.apiVersions.rawValue {
            guard let tags = try? answer.readUnsignedVarint(), tags == 0 else { return nil }
        }
        return try? Response(from: &answer, version: version)
    }
}

/// The APIs and versions a broker advertises, as its ApiVersions v0 answer lists them.
func advertisedApis<T: FuzzTransport>(_ transport: inout T) -> [(ApiKey, ClosedRange<Int16>)] {
    guard let answer = transport.call(ApiVersionsRequest(), version: 0, ApiVersionsResponse.self) else { return [] }
    return answer.apiKeys.compactMap { api in
        guard let key = ApiKey(rawValue: api.apiKey), api.minVersion <= api.maxVersion else { return nil }
        return (key, api.minVersion...api.maxVersion)
    }
}

/// Gives a broker the state fuzzed requests should meet — topics (one compacted) holding plain,
/// idempotent and transactional batches, an open transaction, a classic group with a member, a
/// consumer-protocol group, committed offsets — and returns what was learned about it. Steps
/// that fail are skipped: the world keeps its defaults and fuzzing goes on.
func seedBroker<T: FuzzTransport>(_ transport: inout T, replicationFactor: Int16 = -1) -> FuzzWorld {
    var world = FuzzWorld()
    let topics = [("fuzz", Int32(3), [CreateTopicsRequest.CreatableTopicConfig]()), ("fuzz-compact", 2, [.init(name: "cleanup.policy", value: "compact")])]
    _ = transport.call(
        CreateTopicsRequest(
            topics: topics.map { .init(name: $0.0, numPartitions: $0.1, replicationFactor: replicationFactor, configs: $0.2) }, timeoutMs: 10000),
        version: 5, CreateTopicsResponse.self)
    if let metadata = transport.call(MetadataRequest(topics: topics.map { .init(name: $0.0) }), version: 12, MetadataResponse.self) {
        world.topicIds = metadata.topics.map(\.topicId).filter { $0 != .zero }
        world.brokers = metadata.brokers.map(\.nodeId) + [-1]
    }
    var plain = FuzzSource(seed: 1, world: world)
    for (topic, partitions, _) in topics {
        for p in 0..<partitions { produce(&transport, topic: topic, partition: p, batch: seedBatch(&plain, producer: nil)) }
    }

    if let idempotent = transport.call(InitProducerIdRequest(transactionTimeoutMs: -1), version: 4, InitProducerIdResponse.self),
        idempotent.errorCode == 0
    {
        world.producerIds.append(idempotent.producerId)
        world.producerEpochs.append(idempotent.producerEpoch)
        produce(&transport, topic: "fuzz", partition: 0, batch: seedBatch(&plain, producer: (idempotent.producerId, idempotent.producerEpoch, false)))
    }
    if let txn = transport.call(
        InitProducerIdRequest(transactionalId: "fuzz-txn", transactionTimeoutMs: 60000), version: 4, InitProducerIdResponse.self),
        txn.errorCode == 0
    {
        world.producerIds.append(txn.producerId)
        world.producerEpochs.append(txn.producerEpoch)
        _ = transport.call(
            AddPartitionsToTxnRequest(
                v3AndBelowTransactionalId: "fuzz-txn", v3AndBelowProducerId: txn.producerId, v3AndBelowProducerEpoch: txn.producerEpoch,
                v3AndBelowTopics: [.init(name: "fuzz", partitions: [1])]),
            version: 3, AddPartitionsToTxnResponse.self)
        produce(
            &transport, topic: "fuzz", partition: 1, batch: seedBatch(&plain, producer: (txn.producerId, txn.producerEpoch, true)),
            transactionalId: "fuzz-txn")
        _ = transport.call(
            AddOffsetsToTxnRequest(transactionalId: "fuzz-txn", producerId: txn.producerId, producerEpoch: txn.producerEpoch, groupId: "fuzz-group"),
            version: 3, AddOffsetsToTxnResponse.self)
    }

    var subscription = ByteBuffer()
    subscription.writeInteger(Int16(1))
    ConsumerProtocolSubscription(topics: ["fuzz", "fuzz-compact"]).encode(to: &subscription, version: 1)
    var join = JoinGroupRequest(
        groupId: "fuzz-group", sessionTimeoutMs: 30000, rebalanceTimeoutMs: 30000, memberId: "", protocolType: "consumer",
        protocols: [.init(name: "range", metadata: subscription)])
    if let required = transport.call(join, version: 5, JoinGroupResponse.self), !required.memberId.isEmpty {
        join.memberId = required.memberId
        if let joined = transport.call(join, version: 5, JoinGroupResponse.self, timeout: .seconds(15)), joined.errorCode == 0 {
            world.members.append(joined.memberId)
            world.generations.append(joined.generationId)
            var assignment = ByteBuffer()
            assignment.writeInteger(Int16(0))
            ConsumerProtocolAssignment(assignedPartitions: [.init(topic: "fuzz", partitions: [0, 1, 2])]).encode(to: &assignment, version: 0)
            _ = transport.call(
                SyncGroupRequest(
                    groupId: "fuzz-group", generationId: joined.generationId, memberId: joined.memberId,
                    assignments: [.init(memberId: joined.memberId, assignment: assignment)]),
                version: 3, SyncGroupResponse.self)
            _ = transport.call(
                OffsetCommitRequest(
                    groupId: "fuzz-group", generationIdOrMemberEpoch: joined.generationId, memberId: joined.memberId,
                    topics: [.init(name: "fuzz", partitions: [.init(partitionIndex: 0, committedOffset: 1, committedMetadata: "m")])]),
                version: 8, OffsetCommitResponse.self)
        }
    }
    let consumerMember = UUID().uuidString
    if let heartbeat = transport.call(
        ConsumerGroupHeartbeatRequest(
            groupId: "fuzz-consumer-group", memberId: consumerMember, memberEpoch: 0, rebalanceTimeoutMs: 30000,
            subscribedTopicNames: ["fuzz"], topicPartitions: []),
        version: 1, ConsumerGroupHeartbeatResponse.self), heartbeat.errorCode == 0
    {
        world.members.append(heartbeat.memberId ?? consumerMember)
        world.generations.append(heartbeat.memberEpoch)
    }
    return world
}

private func produce<T: FuzzTransport>(_ transport: inout T, topic: String, partition: Int32, batch: ByteBuffer, transactionalId: String? = nil) {
    _ = transport.call(
        ProduceRequest(
            transactionalId: transactionalId, acks: -1, timeoutMs: 10000,
            topicData: [.init(name: topic, partitionData: [.init(index: partition, records: .bytes(batch))])]),
        version: 9, ProduceResponse.self)
}

/// A well-formed batch of three keyed records, of a producer (id, epoch, transactional) or none.
private func seedBatch(_ f: inout FuzzSource, producer: (Int64, Int16, Bool)?) -> ByteBuffer {
    var batch = RecordBatch(records: (0..<3).map { i in
        Record(timestamp: Int64(Date().timeIntervalSince1970 * 1000), key: ByteBuffer(string: "k\(i)"), value: ByteBuffer(string: "v\(i)"))
    })
    if let (id, epoch, transactional) = producer {
        batch.producerId = id
        batch.producerEpoch = epoch
        batch.baseSequence = 0
        if transactional { batch.attributes |= 0x10 }
    }
    var out = ByteBuffer()
    try? batch.encode(to: &out)
    return out
}

/// One request frame (no size prefix) chosen by the source: mostly a generated request of an
/// advertised API and version; now and then a version outside the advertised range (the broker
/// must refuse it cleanly).
func generatedFrame(_ f: inout FuzzSource, apis: [(ApiKey, ClosedRange<Int16>)], correlationId: Int32) -> ByteBuffer? {
    guard !apis.isEmpty else { return nil }
    let (key, advertised) = f.pick(apis)
    guard let type = fuzzedRequestTypes[key] else { return nil }
    let schema = key.schemaVersions
    let version: Int16 =
        f.byte() < 248
        ? advertised.lowerBound + Int16(f.below(Int(advertised.upperBound - advertised.lowerBound) + 1))
        : schema.lowerBound + Int16(f.below(Int(schema.upperBound - schema.lowerBound) + 1))
    return fuzzedFrame(type, version: version, correlationId: correlationId, &f)
}
