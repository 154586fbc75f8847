import Foundation
import NIOCore
import TernProtocol

/// Client side of a classic consumer group: joins, runs the range assignor when it leads,
/// heartbeats, rejoins on rebalance, and commits within its generation. Every request has a
/// timeout (the client's, and for JoinGroup the rebalance timeout on top); a coordinator that
/// moved, or a connection that failed, is looked up again by the next request.
public final class GroupMember {
    public let group: String
    let topics: [String]
    let client: KafkaClient
    let sessionTimeoutMs: Int32
    let rebalanceTimeoutMs: Int32
    public private(set) var memberId = ""
    public private(set) var generation: Int32 = -1
    public private(set) var assignment: [TopicPartition] = []
    private var connection: BrokerConnection?

    public init(client: KafkaClient, group: String, topics: [String], sessionTimeoutMs: Int32 = 10_000, rebalanceTimeoutMs: Int32 = 60_000) {
        self.client = client
        self.group = group
        self.topics = topics
        self.sessionTimeoutMs = sessionTimeoutMs
        self.rebalanceTimeoutMs = rebalanceTimeoutMs
    }

    private var requestTimeout: Duration { client.requestTimeout ?? .seconds(30) }

    /// The coordinator's connection, found again after it failed or the coordinator moved.
    private func coordinator() async throws -> BrokerConnection {
        if let connection, connection.isActive { return connection }
        let found = try await client.coordinator(group: group)
        connection = found
        return found
    }

    /// Sends on the coordinator's connection; a failure or an answer naming another coordinator
    /// (`moved`) makes the next request look the coordinator up again.
    private func send<Request: KafkaMessage, Response: KafkaMessage>(
        _ request: Request, _ api: ApiKey, max: Int16, as: Response.Type, timeout: Duration? = nil, code: (Response) -> Int16
    ) async throws -> Response {
        let c = try await coordinator()
        do {
            let response = try await c.send(request, version: try c.version(api, max: max), as: Response.self, timeout: timeout ?? requestTimeout)
            if Self.coordinatorMoved.contains(code(response)) { connection = nil }
            return response
        } catch {
            connection = nil
            throw error
        }
    }

    /// COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR.
    static let coordinatorMoved: Set<Int16> = [14, 15, 16]

    /// Joins (or rejoins) and returns this member's partitions.
    public func join() async throws -> [TopicPartition] {
        var subscription = ByteBuffer()
        subscription.writeInteger(0 as Int16)
        ConsumerProtocolSubscription(topics: topics).encode(to: &subscription, version: 0)
        while true {
            let request = JoinGroupRequest(
                groupId: group, sessionTimeoutMs: sessionTimeoutMs, rebalanceTimeoutMs: rebalanceTimeoutMs, memberId: memberId,
                protocolType: "consumer", protocols: [.init(name: "range", metadata: subscription)])
            let joined = try await send(
                request, .joinGroup, max: 5, as: JoinGroupResponse.self, timeout: requestTimeout + .milliseconds(Int(rebalanceTimeoutMs)), code: \.errorCode)
            if joined.errorCode == 79 || joined.errorCode == 25 {  // MEMBER_ID_REQUIRED / UNKNOWN_MEMBER_ID
                memberId = joined.errorCode == 79 ? joined.memberId : ""
                continue
            }
            guard joined.errorCode == 0 else { throw ClientError.kafka(code: joined.errorCode, context: "join group \(group)") }
            memberId = joined.memberId
            generation = joined.generationId
            let assignments = joined.leader == memberId ? try await rangeAssign(joined.members) : []
            let synced = try await send(
                SyncGroupRequest(groupId: group, generationId: generation, memberId: memberId, assignments: assignments),
                .syncGroup, max: 3, as: SyncGroupResponse.self, timeout: requestTimeout + .milliseconds(Int(rebalanceTimeoutMs)), code: \.errorCode)
            if synced.errorCode == 27 { continue }  // REBALANCE_IN_PROGRESS: join again
            guard synced.errorCode == 0 else { throw ClientError.kafka(code: synced.errorCode, context: "sync group \(group)") }
            var bytes = synced.assignment
            assignment = []
            if bytes.readableBytes >= 2, let v = bytes.readInteger(as: Int16.self) {
                let decoded = try ConsumerProtocolAssignment(from: &bytes, version: min(v, 3))
                for tp in decoded.assignedPartitions {
                    assignment += tp.partitions.map { TopicPartition(topic: tp.topic, partition: $0) }
                }
            }
            return assignment.sorted()
        }
    }

