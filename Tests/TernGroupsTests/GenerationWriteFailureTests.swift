import Foundation
import NIOCore
import TernProtocol
import XCTest

@testable import TernGroups

/// A generation that cannot be written (a failed or unreplicated append to `__consumer_offsets`)
/// is not handed out: the members waiting in SyncGroup get COORDINATOR_NOT_AVAILABLE, as from
/// Kafka, and look the coordinator up again before they rejoin.
final class GenerationWriteFailureTests: CoordinatorTestCase {
    func testSyncGroupAnswersCoordinatorNotAvailableWhenTheGenerationCannotBeWritten() throws {
        var config = GroupConfig()
        config.initialRebalanceDelayMs = 0
        let fixture = try CoordinatorFixture(dir: dir, config: config)
        defer { fixture.close() }
        let coordinator = fixture.coordinator
        let joined = try coordinator.joinGroup(
            JoinGroupRequest(groupId: "g", sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000, memberId: "",
                             protocolType: "consumer", protocols: [.init(name: "range", metadata: ByteBuffer(string: "m"))]),
            version: 3, clientId: "c", clientHost: "h").wait()
        XCTAssertEqual(joined.errorCode, 0)
        XCTAssertEqual(joined.leader, joined.memberId)

        fixture.log.close()
        let synced = try coordinator.syncGroup(
            SyncGroupRequest(groupId: "g", generationId: joined.generationId, memberId: joined.memberId,
                             assignments: [.init(memberId: joined.memberId, assignment: ByteBuffer(string: "a"))]),
            version: 3).wait()
        XCTAssertEqual(synced.errorCode, KafkaError.coordinatorNotAvailable.rawValue)
        XCTAssertEqual(synced.assignment.readableBytes, 0, "no assignment of a generation that was not written")
    }
}
