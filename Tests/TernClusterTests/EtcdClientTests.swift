import Foundation
import XCTest

@testable import TernCluster

/// The etcd client against a real etcd: keys, compare-and-swap, leases, watches, and an
/// unreachable server.
final class EtcdClientTests: EtcdTestCase {

    func testKeysRoundTripWithRevisions() async throws {
        let first = try await client.put("/tern/brokers/1", Array("one".utf8))
        let second = try await client.put("/tern/brokers/2", Array("two".utf8))
        XCTAssertGreaterThan(second, first)
        try await client.put("/tern/other", Array("x".utf8))
        let one = try await client.get("/tern/brokers/1")
        XCTAssertEqual(one?.string, "one")
        XCTAssertEqual(one?.modRevision, first)
        let missing = try await client.get("/tern/brokers/9")
        XCTAssertNil(missing)
        let listed = try await client.list(prefix: "/tern/brokers/")
        XCTAssertEqual(listed.values.map(\.key), ["/tern/brokers/1", "/tern/brokers/2"])
        XCTAssertGreaterThanOrEqual(listed.revision, second)
        let deleted = try await client.delete("/tern/brokers/", prefix: true)
        XCTAssertEqual(deleted, 2)
        let after = try await client.list(prefix: "/tern/")
        XCTAssertEqual(after.values.map(\.key), ["/tern/other"])
    }

    /// Two writers read the same revision and both try to write: exactly one wins, the other sees
    /// it lost and must re-read — no lost update.
    func testCompareAndSwapLetsOneOfTwoRacingWritersWin() async throws {
        try await client.put("/tern/topics/orders", Array("v1".utf8))
        let read = try await client.get("/tern/topics/orders")!
        let first = try await client.transaction(
            if: [.modRevision(of: "/tern/topics/orders", is: read.modRevision)], then: [.put("/tern/topics/orders", Array("from-a".utf8))])
        let second = try await client.transaction(
            if: [.modRevision(of: "/tern/topics/orders", is: read.modRevision)], then: [.put("/tern/topics/orders", Array("from-b".utf8))],
            else: [.put("/tern/conflicts/orders", Array("b lost".utf8))])
        XCTAssertTrue(first.succeeded)
        XCTAssertFalse(second.succeeded)
        let orders = try await client.get("/tern/topics/orders")
        XCTAssertEqual(orders?.string, "from-a")
        let conflict = try await client.get("/tern/conflicts/orders")
        XCTAssertEqual(conflict?.string, "b lost")
        let created = try await client.transaction(if: [.absent("/tern/controller")], then: [.put("/tern/controller", Array("1".utf8))])
        let again = try await client.transaction(if: [.absent("/tern/controller")], then: [.put("/tern/controller", Array("2".utf8))])
        XCTAssertTrue(created.succeeded)
        XCTAssertFalse(again.succeeded)
    }

    /// A key on a lease lives while the lease is kept alive and goes when it expires or is revoked.
    func testLeasedKeysGoWhenTheLeaseExpiresOrIsRevoked() async throws {
        let lease = try await client.grantLease(ttlSeconds: 2)
        XCTAssertEqual(lease.ttlSeconds, 2)
        try await client.put("/tern/brokers/7", Array("alive".utf8), lease: lease.id)
        for _ in 0..<3 {
            try await Task.sleep(for: .milliseconds(700))
            let remaining = try await client.keepAlive(lease.id)
            XCTAssertGreaterThan(remaining, 0)
        }
        let kept = try await client.get("/tern/brokers/7")
        XCTAssertEqual(kept?.lease, lease.id, "kept alive past its TTL")
        // Without keep-alives it expires within its TTL (etcd checks leases every 500 ms).
        let stoppedAt = Date()
        var gone = false
        while !gone && Date().timeIntervalSince(stoppedAt) < 8 {
            try await Task.sleep(for: .milliseconds(100))
            gone = try await client.get("/tern/brokers/7") == nil
        }
        XCTAssertTrue(gone, "expired with its lease")
        XCTAssertGreaterThan(Date().timeIntervalSince(stoppedAt), 0.5, "the lease still had most of its TTL")
        let expired = try await client.keepAlive(lease.id)
        XCTAssertEqual(expired, 0)

        let second = try await client.grantLease(ttlSeconds: 30)
        try await client.put("/tern/brokers/8", Array("alive".utf8), lease: second.id)
        try await client.revoke(second.id)
        let revoked = try await client.get("/tern/brokers/8")
        XCTAssertNil(revoked)
    }

    /// A watch from a revision sees every later change under its prefix, in order.
    func testWatchDeliversChangesInRevisionOrder() async throws {
        let start = try await client.put("/tern/unwatched", Array("x".utf8))
        let events = client.watch(prefix: "/tern/topics/", fromRevision: start + 1)
        let collector = Task { () throws -> [String] in
            var seen: [String] = []
            for try await batch in events {
                for e in batch { seen.append("\(e.kind == .put ? "put" : "delete") \(e.keyValue.key) \(e.keyValue.string)") }
                if seen.count >= 4 { return seen }
            }
            return seen
        }
        try await client.put("/tern/topics/a", Array("1".utf8))
        try await client.put("/tern/elsewhere", Array("ignored".utf8))
        try await client.put("/tern/topics/b", Array("2".utf8))
        try await client.put("/tern/topics/a", Array("3".utf8))
        try await client.delete("/tern/topics/b")
        let seen = try await withThrowingTaskGroup(of: [String].self) { group in
            group.addTask { try await collector.value }
            group.addTask {
                try await Task.sleep(for: .seconds(10))
                throw EtcdProcess.Failure("watch delivered nothing in 10 s")
            }
            let first = try await group.next()!
            group.cancelAll()
            return first
        }
        XCTAssertEqual(seen, ["put /tern/topics/a 1", "put /tern/topics/b 2", "put /tern/topics/a 3", "delete /tern/topics/b "])
    }

    func testUnreachableEtcdIsAClearError() async throws {
        let port = try EtcdProcess.freePort()
        let nowhere = EtcdClient(endpoint: "etcd://127.0.0.1:\(port)", requestTimeout: .seconds(2))
        do {
            _ = try await nowhere.get("/tern/anything")
            XCTFail("a closed port answered")
        } catch let error as EtcdError {
            guard case .unreachable(let endpoint, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(endpoint, "http://127.0.0.1:\(port)")
        }
        try await nowhere.shutdown()
    }
}
