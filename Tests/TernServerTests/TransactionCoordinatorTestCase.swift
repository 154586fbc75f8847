import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import XCTest

@testable import TernBroker

/// A single broker in a temporary directory, with one `__transaction_state` partition, and
/// transaction coordinators of their own over it (each told its leader epoch by a box the test
/// changes): the base of the coordinator tests.
class TransactionCoordinatorTestCase: BrokerTestCase {
    override func configure(_ config: inout BrokerConfig) {
        config.transactionStatePartitions = 1
    }

    /// A coordinator over the broker's `__transaction_state` that leads it at `epoch`'s value.
    func coordinator(epoch: NIOLockedValueBox<Int32?> = NIOLockedValueBox(0)) throws -> TransactionCoordinator {
        let stateLog = broker.topics.topic(TransactionCoordinator.stateTopic)!.partition(0)!
        let nextId = NIOLockedValueBox(Int64(1_000))
        return try TransactionCoordinator(
            topics: broker.topics, appender: broker.appender, groups: broker.groups,
            allocateProducerId: { nextId.withLockedValue { $0 += 1; return $0 } }, stateLogs: [stateLog],
            leaderEpoch: { _ in epoch.withLockedValue { $0 } }, idExpirationMs: 3_600_000, logger: Logger(label: "test"),
            partitionExists: { _, _ in true },
            replicated: { _, _, _, loop in loop.makeSucceededFuture(.none) })
    }
}
