import Foundation
import XCTest

@testable import TernCluster

/// Reassignment's rules (KIP-455), case by case: they are pure functions of a partition's state.
final class PartitionReassignmentTests: XCTestCase {
    private let alive: Set<Int32> = [1, 2, 3, 4]

    private func start(_ p: PartitionState, _ target: [Int32], registered: Set<Int32>? = nil) throws -> PartitionState? {
        let registered = registered ?? alive
        return try PartitionReassignment.start(p, target: target, isRegistered: { registered.contains($0) }, eligible: { self.alive.contains($0) })
    }

    private func complete(_ p: PartitionState, alive: Set<Int32>? = nil) -> PartitionState? {
        let alive = alive ?? self.alive
        return PartitionReassignment.complete(p, eligible: { alive.contains($0) })
    }

    private let steady = PartitionState(replicas: [1, 2, 3], isr: [1, 2, 3], leader: 3, leaderEpoch: 7, partitionEpoch: 20)

    func testStartingAddsTheNewReplicasAndKeepsTheOldOnesUntilTheNewAreInSync() throws {
        let moving = try XCTUnwrap(start(steady, [1, 2, 4]))
        XCTAssertEqual(moving.replicas, [1, 2, 4, 3], "target first, then the replicas being removed")
        XCTAssertEqual(moving.adding, [4])
        XCTAssertEqual(moving.removing, [3])
        XCTAssertEqual(moving.isr, [1, 2, 3], "a newcomer is not in sync until its leader says so")
        XCTAssertEqual(moving.leader, 3, "leadership does not move before the new replicas have the data")
        XCTAssertEqual(moving.leaderEpoch, 7)
        XCTAssertEqual(moving.partitionEpoch, 21)
        XCTAssertTrue(moving.isReassigning)
        XCTAssertNil(complete(moving), "replica 4 has not caught up")
    }

    func testCompletingDropsTheRemovedReplicasAndMovesARemovedLeader() throws {
        var moving = try XCTUnwrap(start(steady, [1, 2, 4]))
        moving.isr = [1, 2, 4, 3]  // 4 caught up: its leader grew the ISR
        let done = try XCTUnwrap(complete(moving))
        XCTAssertEqual(done, PartitionState(replicas: [1, 2, 4], isr: [1, 2, 4], leader: 1, leaderEpoch: 8, partitionEpoch: 22))
        XCTAssertFalse(done.isReassigning)
    }

    func testARemovedLeaderWaitsWhenNoNewReplicaIsAlive() throws {
        var moving = try XCTUnwrap(start(PartitionState(replicas: [3], isr: [3], leader: 3), [4]))
        moving.isr = [4, 3]
        XCTAssertNil(complete(moving, alive: [3]), "broker 4 died after catching up: nobody to hand over to yet")
        XCTAssertEqual(complete(moving, alive: [3, 4])?.leader, 4)
    }

    func testAKeptLeaderKeepsItsEpoch() throws {
        var moving = try XCTUnwrap(start(steady, [3, 4]))
        moving.isr = [3, 4, 1, 2]
        let done = try XCTUnwrap(complete(moving))
        XCTAssertEqual(done.replicas, [3, 4])
        XCTAssertEqual(done.leader, 3)
        XCTAssertEqual(done.leaderEpoch, 7)
    }

    func testReorderingOrShrinkingCompletesAtOnce() throws {
        let reordered = try XCTUnwrap(start(steady, [3, 2, 1]))
        XCTAssertEqual(reordered, PartitionState(replicas: [3, 2, 1], isr: [3, 2, 1], leader: 3, leaderEpoch: 7, partitionEpoch: 21))
        let shrunk = try XCTUnwrap(start(steady, [1, 2]))
        XCTAssertEqual(shrunk, PartitionState(replicas: [1, 2], isr: [1, 2], leader: 1, leaderEpoch: 8, partitionEpoch: 21))
        XCTAssertNil(try start(steady, [1, 2, 3]), "the same list changes nothing")
    }

    func testAShrinkToAnOutOfSyncReplicaWaitsForIt() throws {
        let lagging = PartitionState(replicas: [1, 2, 3], isr: [1, 2], leader: 1)
        let moving = try XCTUnwrap(start(lagging, [3]))
        XCTAssertEqual(moving.removing, [1, 2])
        XCTAssertEqual(moving.adding, [])
        XCTAssertEqual(moving.leader, 1)
        XCTAssertNil(complete(moving), "replica 3 lacks records the ISR has")
    }

