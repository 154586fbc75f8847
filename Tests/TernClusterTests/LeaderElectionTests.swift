import XCTest

@testable import TernCluster

/// The controller's leadership rules, case by case (no etcd needed: they are pure).
final class LeaderElectionTests: XCTestCase {
    private let all: Set<Int32> = [1, 2, 3]

    private func change(_ p: PartitionState, alive: Set<Int32>, preferred: Bool = false) -> PartitionState? {
        LeaderElection.change(p, eligible: { alive.contains($0) }, preferred: preferred)
    }

    func testNothingChangesWhileTheLeaderAndTheIsrAreAlive() {
        XCTAssertNil(change(PartitionState(replicas: [1, 2, 3], isr: [1, 2, 3], leader: 1), alive: all))
        XCTAssertNil(change(PartitionState(replicas: [1, 2, 3], isr: [1, 2, 3], leader: 2), alive: all), "balancing is off")
    }

    func testADeadLeaderIsReplacedByTheNextInSyncReplicaWithBothEpochsBumped() {
        let next = change(PartitionState(replicas: [1, 2, 3], isr: [1, 2, 3], leader: 1, leaderEpoch: 4, partitionEpoch: 9), alive: [2, 3])
        XCTAssertEqual(next, PartitionState(replicas: [1, 2, 3], isr: [2, 3], leader: 2, leaderEpoch: 5, partitionEpoch: 10))
    }

    func testADeadFollowerLeavesTheIsrWithoutALeaderChange() {
        let next = change(PartitionState(replicas: [1, 2, 3], isr: [1, 2, 3], leader: 1, leaderEpoch: 4, partitionEpoch: 9), alive: [1, 2])
        XCTAssertEqual(next, PartitionState(replicas: [1, 2, 3], isr: [1, 2], leader: 1, leaderEpoch: 4, partitionEpoch: 10))
    }

    func testAnOutOfSyncReplicaNeverBecomesLeader() {
        // Replica 3 is alive but not in the ISR: electing it could lose acknowledged records.
        let next = change(PartitionState(replicas: [1, 2, 3], isr: [1], leader: 1), alive: [2, 3])
        XCTAssertEqual(next?.leader, LeaderElection.noLeader)
        XCTAssertEqual(next?.isr, [1], "the last in-sync replica stays, to be waited for")
    }

    func testAnOfflinePartitionComesBackWithItsLastInSyncReplica() {
        let offline = PartitionState(replicas: [1, 2, 3], isr: [1], leader: LeaderElection.noLeader, leaderEpoch: 2, partitionEpoch: 3)
        XCTAssertNil(change(offline, alive: [2, 3]), "still waiting for broker 1")
        XCTAssertEqual(change(offline, alive: [1, 2, 3]), PartitionState(replicas: [1, 2, 3], isr: [1], leader: 1, leaderEpoch: 3, partitionEpoch: 4))
    }

    func testPreferredLeaderBalancingMovesLeadershipBackToTheFirstReplica() {
        let p = PartitionState(replicas: [1, 2, 3], isr: [1, 2, 3], leader: 2, leaderEpoch: 1)
        XCTAssertEqual(change(p, alive: all, preferred: true)?.leader, 1)
        XCTAssertNil(change(PartitionState(replicas: [1, 2, 3], isr: [2, 3], leader: 2), alive: all, preferred: true),
                     "not while the preferred replica is out of sync")
    }

    func testBrokersInControlledShutdownAreNotEligible() {
        var image = MetadataImage(cluster: "t")
        let topic = TopicRecord(name: "a", topicId: String(repeating: "0", count: 32), partitions: [
            PartitionState(replicas: [1, 2], isr: [1, 2], leader: 1),
            PartitionState(replicas: [2, 1], isr: [2, 1], leader: 2),
        ])
        var leaving = BrokerRegistration(nodeId: 1, host: "h", port: 1)
        leaving.shuttingDown = true
        try! image.load([
            kv(image.brokersKey + "1", leaving), kv(image.brokersKey + "2", BrokerRegistration(nodeId: 2, host: "h", port: 2)),
            kv(image.topicsKey + "a", topic),
        ], at: 10)
        let changed = LeaderElection.changes(in: image, preferred: true)
        XCTAssertEqual(changed.map(\.name), ["a"])
        XCTAssertEqual(changed[0].partitions.map(\.leader), [2, 2])
        XCTAssertEqual(changed[0].partitions.map(\.isr), [[2], [2]])
    }

    private func kv<T: Encodable>(_ key: String, _ value: T) -> EtcdKeyValue {
        EtcdKeyValue(key: key, value: Array(try! JSONEncoder().encode(value)), createRevision: 5, modRevision: 5, version: 1, lease: 0)
    }
}
