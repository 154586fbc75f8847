import Foundation
import NIOCore
import TernProtocol
import XCTest

@testable import TernLog

/// A transaction marker is refused when a later epoch has already ended the producer's
/// transaction in the partition (Kafka's `appendEndTxnMarker`): a deposed coordinator's late
/// retry would otherwise end the producer's next transaction early — a commit marker committing
/// records the producer is about to abort.
final class MarkerFencingTests: XCTestCase {
    var dir: TempDir!
    let io = DiskIO(logger: testLogger)

    override func setUp() { dir = TempDir() }
    override func tearDown() { dir.cleanup() }

    private func open() throws -> PartitionLog {
        try PartitionLog(directory: dir.path + "/fence-0", config: LogConfig(), io: io, logger: testLogger)
    }

    func testALateMarkerFromAnOlderCoordinatorCannotEndTheNextTransaction() throws {
        let log = try open()
        try log.appendBatch(try transactional("t1", producer: 7, sequence: 0))
        // The new coordinator (epoch 4) commits the first transaction.
        try log.appendBatch(try transactionMarker(commit: true, producer: 7, coordinatorEpoch: 4))
        // The producer's next transaction, to be aborted.
        let t2 = try log.appendBatch(try transactional("t2", producer: 7, sequence: 1))
        XCTAssertEqual(log.lastStableOffset, t2.baseOffset)
        // The old coordinator's (epoch 3) commit for the first transaction arrives late.
        XCTAssertThrowsError(try log.appendBatch(try transactionMarker(commit: true, producer: 7, coordinatorEpoch: 3))) {
            XCTAssertEqual($0 as? LogError, .transactionCoordinatorFenced)
        }
        XCTAssertEqual(log.lastStableOffset, t2.baseOffset, "the second transaction is still open")
        XCTAssertEqual(log.logEndOffset, t2.lastOffset + 1, "nothing was written")
        // Its real end, from the current coordinator, aborts it.
        let abort = try log.appendBatch(try transactionMarker(commit: false, producer: 7, coordinatorEpoch: 4))
        XCTAssertEqual(log.lastStableOffset, abort.lastOffset + 1)
        log.close()
    }

    func testAMarkerFromAnOlderProducerEpochIsRefused() throws {
        let log = try open()
        try log.appendBatch(try transactional("t1", producer: 8, sequence: 0))
        // Aborted on a timeout with the epoch bumped to 1, which fences the old instance.
        try log.appendBatch(try transactionMarker(commit: false, producer: 8, epoch: 1))
        XCTAssertThrowsError(try log.appendBatch(try transactionMarker(commit: true, producer: 8, epoch: 0))) {
            XCTAssertEqual($0 as? LogError, .invalidProducerEpoch)
        }
        log.close()
    }

    func testTheCoordinatorEpochSurvivesARestartAndACrash() throws {
        var log = try open()
        try log.appendBatch(try transactional("t1", producer: 9, sequence: 0))
        try log.appendBatch(try transactionMarker(commit: true, producer: 9, coordinatorEpoch: 6))
        log.close()  // clean: from the producer snapshot
        log = try open()
        XCTAssertThrowsError(try log.appendBatch(try transactionMarker(commit: true, producer: 9, coordinatorEpoch: 5))) {
            XCTAssertEqual($0 as? LogError, .transactionCoordinatorFenced)
        }
        try log.appendBatch(try transactional("t2", producer: 9, sequence: 1))
        try log.appendBatch(try transactionMarker(commit: false, producer: 9, coordinatorEpoch: 7))
        // A crash: the last marker is only in the log, replayed on open.
        let crashed = try open()
        XCTAssertThrowsError(try crashed.appendBatch(try transactionMarker(commit: true, producer: 9, coordinatorEpoch: 6))) {
            XCTAssertEqual($0 as? LogError, .transactionCoordinatorFenced)
        }
        crashed.close()
    }

    func testFollowersRecordTheCoordinatorEpochOfTheMarkersTheyCopy() throws {
        let leader = try open()
        try leader.appendBatch(try transactional("t1", producer: 10, sequence: 0))
        try leader.appendBatch(try transactionMarker(commit: true, producer: 10, coordinatorEpoch: 2))
        let copied = try leader.read(from: 0, maxBytes: 1 << 20, toLogEnd: true).records.bytes
        let follower = try PartitionLog(directory: dir.path + "/fence-1", config: LogConfig(), io: io, logger: testLogger)
        try follower.append(copied, headers: try RecordBatchHeader.validateAll(copied), origin: .replica)
        // Promoted, it refuses the older coordinator as the old leader would have.
        XCTAssertThrowsError(try follower.appendBatch(try transactionMarker(commit: true, producer: 10, coordinatorEpoch: 1))) {
            XCTAssertEqual($0 as? LogError, .transactionCoordinatorFenced)
        }
        leader.close()
        follower.close()
    }
}
