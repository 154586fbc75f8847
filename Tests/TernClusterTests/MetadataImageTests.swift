import Foundation
import XCTest

@testable import TernCluster

/// The image follows etcd: a full read, then watched changes in revision order — checked against a
/// real etcd so the key layout and revisions are etcd's own.
final class MetadataImageTests: EtcdTestCase {

    private func json<T: Encodable>(_ value: T) throws -> [UInt8] { Array(try JSONEncoder().encode(value)) }

    func testImageFollowsReadsAndWatchedChanges() async throws {
        var image = MetadataImage(cluster: "c1")
        try await client.put("/c1/brokers/1", try json(BrokerRegistration(nodeId: 1, host: "h1", port: 9092)))
        try await client.put("/c1/brokers/2", try json(BrokerRegistration(nodeId: 2, host: "h2", port: 9093)))
        try await client.put("/c2/brokers/9", try json(BrokerRegistration(nodeId: 9, host: "other", port: 1)))
        let orders = TopicRecord(name: "orders", topicId: String(repeating: "ab", count: 16), partitions: [
            PartitionState(replicas: [1, 2], isr: [1, 2], leader: 1),
            PartitionState(replicas: [2, 1], isr: [2, 1], leader: 2),
        ])
        try await client.put("/c1/topics/orders", try json(orders))
        let (values, revision) = try await client.list(prefix: image.prefix)
        try image.load(values, at: revision)
        XCTAssertEqual(image.liveBrokers.map(\.nodeId), [1, 2], "another cluster's keys are not this one's")
        XCTAssertEqual(image.topics["orders"], orders)
        XCTAssertEqual(image.leader(of: "orders", partition: 1), 2)
        XCTAssertEqual(image.replicas(on: 1).map { "\($0.topic)-\($0.partition):\($0.leader)" }, ["orders-0:true", "orders-1:false"])
        XCTAssertGreaterThan(image.brokers[2]!.epoch, image.brokers[1]!.epoch, "the broker epoch is the registration's revision")

        let watch = client.watch(prefix: image.prefix, fromRevision: revision + 1)
        try await client.delete("/c1/brokers/2")
        var moved = orders
        moved.partitions[1] = PartitionState(replicas: [2, 1], isr: [1], leader: 1, leaderEpoch: 1, partitionEpoch: 1)
        try await client.put("/c1/topics/orders", try json(moved))
        try await client.put("/c1/controller", try json(ControllerRecord(nodeId: 1, electionRevision: 0)))
        var applied = 0
        for try await events in watch {
            for e in events { try image.apply(e) }
            applied += events.count
            if applied >= 3 { break }
        }
        XCTAssertEqual(image.liveBrokers.map(\.nodeId), [1])
        XCTAssertEqual(image.topics["orders"]?.partitions[1].leaderEpoch, 1)
        XCTAssertEqual(image.leader(of: "orders", partition: 1), 1)
        XCTAssertEqual(image.controller?.nodeId, 1)
        XCTAssertGreaterThan(image.controller?.electionRevision ?? 0, revision, "the election revision is the controller key's create revision")
        XCTAssertGreaterThan(image.revision, revision)
    }

    func testALeaderOnADeadBrokerIsNoLeader() throws {
        var image = MetadataImage(cluster: "c")
        let topic = TopicRecord(name: "t", topicId: String(repeating: "0", count: 32), partitions: [PartitionState(replicas: [3], isr: [3], leader: 3)])
        try image.load([EtcdKeyValue(key: "/c/topics/t", value: Array(try JSONEncoder().encode(topic)), createRevision: 5, modRevision: 5, version: 1, lease: 0)], at: 5)
        XCTAssertNil(image.leader(of: "t", partition: 0), "broker 3 is not registered")
        XCTAssertNil(image.leader(of: "t", partition: 7))
    }

    func testBrokerConfigsAreKeptPerEntityWithTheirRevisions() throws {
        var image = MetadataImage(cluster: "c")
        let kv = { (key: String, value: [String: String], revision: Int64) in
            EtcdKeyValue(key: key, value: Array(try JSONEncoder().encode(value)), createRevision: revision, modRevision: revision, version: 1, lease: 0)
        }
        try image.load([try kv("/c/broker-configs/default", ["log.retention.ms": "1"], 3), try kv("/c/broker-configs/2", ["message.max.bytes": "9"], 4)], at: 4)
        XCTAssertEqual(image.brokerConfigs, ["": ["log.retention.ms": "1"], "2": ["message.max.bytes": "9"]])
        XCTAssertEqual(image.brokerConfigRevisions, ["": 3, "2": 4])
        XCTAssertEqual(image.brokerConfigKey(""), "/c/broker-configs/default")
        try image.apply(EtcdEvent(kind: .delete, keyValue: try kv("/c/broker-configs/2", [:], 5)))
        XCTAssertEqual(image.brokerConfigs, ["": ["log.retention.ms": "1"]])
        XCTAssertNil(image.brokerConfigRevisions["2"])
    }
}
