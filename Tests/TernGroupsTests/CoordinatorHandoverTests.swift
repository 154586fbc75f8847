import Foundation
import Logging
import NIOCore
import TernLog
import TernProtocol
import XCTest

@testable import TernGroups

/// A coordinator that loses the leadership of `__consumer_offsets` drops its state and turns
/// waiting members away with NOT_COORDINATOR; one that gains it loads the committed offsets from
/// the log.
final class CoordinatorHandoverTests: CoordinatorTestCase {
    func testResignAnswersWaitingMembersAndTakeOverReloadsCommittedOffsets() throws {
        var config = GroupConfig()
        config.initialRebalanceDelayMs = 60_000  // the join below waits
        let fixture = try CoordinatorFixture(dir: dir, config: config)
        defer { fixture.close() }
        let coordinator = fixture.coordinator

        let commit = OffsetCommitRequest(
            groupId: "standalone", generationIdOrMemberEpoch: -1, memberId: "",
            topics: [.init(name: "t", partitions: [.init(partitionIndex: 1, committedOffset: 42)])])
        let committed = try coordinator.offsetCommit(commit, version: 2).wait()
        XCTAssertEqual(committed.topics.first?.partitions.first?.errorCode, 0)

        let join = coordinator.joinGroup(
            JoinGroupRequest(groupId: "waiting", sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000, memberId: "", protocolType: "consumer",
                             protocols: [.init(name: "range", metadata: ByteBuffer())]),
            version: 3, clientId: "c", clientHost: "h")

        try coordinator.resign([0]).wait()
        XCTAssertEqual(try join.wait().errorCode, KafkaError.notCoordinator.rawValue, "a waiting join is turned away")
        XCTAssertEqual(try fetched(coordinator), -1, "nothing is served from a resigned coordinator's memory")

        try coordinator.takeOver([0]).wait()
        XCTAssertEqual(try fetched(coordinator), 42, "the committed offset is loaded from the log")
    }

    /// With several `__consumer_offsets` partitions, each group's commits go to the partition its
    /// id hashes to (Kafka's rule), and hand-over moves one partition's groups only.
    func testGroupsLiveInThePartitionTheirIdHashesToAndMoveWithIt() throws {
        let fixture = try CoordinatorFixture(dir: dir, offsetsPartitions: 3)
        defer { fixture.close() }
        let (coordinator, logs) = (fixture.coordinator, fixture.logs)
        // Java: "g1".hashCode() = 3242 → partition 2 of 3; "g2" = 3243 → 0; "hello" = 99162322 →
        // 22 of 50; "polygenelubricants" hashes to Integer.MIN_VALUE, which Kafka's abs maps to 0.
        XCTAssertEqual(CoordinatorPartition.of("g1", partitions: 3), 2)
        XCTAssertEqual(CoordinatorPartition.of("g2", partitions: 3), 0)
        XCTAssertEqual(CoordinatorPartition.of("hello", partitions: 50), 22)
        XCTAssertEqual(CoordinatorPartition.of("polygenelubricants", partitions: 50), 0)
        for (group, offset) in [("g1", 10), ("g2", 20)] {
            let commit = OffsetCommitRequest(groupId: group, generationIdOrMemberEpoch: -1, memberId: "",
                                             topics: [.init(name: "t", partitions: [.init(partitionIndex: 1, committedOffset: Int64(offset))])])
            XCTAssertEqual(try coordinator.offsetCommit(commit, version: 2).wait().topics.first?.partitions.first?.errorCode, 0)
        }
        XCTAssertEqual(logs.map(\.logEndOffset), [1, 0, 1], "one record in each group's partition")
        try coordinator.resign([0]).wait()
        XCTAssertEqual(try fetched(coordinator, group: "g1"), 10)
        XCTAssertEqual(try fetched(coordinator, group: "g2"), -1, "g2's partition moved away")
        try coordinator.takeOver([0]).wait()
        XCTAssertEqual(try fetched(coordinator, group: "g2"), 20)
    }

    /// A generation is durable before its members are answered, and a coordinator taking the
    /// group over continues after it: a generation number is never handed out twice (found by
    /// `tern verify`'s groups workload — membership restarted at generation 1 after every move).
    func testGenerationsKeepCountingAcrossAHandOver() throws {
        var config = GroupConfig()
        config.initialRebalanceDelayMs = 0
        let fixture = try CoordinatorFixture(dir: dir, config: config)
        defer { fixture.close() }
        let (coordinator, log) = (fixture.coordinator, fixture.log)
        /// Joins and syncs a lone member; returns its generation and member id.
        func joinAndSync() throws -> (generation: Int32, member: String) {
            var join = JoinGroupRequest(
                groupId: "g", sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000, memberId: "", protocolType: "consumer",
                protocols: [.init(name: "range", metadata: ByteBuffer())])
            var joined = try coordinator.joinGroup(join, version: 3, clientId: "c", clientHost: "h").wait()
            if joined.errorCode == KafkaError.memberIdRequired.rawValue {
                join.memberId = joined.memberId
                joined = try coordinator.joinGroup(join, version: 4, clientId: "c", clientHost: "h").wait()
            }
            XCTAssertEqual(joined.errorCode, 0)
            let synced = try coordinator.syncGroup(
                SyncGroupRequest(groupId: "g", generationId: joined.generationId, memberId: joined.memberId,
                                 assignments: [.init(memberId: joined.memberId, assignment: ByteBuffer())]), version: 3).wait()
            XCTAssertEqual(synced.errorCode, 0)
            return (joined.generationId, joined.memberId)
        }
        let first = try joinAndSync().generation
        XCTAssertEqual(log.logEndOffset, 1, "the generation was written before the member was answered")
        try coordinator.resign([0]).wait()
        try coordinator.takeOver([0]).wait()
        let second = try joinAndSync()
        XCTAssertGreaterThan(second.generation, first)

        // A deleted group leaves no generation behind, in memory or (after compaction) on disk.
        _ = try coordinator.leaveGroup(LeaveGroupRequest(groupId: "g", memberId: second.member), version: 2).wait()
        let end = log.logEndOffset
        XCTAssertEqual(try coordinator.deleteGroups(DeleteGroupsRequest(groupsNames: ["g"]), version: 2).wait().results.first?.errorCode, 0)
        XCTAssertNil(try coordinator.loop.submit { coordinator.store.generations["g"] }.wait())
        XCTAssertGreaterThan(log.logEndOffset, end, "a tombstone for the generation record was written")
    }

    private func fetched(_ coordinator: GroupCoordinator, group: String = "standalone") throws -> Int64? {
        let response = try coordinator.offsetFetch(
            OffsetFetchRequest(groupId: group, topics: [.init(name: "t", partitionIndexes: [1])]), version: 1).wait()
        return response.topics.first?.partitions.first?.committedOffset
    }
}