    func testInvalidTargetsAreRefusedWithKafkasReasons() {
        XCTAssertThrowsError(try start(steady, [])) { XCTAssertEqual($0 as? PartitionReassignment.Refusal, .invalidAssignment("The manual partition assignment includes an empty replica list.")) }
        XCTAssertThrowsError(try start(steady, [1, 1, 2])) { error in
            guard case .invalidAssignment(let m)? = error as? PartitionReassignment.Refusal else { return XCTFail("\(error)") }
            XCTAssertTrue(m.contains("duplicate"), m)
        }
        XCTAssertThrowsError(try start(steady, [1, 2, 9])) { error in
            guard case .invalidAssignment(let m)? = error as? PartitionReassignment.Refusal else { return XCTFail("\(error)") }
            XCTAssertTrue(m.contains("broker 9"), m)
        }
    }

    func testARunningReassignmentIsRetargetedFromItsCurrentReplicas() throws {
        let moving = try XCTUnwrap(start(steady, [1, 2, 4]))
        // Back to the original brokers: 4 is now the one being removed, and 1-3 are in sync already.
        let back = try XCTUnwrap(start(moving, [1, 2, 3]))
        XCTAssertEqual(back, PartitionState(replicas: [1, 2, 3], isr: [1, 2, 3], leader: 3, leaderEpoch: 7, partitionEpoch: 22))
    }

    func testCancellingRevertsToTheOriginalReplicas() throws {
        var moving = try XCTUnwrap(start(steady, [1, 2, 4]))
        moving.isr = [1, 2, 4]  // broker 3 fell out of sync meanwhile
        let reverted = try PartitionReassignment.cancel(moving, allowUnclean: false, eligible: { self.alive.contains($0) })
        XCTAssertEqual(reverted.replicas, [1, 2, 3])
        XCTAssertEqual(reverted.isr, [1, 2])
        XCTAssertEqual(reverted.leader, 1, "the leader left the ISR: the first in-sync original replica leads")
        XCTAssertEqual(reverted.leaderEpoch, 8)
        XCTAssertFalse(reverted.isReassigning)
        XCTAssertThrowsError(try PartitionReassignment.cancel(steady, allowUnclean: false, eligible: { _ in true })) {
            XCTAssertEqual($0 as? PartitionReassignment.Refusal, .noReassignmentInProgress)
        }
    }

    func testCancellingWhenOnlyNewReplicasAreInSyncNeedsUncleanElections() throws {
        var moving = try XCTUnwrap(start(PartitionState(replicas: [1], isr: [1], leader: 1), [4]))
        moving.isr = [4]
        moving.leader = 4
        XCTAssertThrowsError(try PartitionReassignment.cancel(moving, allowUnclean: false, eligible: { _ in true }))
        let unclean = try PartitionReassignment.cancel(moving, allowUnclean: true, eligible: { _ in true })
        XCTAssertEqual(unclean.isr, [1])
        XCTAssertEqual(unclean.leader, 1)
    }

    func testTheControllerPassCompletesAReassignmentOnceTheIsrHoldsTheTarget() throws {
        var image = MetadataImage(cluster: "c")
        var moving = try XCTUnwrap(start(steady, [1, 2, 4]))
        var values: [EtcdKeyValue] = (1...4).map { id in
            EtcdKeyValue(key: image.brokersKey + "\(id)", value: Array(try! JSONEncoder().encode(BrokerRegistration(nodeId: id, host: "h", port: 1))), createRevision: 1, modRevision: 1, version: 1, lease: 0)
        }
        let topic = { (p: PartitionState) in TopicRecord(name: "t", topicId: String(repeating: "a", count: 32), partitions: [p]) }
        values.append(EtcdKeyValue(key: image.topicKey("t"), value: Array(try JSONEncoder().encode(topic(moving))), createRevision: 2, modRevision: 2, version: 1, lease: 0))
        try image.load(values, at: 2)
        XCTAssertTrue(LeaderElection.changes(in: image, preferred: false).isEmpty, "still catching up")
        moving.isr = [1, 2, 4, 3]
        values[4] = EtcdKeyValue(key: image.topicKey("t"), value: Array(try JSONEncoder().encode(topic(moving))), createRevision: 2, modRevision: 3, version: 2, lease: 0)
        try image.load(values, at: 3)
        let changed = LeaderElection.changes(in: image, preferred: false)
        XCTAssertEqual(changed.first?.partitions.first?.replicas, [1, 2, 4])
        XCTAssertEqual(changed.first?.partitions.first?.leader, 1)
    }

    func testRecordsWithoutReassignmentFieldsStillDecode() throws {
        let old = #"{"replicas":[1,2],"isr":[1],"leader":1,"leaderEpoch":3,"partitionEpoch":4}"#
        let p = try JSONDecoder().decode(PartitionState.self, from: Data(old.utf8))
        XCTAssertEqual(p, PartitionState(replicas: [1, 2], isr: [1], leader: 1, leaderEpoch: 3, partitionEpoch: 4))
        XCTAssertFalse(String(decoding: try JSONEncoder().encode(p), as: UTF8.self).contains("adding"), "nothing written while not moving")
    }
}
