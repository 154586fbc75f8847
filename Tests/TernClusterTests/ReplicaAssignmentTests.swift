import XCTest

@testable import TernCluster

final class ReplicaAssignmentTests: XCTestCase {
    private func brokers(_ ids: [Int32], racks: [String?]? = nil) -> [ReplicaAssignment.Broker] {
        ids.enumerated().map { .init(id: $0.element, rack: racks?[$0.offset]) }
    }

    /// Kafka's documented layout for 5 brokers, 10 partitions, 3 replicas, starting at broker 0.
    func testMatchesKafkasLayoutWithoutRacks() throws {
        let a = try ReplicaAssignment.assign(partitions: 10, replicationFactor: 3, brokers: brokers([0, 1, 2, 3, 4]), start: 0)
        XCTAssertEqual(a[0], [0, 1, 2])
        XCTAssertEqual(a[4], [4, 0, 1])
        XCTAssertEqual(a[5], [0, 2, 3], "the follower shift grows once the partitions wrap around")
        XCTAssertEqual(a[9], [4, 1, 2])
    }

    func testLeadersAndReplicasSpreadEvenly() throws {
        let a = try ReplicaAssignment.assign(partitions: 12, replicationFactor: 3, brokers: brokers([1, 2, 3]), start: 2)
        XCTAssertEqual(a.count, 12)
        for replicas in a { XCTAssertEqual(Set(replicas).count, 3, "\(replicas)") }
        let leaders = Dictionary(grouping: a.map { $0[0] }, by: { $0 }).mapValues(\.count)
        XCTAssertEqual(leaders, [1: 4, 2: 4, 3: 4])
        let continued = try ReplicaAssignment.assign(partitions: 3, replicationFactor: 3, brokers: brokers([1, 2, 3]), firstPartition: 12, start: 2)
        XCTAssertEqual(continued.map { $0[0] }.sorted(), [1, 2, 3], "CreatePartitions keeps leaders spread")
    }

    func testRackAwareReplicasSpanRacks() throws {
        let racks: [String?] = ["a", "a", "b", "b", "c", "c"]
        let a = try ReplicaAssignment.assign(partitions: 12, replicationFactor: 3, brokers: brokers([0, 1, 2, 3, 4, 5], racks: racks), start: 0)
        for replicas in a {
            XCTAssertEqual(Set(replicas).count, 3, "\(replicas)")
            XCTAssertEqual(Set(replicas.map { racks[Int($0)]! }).count, 3, "replicas \(replicas) share a rack")
        }
        let leaders = Dictionary(grouping: a.map { $0[0] }, by: { $0 }).mapValues(\.count)
        XCTAssertEqual(Set(leaders.values), [2])
        XCTAssertEqual(ReplicaAssignment.alternatingRacks(brokers([0, 1, 2, 3, 4, 5], racks: racks)).map(\.id), [0, 2, 4, 1, 3, 5])
    }

    func testImpossibleRequestsAreRefused() {
        XCTAssertThrowsError(try ReplicaAssignment.assign(partitions: 3, replicationFactor: 4, brokers: brokers([0, 1, 2]), start: 0)) {
            XCTAssertEqual($0 as? ReplicaAssignment.Failure, .replicationFactorTooLarge(requested: 4, brokers: 3))
        }
        XCTAssertThrowsError(try ReplicaAssignment.assign(partitions: 3, replicationFactor: 2, brokers: brokers([0, 1], racks: ["a", nil]), start: 0)) {
            XCTAssertEqual($0 as? ReplicaAssignment.Failure, .someBrokersWithoutRack)
        }
        XCTAssertThrowsError(try ReplicaAssignment.assign(partitions: 0, replicationFactor: 1, brokers: brokers([0]), start: 0))
    }
}
