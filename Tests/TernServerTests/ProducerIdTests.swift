import Foundation
import Logging
import TernLog
import TernProtocol
import XCTest

@testable import TernBroker

/// A single broker's producer ids come from reservations kept in its data directory, not from the
/// wall clock: partitions remember ids for deduplication, and a new producer given a remembered
/// id has its first batch taken for a duplicate — acknowledged and never written.
final class ProducerIdTests: XCTestCase {
    var dataDir: String!

    override func setUpWithError() throws {
        dataDir = NSTemporaryDirectory() + "tern-producer-ids-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: dataDir)
    }

    private func startBroker() throws -> Broker {
        var config = BrokerConfig()
        config.logDir = dataDir
        return try Broker(config: config, logger: Logger(label: "test"))
    }

    private func take(_ broker: Broker, _ count: Int) async throws -> [Int64] {
        var ids: [Int64] = []
        while ids.count < count {
            do {
                ids.append(try broker.allocateProducerId())
            } catch KafkaError.coordinatorLoadInProgress {
                // Both blocks used up: the next is being reserved.
                try await Task.sleep(for: .milliseconds(1))
            }
        }
        return ids
    }

    /// Thousands of ids within milliseconds, then a restart at once: a wall-clock counter started
    /// below the ids it had already handed out.
    func testARestartedBrokerNeverHandsAnIdOutAgain() async throws {
        var broker = try startBroker()
        let before = try await take(broker, 5000)
        await broker.shutdown()
        XCTAssertEqual(Set(before).count, before.count, "no id twice")
        XCTAssertEqual(before, before.sorted())
        broker = try startBroker()
        let after = try await take(broker, 10)
        await broker.shutdown()
        XCTAssertGreaterThan(after.min()!, before.max()!)
    }

    /// A reservation ahead of the wall clock (the clock was stepped back since) is where counting
    /// continues.
    func testTheReservationNotTheWallClockDecides() async throws {
        let ahead = PartitionLog.nowMs() + 86_400_000
        try "\(ahead)\n".write(toFile: "\(dataDir!)/\(ProducerIdFile.name)", atomically: true, encoding: .utf8)
        let broker = try startBroker()
        let id = try await take(broker, 1)[0]
        await broker.shutdown()
        XCTAssertGreaterThanOrEqual(id, ahead)
        let file = try String(contentsOfFile: "\(dataDir!)/\(ProducerIdFile.name)", encoding: .utf8)
        XCTAssertEqual(Int64(file.trimmingCharacters(in: .whitespacesAndNewlines)), ahead + ProducerIdBlocks.blockSize, "reserved before use")
    }

    /// A damaged reservation stops the broker rather than guess where to count from.
    func testADamagedReservationStopsTheStart() throws {
        try "12x\n".write(toFile: "\(dataDir!)/\(ProducerIdFile.name)", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try startBroker()) { error in
            XCTAssertTrue("\(error)".contains("damaged"), "\(error)")
        }
    }
}