    /// The range assignor: per topic, contiguous partition ranges over the members subscribed to it.
    private func rangeAssign(_ members: [JoinGroupResponse.JoinGroupResponseMember]) async throws -> [SyncGroupRequest.SyncGroupRequestAssignment] {
        var subscriptions: [String: [String]] = [:]
        for m in members {
            var meta = m.metadata
            guard let v = meta.readInteger(as: Int16.self) else { continue }
            subscriptions[m.memberId] = try ConsumerProtocolSubscription(from: &meta, version: min(v, 3)).topics
        }
        var assigned: [String: [String: [Int32]]] = [:]
        for topic in Set(subscriptions.values.flatMap { $0 }).sorted() {
            let count = Int32((try? await client.refreshMetadata(topics: [topic]))?.topics.first?.partitions.count ?? 0)
            let subscribers = subscriptions.filter { $0.value.contains(topic) }.keys.sorted()
            guard !subscribers.isEmpty, count > 0 else { continue }
            let per = Int(count) / subscribers.count, extra = Int(count) % subscribers.count
            var p: Int32 = 0
            for (i, member) in subscribers.enumerated() {
                for _ in 0..<(per + (i < extra ? 1 : 0)) {
                    assigned[member, default: [:]][topic, default: []].append(p)
                    p += 1
                }
            }
        }
        return members.map { m in
            var bytes = ByteBuffer()
            bytes.writeInteger(0 as Int16)
            let parts = (assigned[m.memberId] ?? [:]).sorted { $0.key < $1.key }.map {
                ConsumerProtocolAssignment.TopicPartition(topic: $0.key, partitions: $0.value)
            }
            ConsumerProtocolAssignment(assignedPartitions: parts).encode(to: &bytes, version: 0)
            return .init(memberId: m.memberId, assignment: bytes)
        }
    }

    /// One heartbeat; false when the group is rebalancing and this member must `join` again.
    public func heartbeat() async throws -> Bool {
        guard generation >= 0 else { return false }
        let r = try await send(
            HeartbeatRequest(groupId: group, generationId: generation, memberId: memberId), .heartbeat, max: 3, as: HeartbeatResponse.self,
            code: \.errorCode)
        if r.errorCode == 27 || r.errorCode == 22 || r.errorCode == 25 { return false }
        guard r.errorCode == 0 else { throw ClientError.kafka(code: r.errorCode, context: "heartbeat") }
        return true
    }

    public func commit(_ offsets: [TopicPartition: Int64]) async throws {
        guard !offsets.isEmpty else { return }
        let byTopic = Dictionary(grouping: offsets, by: { $0.key.topic })
        let request = OffsetCommitRequest(
            groupId: group, generationIdOrMemberEpoch: generation, memberId: memberId,
            topics: byTopic.map { topic, entries in
                .init(name: topic, partitions: entries.map { .init(partitionIndex: $0.key.partition, committedOffset: $0.value) })
            })
        let response = try await send(request, .offsetCommit, max: 7, as: OffsetCommitResponse.self) { r in
            r.topics.flatMap(\.partitions).map(\.errorCode).first { $0 != 0 } ?? 0
        }
        for t in response.topics {
            for p in t.partitions where p.errorCode != 0 {
                throw ClientError.kafka(code: p.errorCode, context: "commit \(t.name)[\(p.partitionIndex)]")
            }
        }
    }

    /// The group's committed offsets for this member's partitions.
    public func committed() async throws -> [TopicPartition: Int64] {
        let all = try await client.committedOffsets(group: group)
        var out: [TopicPartition: Int64] = [:]
        for tp in assignment { if let o = all[tp.topic]?[tp.partition] { out[tp] = o } }
        return out
    }

    public func leave() async {
        guard !memberId.isEmpty else { return }
        _ = try? await send(LeaveGroupRequest(groupId: group, memberId: memberId), .leaveGroup, max: 2, as: LeaveGroupResponse.self, code: \.errorCode)
        forget()
    }

    /// Stops without leaving, as a crashed process would: the coordinator expels the member when
    /// its session times out. A later `join` is a new member.
    public func abandon() async {
        await connection?.close()
        connection = nil
        forget()
    }

    private func forget() {
        memberId = ""
        generation = -1
        assignment = []
    }
}
