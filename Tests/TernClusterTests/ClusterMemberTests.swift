import Foundation
import Logging
import XCTest

@testable import TernCluster

/// Broker registration, controller election and failover against a real etcd.
final class ClusterMemberTests: EtcdTestCase {
    private let logger = Logger(label: "tern.cluster.test")

    private func member(_ id: Int32, ttl: Int64 = 2) -> ClusterMember {
        ClusterMember(client: client, registration: BrokerRegistration(nodeId: id, host: "127.0.0.1", port: 9092 + id), leaseTTLSeconds: ttl, logger: logger)
    }

    /// Polls `condition` (an actor read) until it holds or `seconds` pass; returns the time taken.
    private func eventually(_ seconds: Double, _ what: String, _ condition: () async -> Bool) async throws -> Double {
        let start = Date()
        while Date().timeIntervalSince(start) < seconds {
            if await condition() { return Date().timeIntervalSince(start) }
            try await Task.sleep(for: .milliseconds(50))
        }
        XCTFail("not within \(seconds) s: \(what)")
        return seconds
    }

    func testBrokersRegisterAndAgreeOnOneController() async throws {
        let members = [member(1), member(2), member(3)]
        for m in members { try await m.start() }
        _ = try await eventually(5, "every broker sees three live brokers") {
            for m in members where await m.liveBrokers.map(\.nodeId) != [1, 2, 3] { return false }
            return true
        }
        var controllers: Set<Int32?> = []
        var leading = 0
        for m in members {
            controllers.insert(await m.controllerId)
            if await m.isController { leading += 1 }
        }
        XCTAssertEqual(controllers, [1], "the first to campaign is everyone's controller")
        XCTAssertEqual(leading, 1, "exactly one broker acts as controller")
        let epochs = await members.asyncMap { await $0.brokerEpoch }
        XCTAssertEqual(Set(epochs).count, 3, "each registration has its own broker epoch")
        for m in members { await m.stop() }
    }

    func testASecondBrokerWithTheSameNodeIdRefusesToStart() async throws {
        let first = member(5)
        try await first.start()
        let twin = member(5)
        do {
            try await twin.start()
            XCTFail("a duplicate node id was accepted")
        } catch let error as ClusterError {
            XCTAssertEqual(error, .duplicateNodeId(5))
        }
        await first.stop()
        // Once the first has gone (controlled shutdown revokes its lease), the id is free again.
        let again = member(5)
        try await again.start()
        await again.stop()
    }

    /// The controller dies without a word (SIGKILL: no revoke): its lease runs out and another
    /// broker takes over; the dead broker leaves the live set. A controlled shutdown hands over at
    /// once.
    func testControllerFailoverAfterACrashAndAfterAControlledShutdown() async throws {
        let a = member(1, ttl: 3), b = member(2, ttl: 3), c = member(3, ttl: 3)
        try await a.start()
        try await b.start()
        try await c.start()
        _ = try await eventually(5, "b sees a as controller") { await b.controllerId == 1 }
        await a.abandonForTesting()
        let failover = try await eventually(12, "a new controller after the crash") {
            let id = await b.controllerId
            return id == 2 || id == 3
        }
        XCTAssertGreaterThan(failover, 1, "the lease (3 s) outlives a crash for a while")
        _ = try await eventually(5, "the crashed broker leaves the live set") { await b.liveBrokers.map(\.nodeId) == [2, 3] }
        let newController = await b.controllerId!
        let successor = newController == 2 ? b : c
        let survivor = newController == 2 ? c : b
        let old = await survivor.controllerId
        XCTAssertEqual(old, newController)
        await successor.stop()
        let handover = try await eventually(5, "the survivor takes over after a controlled shutdown") { await survivor.isController }
        XCTAssertLessThan(handover, 2.5, "a controlled shutdown revokes the lease: no wait for its 3 s TTL")
        await survivor.stop()
    }
}

extension ClusterMemberTests {
    /// Blocks reserved concurrently by several brokers never overlap, and a later reservation
    /// continues after every earlier one (a restarted broker cannot reuse ids).
    func testProducerIdBlocksNeverOverlap() async throws {
        let members = [member(1), member(2), member(3)]
        for m in members { try await m.start() }
        let blocks = try await withThrowingTaskGroup(of: [Range<Int64>].self) { group in
            for m in members {
                group.addTask {
                    var mine: [Range<Int64>] = []
                    for _ in 0..<5 { mine.append(try await m.allocateProducerIds(count: 100)) }
                    return mine
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        XCTAssertEqual(blocks.count, 15)
        let sorted = blocks.sorted { $0.lowerBound < $1.lowerBound }
        for (a, b) in zip(sorted, sorted.dropFirst()) { XCTAssertLessThanOrEqual(a.upperBound, b.lowerBound, "\(a) overlaps \(b)") }
        let later = try await members[0].allocateProducerIds(count: 10)
        XCTAssertGreaterThanOrEqual(later.lowerBound, sorted.last!.upperBound)
        for m in members { await m.stop() }
    }

    /// The controller writes leadership changes: when a broker's lease ends, its partitions are led
    /// by the next in-sync replica, with the leader epoch bumped, as every member's image shows.
    func testTheControllerMovesLeadershipOffABrokerThatDied() async throws {
        let a = member(1, ttl: 2), b = member(2, ttl: 2)
        try await a.start()
        try await b.start()
        let record = TopicRecord(name: "t", topicId: String(repeating: "a", count: 32), partitions: [
            PartitionState(replicas: [2, 1], isr: [2, 1], leader: 2),
            PartitionState(replicas: [1, 2], isr: [1, 2], leader: 1),
        ])
        try await a.createTopic(record, byController: true)
        do {
            try await b.createTopic(record, byController: true)
            XCTFail("only the controller writes topics")
        } catch let error as ClusterError {
            XCTAssertTrue(error == .notController || error == .topicExists("t"), "\(error)")
        }
        await b.abandonForTesting()
        _ = try await eventually(10, "partition 0 moves to broker 1") {
            let p = await a.image.topics["t"]?.partitions[0]
            return p?.leader == 1 && p?.leaderEpoch == 1 && p?.isr == [1]
        }
        let p1 = await a.image.topics["t"]?.partitions[1]
        XCTAssertEqual(p1?.leader, 1)
        XCTAssertEqual(p1?.leaderEpoch, 0, "a leader that stayed keeps its epoch")
        await a.stop()
    }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async -> T) async -> [T] {
        var out: [T] = []
        for e in self { out.append(await transform(e)) }
        return out
    }
}
