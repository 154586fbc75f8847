import NIOCore
import XCTest

@testable import TernBroker

/// EndTxn v5 (KIP-890 part 2) raises the epoch at the end of every transaction, so a producer
/// reaches the last epoch after 32 766 transactions: Kafka's rule then moves the id to a new
/// producer id at epoch 0, never past Int16.max (a trap here was a remote kill).
final class TransactionsV2Tests: TransactionCoordinatorTestCase {
    func testEveryEndRaisesTheEpochAndTheLastEpochMovesToANewProducerId() throws {
        let coordinator = try coordinator()
        var (pid, epoch) = try coordinator.initProducerId(transactionalId: "tv2", timeoutMs: 60_000).wait()
        let firstPid = pid
        var ends = 0
        while pid == firstPid {
            XCTAssertLessThan(epoch, Int16.max, "the epoch never reaches the maximum")
            let result = try coordinator.endTransaction("tv2", producerId: pid, epoch: epoch, commit: ends % 2 == 0, bumpEpoch: true).wait()
            XCTAssertEqual(result.error, .none)
            XCTAssertTrue(result.producerId != pid || result.producerEpoch == epoch + 1, "epoch \(epoch) → \(result.producerEpoch)")
            (pid, epoch) = (result.producerId, result.producerEpoch)
            ends += 1
        }
        XCTAssertEqual(epoch, 0, "a new producer id starts at epoch 0")
        XCTAssertEqual(ends, Int(Int16.max), "32 766 raises, then the move at the last usable epoch")
        // The new id works: a transaction on it ends with its epoch raised.
        let added = try coordinator.addPartitions("tv2", producerId: pid, epoch: 0, [("t", 0)]).wait()
        XCTAssertEqual(added, .none)
        let ended = try coordinator.endTransaction("tv2", producerId: pid, epoch: 0, commit: true, bumpEpoch: true).wait()
        XCTAssertEqual(ended, .init(error: .none, producerId: pid, producerEpoch: 1))
    }
}
