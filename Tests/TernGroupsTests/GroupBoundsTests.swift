import Foundation
import NIOCore
import TernLog
import TernProtocol
import XCTest

@testable import TernGroups

/// Kafka's bounds on what clients leave in the coordinator: `group.max.size`,
/// `group.consumer.max.size`, and the expiry cycle (`offsets.retention.minutes`) that deletes old
/// offsets and the empty groups they leave behind — durably, with tombstones.
final class GroupBoundsTests: CoordinatorTestCase {
    private let hour: Int64 = 3_600_000

    private func config() -> GroupConfig {
        var config = GroupConfig()
        config.initialRebalanceDelayMs = 100
        config.offsetsRetentionMs = hour
        config.offsetsRetentionCheckIntervalMs = 3_600_000  // cycles run when the test says
        return config
    }

    private func join(_ c: GroupCoordinator, _ group: String, memberId: String = "", protocolType: String = "other")
        -> EventLoopFuture<JoinGroupResponse>
    {
        c.joinGroup(
            JoinGroupRequest(groupId: group, sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000, memberId: memberId,
                             protocolType: protocolType, protocols: [.init(name: "p", metadata: ByteBuffer())]),
            version: 3, clientId: "c", clientHost: "h")
    }

    private func commit(_ c: GroupCoordinator, _ group: String, offset: Int64, at timestamp: Int64 = -1, generation: Int32 = -1,
                        memberId: String = "") throws -> Int16
    {
        let request = OffsetCommitRequest(
            groupId: group, generationIdOrMemberEpoch: generation, memberId: memberId,
            topics: [.init(name: "t", partitions: [.init(partitionIndex: 0, committedOffset: offset, commitTimestamp: timestamp)])])
        // v1 carries each offset's commit timestamp: how a test commits "long ago".
        return try c.offsetCommit(request, version: 1).wait().topics[0].partitions[0].errorCode
    }

    private func committed(_ c: GroupCoordinator, _ group: String) throws -> Int64? {
        try c.offsetFetch(OffsetFetchRequest(groupId: group, topics: [.init(name: "t", partitionIndexes: [0])]), version: 1).wait()
            .topics.first?.partitions.first?.committedOffset
    }

    @discardableResult
    private func expire(_ c: GroupCoordinator, at now: Int64) throws -> (offsets: Int, groups: Int) {
        try c.eventLoop.flatSubmit { c.expireOffsetsAndGroups(now: now) }.wait()
    }

    func testJoinBeyondGroupMaxSizeIsRefusedAndMembersStay() throws {
        var config = config()
        config.maxSize = 2
        let fixture = try CoordinatorFixture(dir: dir, config: config)
        defer { fixture.close() }
        let c = fixture.coordinator
        let (first, second) = (join(c, "g"), join(c, "g"))
        let (a, b) = (try first.wait(), try second.wait())
        XCTAssertEqual([a.errorCode, b.errorCode], [0, 0])

        let third = try join(c, "g").wait()
        XCTAssertEqual(third.errorCode, KafkaError.groupMaxSizeReached.rawValue)
        XCTAssertEqual(third.memberId, "", "a member turned away gets no id")
        let again = try join(c, "g", memberId: b.memberId).wait()
        XCTAssertEqual(again.errorCode, 0, "a member already in a full group may rejoin")
        XCTAssertEqual(again.generationId, a.generationId)
    }

    func testConsumerProtocolJoinBeyondGroupConsumerMaxSizeIsRefused() throws {
        var config = config()
        config.consumerMaxSize = 1
        let fixture = try CoordinatorFixture(dir: dir, config: config)
        defer { fixture.close() }
        let c = fixture.coordinator
        func heartbeat(memberId: String = "", epoch: Int32 = 0) throws -> ConsumerGroupHeartbeatResponse {
            try c.consumerGroupHeartbeat(
                ConsumerGroupHeartbeatRequest(groupId: "g", memberId: memberId, memberEpoch: epoch, rebalanceTimeoutMs: 30_000,
                                              subscribedTopicNames: ["t"], topicPartitions: []),
                version: 0, clientId: "c", clientHost: "h"
            ).wait()
        }
        let first = try heartbeat()
        XCTAssertEqual(first.errorCode, 0)
        XCTAssertEqual(try heartbeat().errorCode, KafkaError.groupMaxSizeReached.rawValue)
        XCTAssertEqual(try heartbeat(memberId: first.memberId!, epoch: first.memberEpoch).errorCode, 0, "the member inside keeps its place")
        XCTAssertEqual(try heartbeat(memberId: first.memberId!, epoch: -1).errorCode, 0)
        XCTAssertEqual(try heartbeat().errorCode, 0, "its place is free once it left")
    }

    func testLeavingAGroupThatDoesNotExistCreatesNothing() throws {
        let fixture = try CoordinatorFixture(dir: dir, config: config())
        defer { fixture.close() }
        let c = fixture.coordinator
        for i in 0..<100 {
            _ = try c.consumerGroupHeartbeat(ConsumerGroupHeartbeatRequest(groupId: "ghost-\(i)", memberId: "m", memberEpoch: -1),
                                             version: 0, clientId: "c", clientHost: "h").wait()
        }
        XCTAssertEqual(try c.eventLoop.submit { c.modernGroups.count + c.groups.count }.wait(), 0)
    }

