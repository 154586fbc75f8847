import Foundation
import Logging
import NIOCore
import TernLog
import TernProtocol
import XCTest

@testable import TernGroups

/// Kafka's JoinGroup rules for a member already in the group: an unchanged member rejoining while
/// the group awaits SyncGroup only missed its answer and gets the current generation again; a new
/// rebalance there would never end with clients that rejoin between polls.
final class ClassicRejoinTests: CoordinatorTestCase {
    func testUnchangedMemberRejoiningBeforeSyncGetsTheCurrentGeneration() throws {
        var config = GroupConfig()
        config.initialRebalanceDelayMs = 200  // both members join the first generation
        let fixture = try CoordinatorFixture(dir: dir, topicPartitions: 2, config: config)
        defer { fixture.close() }
        let coordinator = fixture.coordinator

        func join(_ memberId: String, metadata: String = "m") -> EventLoopFuture<JoinGroupResponse> {
            coordinator.joinGroup(
                JoinGroupRequest(groupId: "g", sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000, memberId: memberId,
                                 protocolType: "consumer", protocols: [.init(name: "range", metadata: ByteBuffer(string: metadata))]),
                version: 3, clientId: "c", clientHost: "h")
        }
        let first = join(""), second = join("")
        let (a, b) = (try first.wait(), try second.wait())
        XCTAssertEqual(a.generationId, 1)
        XCTAssertEqual(b.generationId, 1)
        let follower = a.memberId == a.leader ? b.memberId : a.memberId

        let again = try join(follower).wait()
        XCTAssertEqual(again.errorCode, 0)
        XCTAssertEqual(again.generationId, 1, "an unchanged member awaiting SyncGroup does not start a new generation")
        XCTAssertEqual(again.members.count, 0, "a follower is not sent the member list")

        // A changed subscription still rebalances: the answer waits for the next generation.
        let changed = join(follower, metadata: "other")
        XCTAssertEqual(try join(a.leader).wait().generationId, 2)
        XCTAssertEqual(try changed.wait().generationId, 2)
    }
}
