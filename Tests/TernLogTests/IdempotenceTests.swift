import Foundation
import NIOCore
import TernProtocol
import XCTest

@testable import TernLog

final class IdempotenceTests: XCTestCase {
    var dir: TempDir!
    let io = DiskIO(logger: testLogger)

    override func setUp() { dir = TempDir() }
    override func tearDown() { dir.cleanup() }

    private func batch(pid: Int64, epoch: Int16, seq: Int32, count: Int, tag: String) throws -> ByteBuffer {
        var b = RecordBatch(records: (0..<count).map { Record(timestamp: 1000, key: nil, value: ByteBuffer(string: "\(tag)-\($0)")) })
        b.producerId = pid
        b.producerEpoch = epoch
        b.baseSequence = seq
        var out = ByteBuffer()
        try b.encode(to: &out)
        return out
    }

    private func open() throws -> PartitionLog {
        try PartitionLog(directory: dir.path + "/idem-0", config: LogConfig(), io: io, logger: testLogger)
    }

    func testRetriedBatchGetsItsOriginalOffsetsAndIsNotWrittenTwice() throws {
        let log = try open()
        let first = try log.appendBatch(try batch(pid: 7, epoch: 0, seq: 0, count: 3, tag: "a"))
        let second = try log.appendBatch(try batch(pid: 7, epoch: 0, seq: 3, count: 2, tag: "b"))
        XCTAssertEqual(try log.appendBatch(try batch(pid: 7, epoch: 0, seq: 0, count: 3, tag: "a")), first)
        XCTAssertEqual(try log.appendBatch(try batch(pid: 7, epoch: 0, seq: 3, count: 2, tag: "b")).baseOffset, second.baseOffset)
        XCTAssertEqual(log.logEndOffset, 5)
        // A gap in sequences is refused; so is an older epoch.
        XCTAssertThrowsError(try log.appendBatch(try batch(pid: 7, epoch: 0, seq: 9, count: 1, tag: "gap"))) {
            XCTAssertEqual($0 as? LogError, .outOfOrderSequence)
        }
        XCTAssertEqual(try log.appendBatch(try batch(pid: 7, epoch: 1, seq: 0, count: 1, tag: "bumped")).baseOffset, 5)
        XCTAssertThrowsError(try log.appendBatch(try batch(pid: 7, epoch: 0, seq: 5, count: 1, tag: "zombie"))) {
            XCTAssertEqual($0 as? LogError, .invalidProducerEpoch)
        }
        // Producers without an id are never checked.
        XCTAssertEqual(try log.appendBatch(try makeBatch(count: 1)).baseOffset, 6)
        log.close()
    }

    func testStateSurvivesCleanRestartAndCrash() throws {
        var log = try open()
        let a = try log.appendBatch(try batch(pid: 9, epoch: 2, seq: 0, count: 4, tag: "a"))
        log.close()  // clean: snapshot written
        log = try open()
        XCTAssertEqual(try log.appendBatch(try batch(pid: 9, epoch: 2, seq: 0, count: 4, tag: "a")), a)
        let b = try log.appendBatch(try batch(pid: 9, epoch: 2, seq: 4, count: 1, tag: "b"))
        // A crash: no snapshot for the last batch; reopening replays the log after the snapshot.
        let crashed = try open()
        XCTAssertEqual(try crashed.appendBatch(try batch(pid: 9, epoch: 2, seq: 4, count: 1, tag: "b")).baseOffset, b.baseOffset)
        XCTAssertEqual(crashed.logEndOffset, 5)
        crashed.close()
        log.close()
    }

    func testSequenceWrapsAtInt32Max() {
        var table = ProducerStateTable()
        var h = try! RecordBatchHeader(from: try! batch(pid: 1, epoch: 0, seq: Int32.max - 1, count: 2, tag: "w"), at: 0)
        table.record(h, firstOffset: 0, lastOffset: 1)
        h.baseSequence = 0
        h.lastOffsetDelta = 0
        XCTAssertEqual(try table.check(h), .append)
    }

    /// Producers idle for producer.id.expiration.ms are forgotten (by their last batch's
    /// timestamp), except one whose transaction is still open.
    func testIdleProducersExpireButOpenTransactionsStay() throws {
        let log = try open()
        try log.appendBatch(try batch(pid: 1, epoch: 0, seq: 0, count: 1, tag: "idle"))
        var open = RecordBatch(records: [Record(timestamp: 1000, key: nil, value: ByteBuffer(string: "txn"))])
        open.producerId = 2
        open.producerEpoch = 0
        open.baseSequence = 0
        open.attributes = 0x10
        var bytes = ByteBuffer()
        try open.encode(to: &bytes)
        try log.appendBatch(bytes)
        let day: Int64 = 24 * 3_600_000
        try log.enforceRetention(nowMs: 1000 + day - 1)
        XCTAssertEqual(Set(log.lock.withLock { log.producerState.producers.keys }), [1, 2])
        try log.enforceRetention(nowMs: 1000 + day)
        XCTAssertEqual(Set(log.lock.withLock { log.producerState.producers.keys }), [2], "the open transaction keeps its producer")
        // A forgotten producer starts over: any sequence is accepted again, like a new producer id.
        XCTAssertNoThrow(try log.appendBatch(try batch(pid: 1, epoch: 0, seq: 40, count: 1, tag: "again")))
        log.close()
    }
}