    func testStandaloneOffsetsExpireFromTheirLastCommitDurably() throws {
        let now = PartitionLog.nowMs()
        do {
            let fixture = try CoordinatorFixture(dir: dir, config: config())
            defer { fixture.close() }
            let c = fixture.coordinator
            XCTAssertEqual(try commit(c, "fresh", offset: 7), 0)
            XCTAssertEqual(try commit(c, "old", offset: 9, at: now - 2 * hour), 0)
            XCTAssertEqual(try commit(c, "recommitted", offset: 1, at: now - 2 * hour), 0)
            XCTAssertEqual(try commit(c, "recommitted", offset: 2), 0)

            XCTAssertEqual(try expire(c, at: now).offsets, 1)
            XCTAssertEqual(try committed(c, "old"), -1)
            XCTAssertEqual(try committed(c, "fresh"), 7)
            XCTAssertEqual(try committed(c, "recommitted"), 2, "retention counts from the last commit")
            XCTAssertEqual(try c.listGroups(ListGroupsRequest(), version: 4).wait().groups.map(\.groupId).sorted(), ["fresh", "recommitted"])
        }
        // The tombstones are in the log: a coordinator loading it does not bring the offset back.
        let fixture = try CoordinatorFixture(dir: dir, config: config())
        defer { fixture.close() }
        XCTAssertEqual(try committed(fixture.coordinator, "old"), -1)
        XCTAssertEqual(try committed(fixture.coordinator, "fresh"), 7)
        XCTAssertEqual(try expire(fixture.coordinator, at: now + hour + 60_000).offsets, 2)
        XCTAssertEqual(try committed(fixture.coordinator, "fresh"), -1)
    }

    /// A classic group's offsets outlive its members by the retention, however old the commits:
    /// a consumer that commits rarely keeps its position while it is in the group.
    func testClassicGroupOffsetsExpireRetentionAfterTheGroupEmptiedAndTheGroupGoes() throws {
        let fixture = try CoordinatorFixture(dir: dir, config: config())
        defer { fixture.close() }
        let c = fixture.coordinator
        let joined = try join(c, "g").wait()
        XCTAssertEqual(joined.errorCode, 0)
        let sync = SyncGroupRequest(groupId: "g", generationId: joined.generationId, memberId: joined.memberId,
                                    assignments: [.init(memberId: joined.memberId, assignment: ByteBuffer())])
        XCTAssertEqual(try c.syncGroup(sync, version: 0).wait().errorCode, 0)
        let longAgo = PartitionLog.nowMs() - 10 * hour
        XCTAssertEqual(try commit(c, "g", offset: 5, at: longAgo, generation: joined.generationId, memberId: joined.memberId), 0)

        XCTAssertEqual(try expire(c, at: PartitionLog.nowMs() + 10 * hour).offsets, 0, "a group with members keeps its offsets")
        _ = try c.leaveGroup(LeaveGroupRequest(groupId: "g", memberId: joined.memberId), version: 0).wait()
        let emptied = PartitionLog.nowMs()
        XCTAssertEqual(try expire(c, at: emptied + hour / 2).offsets, 0, "retention counts from when the group emptied")
        XCTAssertEqual(try committed(c, "g"), 5)

        let cycle = try expire(c, at: emptied + hour + 1000)
        XCTAssertEqual(cycle.offsets, 1)
        XCTAssertEqual(cycle.groups, 1)
        XCTAssertEqual(try committed(c, "g"), -1)
        let described = try c.describeGroups(DescribeGroupsRequest(groups: ["g"]), version: 5).wait().groups[0]
        XCTAssertEqual(described.groupState, "Dead", "the deleted group is gone")
        XCTAssertNil(try c.eventLoop.submit { c.store.generations["g"] }.wait(), "its generation record is tombstoned")
    }

    /// Groups whose members left and that never committed go at the next cycle, whatever their
    /// kind: 2 000 of them leave nothing behind.
    func testEmptyGroupsWithoutOffsetsGoAtTheNextCycle() throws {
        let fixture = try CoordinatorFixture(dir: dir, config: config())
        defer { fixture.close() }
        let c = fixture.coordinator
        for i in 0..<1000 {
            let joined = try c.consumerGroupHeartbeat(
                ConsumerGroupHeartbeatRequest(groupId: "modern-\(i)", memberEpoch: 0, rebalanceTimeoutMs: 30_000, subscribedTopicNames: ["t"],
                                              topicPartitions: []),
                version: 0, clientId: "c", clientHost: "h"
            ).wait()
            _ = try c.consumerGroupHeartbeat(ConsumerGroupHeartbeatRequest(groupId: "modern-\(i)", memberId: joined.memberId!, memberEpoch: -1),
                                             version: 0, clientId: "c", clientHost: "h").wait()
            // Refused joins (a protocol nobody else speaks) leave an empty group object behind.
            _ = try join(c, "classic-\(i)", memberId: "unknown").wait()
        }
        XCTAssertEqual(try c.eventLoop.submit { c.modernGroups.count + c.groups.count }.wait(), 2000)
        XCTAssertEqual(try expire(c, at: PartitionLog.nowMs()).groups, 2000)
        XCTAssertEqual(try c.eventLoop.submit { c.modernGroups.count + c.groups.count }.wait(), 0)
    }
}
