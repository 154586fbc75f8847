import NIOCore
import XCTest

@testable import TernGroups

final class AssignmentTests: XCTestCase {
    private func member(_ id: String, _ protocols: [String]) -> GroupMember {
        GroupMember(
            memberId: id, instanceId: nil, clientId: "c", clientHost: "h", sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000,
            protocolType: "consumer", protocols: protocols.map { (name: $0, metadata: ByteBuffer()) })
    }

    func testProtocolVoteAmongCommonAssignors() {
        let g = ConsumerGroup(groupId: "g", now: 0)
        g.add(member("a", ["cooperative-sticky", "range"]))
        g.add(member("b", ["range", "cooperative-sticky"]))
        g.add(member("c", ["range", "roundrobin", "cooperative-sticky"]))
        XCTAssertEqual(g.commonProtocols, ["range", "cooperative-sticky"])
        XCTAssertEqual(g.selectProtocol(), "range")  // two of three prefer it
        g.remove("c")
        // A tie goes to the first member's preference.
        XCTAssertEqual(g.selectProtocol(), "cooperative-sticky")
    }

    func testRemovingTheLeaderPromotesTheNextMember() {
        let g = ConsumerGroup(groupId: "g", now: 0)
        g.add(member("a", ["range"]))
        g.add(member("b", ["range"]))
        g.leaderId = "a"
        g.remove("a")
        XCTAssertEqual(g.leaderId, "b")
        XCTAssertEqual(g.joinOrder, ["b"])
    }

    func testUniformAndRangeTargetsCoverEveryPartitionOnce() {
        for assignor in ["uniform", "range"] {
            let g = ConsumerProtocolGroup(groupId: "g")
            for id in ["m1", "m2", "m3"] {
                let m = ConsumerProtocolGroup.Member(memberId: id, clientId: "c", clientHost: "h")
                m.subscribedTopics = id == "m3" ? ["a"] : ["a", "b"]
                m.assignor = assignor
                g.members[id] = m
            }
            g.computeTarget(partitionCount: { ["a": 7, "b": 4][$0] })
            let all = g.target.values.flatMap { $0 }
            XCTAssertEqual(all.count, 11, assignor)
            XCTAssertEqual(Set(all).count, 11, assignor)
            XCTAssertFalse(g.target["m3"]!.contains { $0.topic == "b" }, "m3 is not subscribed to b")
            let sizes = g.target.values.map { $0.filter { $0.topic == "a" }.count }.sorted()
            XCTAssertEqual(sizes, [2, 2, 3], assignor)
        }
    }

    func testPartitionsStillOwnedElsewhereAreNotGranted() {
        let g = ConsumerProtocolGroup(groupId: "g")
        let a = ConsumerProtocolGroup.Member(memberId: "a", clientId: "c", clientHost: "h")
        let b = ConsumerProtocolGroup.Member(memberId: "b", clientId: "c", clientHost: "h")
        g.members = ["a": a, "b": b]
        a.owned = [TopicPartitionKey(topic: "t", partition: 0)]
        XCTAssertEqual(g.busyPartitions(excluding: "b"), [TopicPartitionKey(topic: "t", partition: 0)])
        XCTAssertEqual(g.busyPartitions(excluding: "a"), [])
    }
}
