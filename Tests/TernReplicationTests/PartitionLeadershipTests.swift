import Foundation
import Logging
import NIOCore
import NIOEmbedded
import TernCluster
import TernLog
import TernProtocol
import XCTest

@testable import TernReplication

/// The leader's bookkeeping without a network: followers' fetch offsets move the high watermark,
/// acks=all waits complete, time out or learn the leadership ended, and the ISR proposals follow
/// Kafka's lag rule.
final class PartitionLeadershipTests: XCTestCase {
    private var dir = ""
    private let logger = Logger(label: "tern.test")
    private var log: PartitionLog!
    private let loop = EmbeddedEventLoop()

    override func setUp() {
        dir = NSTemporaryDirectory() + "tern-leadership-" + UUID().uuidString
        log = try! PartitionLog(directory: dir + "/t-0", config: LogConfig(), io: DiskIO(logger: logger), logger: logger)
    }

    override func tearDown() {
        log.close()
        try? FileManager.default.removeItem(atPath: dir)
    }

    private func append(_ count: Int, epoch: Int32 = 1) throws {
        var bytes = ByteBuffer()
        try RecordBatch(records: (0..<count).map { Record(timestamp: 1_000, key: nil, value: ByteBuffer(string: "v\($0)")) }).encode(to: &bytes)
        try log.append(bytes, headers: try RecordBatchHeader.validateAll(bytes), leaderEpoch: epoch)
    }

    private func leadership(isr: [Int32] = [1, 2, 3], nowMs: Int64 = 0) -> PartitionLeadership {
        PartitionLeadership(
            topic: "t", partition: 0, log: log, nodeId: 1, state: PartitionState(replicas: [1, 2, 3], isr: isr, leader: 1, leaderEpoch: 1), monotonicMs: nowMs)
    }

    func testHighWatermarkIsTheSmallestLogEndInTheIsr() throws {
        let l = leadership()
        try append(10)
        XCTAssertFalse(l.leaderAppended(), "followers have not fetched: nothing is replicated")
        XCTAssertEqual(log.highWatermark, 0)
        XCTAssertFalse(l.followerFetched(2, fetchOffset: 10, monotonicMs: 1).advanced, "replica 3 still holds it back")
        XCTAssertTrue(l.followerFetched(3, fetchOffset: 4, monotonicMs: 1).advanced)
        XCTAssertEqual(log.highWatermark, 4)
        XCTAssertTrue(l.followerFetched(3, fetchOffset: 10, monotonicMs: 2).advanced)
        XCTAssertEqual(log.highWatermark, 10)
        XCTAssertFalse(l.followerFetched(9, fetchOffset: 10, monotonicMs: 2).isReplica, "a broker that is not a replica")
    }

    func testALoneInSyncLeaderAdvancesOnItsOwnAppend() throws {
        try append(3)
        log.trackHighWatermark()
        XCTAssertEqual(log.highWatermark, 0, "a log never replicated before has no high watermark yet")
        let l = leadership(isr: [1])
        XCTAssertEqual(log.highWatermark, 3, "what the lone in-sync leader has is replicated from the start")
        try append(5)
        XCTAssertTrue(l.leaderAppended())
        XCTAssertEqual(log.highWatermark, 8)
    }

    func testAcksAllWaitsCompleteTimeOutOrEndWithTheLeadership() throws {
        let l = leadership()
        try append(10)
        let replicated = l.waitForReplication(of: 10, minInsync: 2, timeoutMs: 30_000, on: loop)
        let shrunk = l.waitForReplication(of: 10, minInsync: 3, timeoutMs: 30_000, on: loop)
        let timedOut = l.waitForReplication(of: 11, minInsync: 2, timeoutMs: 100, on: loop)
        XCTAssertEqual(l.waitingProduceRequests, 3)
        // Replica 3 leaves the ISR; replica 2 has everything.
        l.update(PartitionState(replicas: [1, 2, 3], isr: [1, 2], leader: 1, leaderEpoch: 1, partitionEpoch: 1), monotonicMs: 0)
        l.followerFetched(2, fetchOffset: 10, monotonicMs: 1)
        XCTAssertEqual(try replicated.wait(), KafkaError.none)
        XCTAssertEqual(try shrunk.wait(), .notEnoughReplicasAfterAppend, "the ISR shrank below min.insync.replicas meanwhile")
        loop.advanceTime(by: .milliseconds(100))
        XCTAssertEqual(try timedOut.wait(), .requestTimedOut)

        try append(1)
        let orphan = l.waitForReplication(of: 11, minInsync: 2, timeoutMs: 30_000, on: loop)
        l.resign()
        XCTAssertEqual(try orphan.wait(), .notLeaderOrFollower)
        XCTAssertEqual(l.waitingProduceRequests, 0)
    }

    func testIsrShrinksAfterTheLagTimeAndGrowsWhenCaughtUp() throws {
        let l = leadership(nowMs: 0)
        try append(10)
        l.followerFetched(2, fetchOffset: 10, monotonicMs: 1_000)
        l.followerFetched(3, fetchOffset: 2, monotonicMs: 1_000)
        XCTAssertNil(l.proposedIsr(monotonicMs: 20_000, lagMaxMs: 30_000))
        let shrink = try XCTUnwrap(l.proposedIsr(monotonicMs: 31_000, lagMaxMs: 30_000), "replica 3 has not caught up for 31 s")
        XCTAssertEqual(shrink.isr, [1, 2])
        XCTAssertNil(l.proposedIsr(monotonicMs: 31_000, lagMaxMs: 30_000), "one request at a time")
        l.update(PartitionState(replicas: [1, 2, 3], isr: [1, 2], leader: 1, leaderEpoch: 1, partitionEpoch: 1), monotonicMs: 31_000)
        XCTAssertEqual(log.highWatermark, 10)
        l.followerFetched(2, fetchOffset: 10, monotonicMs: 32_000)
        l.followerFetched(3, fetchOffset: 10, monotonicMs: 32_000)
        XCTAssertEqual(l.proposedIsr(monotonicMs: 32_000, lagMaxMs: 30_000)?.isr, [1, 2, 3], "caught up to the high watermark: back in")
    }

    func testFetchedBytesKeepWholeCheckedBatchesOnly() throws {
        var bytes = ByteBuffer()
        for i in 0..<3 {
            try RecordBatch(records: [Record(timestamp: 1, key: nil, value: ByteBuffer(string: "v\(i)"))]).encode(to: &bytes)
        }
        let whole = try RecordBatchHeader.validateAll(bytes)
        var cut = bytes.getSlice(at: 0, length: bytes.readableBytes - 5)!  // the last batch is cut short
        var (kept, headers) = try ReplicaFetcher.wholeBatches(cut)
        XCTAssertEqual(headers.count, 2)
        XCTAssertEqual(kept.readableBytes, whole[0].totalSize + whole[1].totalSize)
        cut.setInteger(UInt8(0xFF), at: cut.readerIndex + RecordBatchHeader.size + 2)  // inside the first batch's records
        XCTAssertThrowsError(try ReplicaFetcher.wholeBatches(cut), "a damaged batch is never appended")
        (kept, headers) = try ReplicaFetcher.wholeBatches(ByteBuffer())
        XCTAssertEqual(headers.count, 0)
    }
}
