import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import TernProtocol
import XCTest

@testable import TernBroker

/// A transaction coordinator serves a `__transaction_state` partition's ids only at the leader
/// epoch it loaded them in. A broker paused through two hand-overs (away and back) sees its
/// leadership in a later epoch; until it has reloaded, its memory is another coordinator's past:
/// serving from it handed out a second producer id for a known transactional id and left the
/// first id's open transaction without markers (found by `tern verify` with pauses).
final class TransactionCoordinatorHandOverTests: TransactionCoordinatorTestCase {
    func testACoordinatorServesNothingFromAnEarlierEpochUntilItHasReloaded() throws {
        let epochA = NIOLockedValueBox<Int32?>(3)
        let a = try coordinator(epoch: epochA)
        let (producerId, first) = try a.initProducerId(transactionalId: "t", timeoutMs: 60_000).wait()
        XCTAssertTrue(a.coordinates(transactionalId: "t"))

        // A pauses; the partition moves to B (epoch 4), which bumps the producer's epoch.
        epochA.withLockedValue { $0 = nil }
        let b = try coordinator(epoch: NIOLockedValueBox<Int32?>(4))
        let (sameId, second) = try b.initProducerId(transactionalId: "t", timeoutMs: 60_000).wait()
        XCTAssertEqual(sameId, producerId)
        XCTAssertEqual(second, first + 1)

        // Back at A in epoch 5, before A's hand-over has run: A must not answer from memory.
        epochA.withLockedValue { $0 = 5 }
        XCTAssertFalse(a.coordinates(transactionalId: "t"), "an epoch the ids were not loaded in")
        try a.takeOver([0])
        XCTAssertTrue(a.coordinates(transactionalId: "t"))
        let (afterId, third) = try a.initProducerId(transactionalId: "t", timeoutMs: 60_000).wait()
        XCTAssertEqual(afterId, producerId)
        XCTAssertEqual(third, second + 1, "B's bump is seen: no two instances share an epoch")
    }
}
