import Foundation
import NIOConcurrencyHelpers
import TernLog
import XCTest

@testable import TernBroker

/// `transaction.timeout.ms` counts in monotonic time for transactions a coordinator started
/// itself: a step of the wall clock (`tern verify --nemesis clock`) neither aborts them early nor
/// keeps a hung one open. Transactions loaded from the log have only their persisted wall-clock
/// start, and time out by it, as in Kafka.
final class TransactionTimeoutTests: TransactionCoordinatorTestCase {
    private let timeoutMs: Int32 = 10_000

    private func state(_ coordinator: TransactionCoordinator) -> TransactionMetadata.State? {
        coordinator.describe(["t"]).first?.1?.state
    }

    /// A coordinator with "t"'s transaction open on `txn-data`-0.
    private func openTransaction() throws -> TransactionCoordinator {
        _ = try broker.topics.createTopic(name: "txn-data", partitions: 1)
        let c = try coordinator()
        let (producerId, epoch) = try c.initProducerId(transactionalId: "t", timeoutMs: timeoutMs).wait()
        XCTAssertEqual(try c.addPartitions("t", producerId: producerId, epoch: epoch, [("txn-data", 0)]).wait(), .none)
        XCTAssertEqual(state(c), .ongoing)
        return c
    }

    func testAWallClockStepDoesNotTimeOutATransactionStartedHere() throws {
        let c = try openTransaction()
        c.abortExpired(nowMs: PartitionLog.nowMs() + 3_600_000)
        XCTAssertEqual(state(c), .ongoing, "the wall clock an hour ahead: nothing has been open 10 s")
        c.abortExpired(nowMs: PartitionLog.nowMs() - 3_600_000, monotonicNowMs: MonotonicClock.nowMs() + Int64(timeoutMs) + 1)
        XCTAssertNotEqual(state(c), .ongoing, "open past its timeout, whatever the wall clock says")
    }

    func testALoadedTransactionTimesOutByItsWallClockStart() throws {
        let c = try openTransaction()
        try c.takeOver([0])  // reloaded from the log: only the persisted start is known
        XCTAssertEqual(state(c), .ongoing)
        c.abortExpired(nowMs: PartitionLog.nowMs() + Int64(timeoutMs) + 1_000)
        XCTAssertNotEqual(state(c), .ongoing)
    }
}
