import Foundation
import XCTest

@testable import TernVerify

/// The local cluster's replica comparison: a trailing copy is fine, a copy that parts is not.
final class ReplicaComparisonTests: XCTestCase {
    /// A fake batch: base offset, length (of what follows the length field), then `body`.
    private func batch(_ offset: Int64, _ body: String) -> [UInt8] {
        var out: [UInt8] = []
        withUnsafeBytes(of: offset.bigEndian) { out += $0 }
        withUnsafeBytes(of: Int32(body.utf8.count).bigEndian) { out += $0 }
        return out + Array(body.utf8)
    }

    func testTrailingCopiesAreFineAndPartedOnesAreNamedByTheirFirstDifferentBatch() throws {
        let root = NSTemporaryDirectory() + "tern-replica-compare-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let cluster = try LocalCluster(size: 3, root: root, ternBinary: "/bin/true", brokerSettings: [])
        let common = batch(0, "a") + batch(1, "b")
        let copies: [[UInt8]] = [common + batch(2, "c"), common, common + batch(2, "X") + batch(3, "d")]
        for (m, bytes) in zip(cluster.members, copies) {
            for p in 0..<2 {
                let dir = "\(m.dataDir)/t-\(p)"
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                // Partition 0: every copy the same; partition 1: as above.
                _ = FileManager.default.createFile(atPath: "\(dir)/00000000000000000000.log", contents: Data(p == 0 ? common : bytes))
            }
        }
        let differences = cluster.replicaDifferences(topic: "t", partitions: 2)
        XCTAssertEqual(differences, ["t-1: the copies on brokers 1 and 3 differ from offset 2"], "broker 2 only trails")
    }
}
