import Dispatch
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import TernProtocol
import XCTest

@testable import TernLog

/// What survives a power loss: the crash simulation drops every byte no successful fdatasync
/// covered, then the log is reopened as after a restart. With a flush per message every
/// acknowledged append survives; without one, acknowledged appends can be lost — which is what
/// shows that these checks can tell a missing fdatasync apart.
final class CrashSimulationTests: XCTestCase {
    var dir: TempDir!

    override func setUp() { dir = TempDir() }
    override func tearDown() { dir.cleanup() }

    /// Appends `count` batches through the group-commit appender and returns how many were acknowledged.
    private func appendThenCrash(flushEveryMessage: Bool, count: Int) throws -> (acked: Int, survived: [Record], syncs: Int) {
        let simulation = CrashSimulation()
        let io = DiskIO(logger: testLogger, crashSimulation: simulation)
        var config = LogConfig()
        config.segmentBytes = 4096  // rolls, so sealed segments and background syncs are part of it
        if flushEveryMessage { config.flushIntervalMessages = 1 }
        let log = try PartitionLog(directory: dir.path + "/c-0", config: config, io: io, logger: testLogger)
        let appender = LogAppender(io: io, logger: testLogger)
        let acked = NIOLockedValueBox(0)
        let group = DispatchGroup()
        for i in 0..<count {
            let batch = try makeBatch(count: 2, tag: "\(i)")
            group.enter()
            appender.append(batch, headers: try RecordBatchHeader.validateAll(batch), to: log) { result in
                if case .success = result { acked.withLockedValue { $0 += 1 } }
                group.leave()
            }
        }
        group.wait()
        appender.shutdown()
        simulation.crash()  // the process "dies" here: no close, no final flush
        let reopened = try PartitionLog(directory: dir.path + "/c-0", config: config, io: DiskIO(logger: testLogger), logger: testLogger)
        defer { reopened.close() }
        return (acked.withLockedValue { $0 }, try reopened.readAllRecords(from: 0), simulation.syncCount)
    }

    func testEveryAcknowledgedAppendSurvivesWithAFlushPerMessage() throws {
        let (acked, survived, syncs) = try appendThenCrash(flushEveryMessage: true, count: 60)
        XCTAssertEqual(acked, 60)
        XCTAssertEqual(survived.count, 120)
        XCTAssertEqual(survived.map(\.offset), (0..<120).map { Int64($0) })
        XCTAssertGreaterThan(syncs, 0)
    }

    func testWithoutFlushesAcknowledgedAppendsCanBeLost() throws {
        let (acked, survived, _) = try appendThenCrash(flushEveryMessage: false, count: 60)
        XCTAssertEqual(acked, 60)
        XCTAssertLessThan(survived.count, 120, "the simulation must drop unsynced data, or the test above proves nothing")
        XCTAssertEqual(survived.map(\.offset), (0..<Int64(survived.count)).map { $0 }, "what survives is a dense prefix")
    }

    /// Torn writes: a random part of every unsynced tail survives, sometimes ending in garbage.
    /// Whatever the tear, the log reopens without trapping, keeps every record an fdatasync
    /// covered, and what it keeps is a dense prefix of what was written, byte for byte.
    func testTornUnsyncedTailsAreCutAndEverySyncedRecordSurvives() throws {
        for seed in UInt64(1)...12 {
            let path = dir.path + "/torn\(seed)-0"
            let simulation = CrashSimulation()
            let io = DiskIO(logger: testLogger, crashSimulation: simulation)
            var config = LogConfig()
            config.segmentBytes = 4096
            let log = try PartitionLog(directory: path, config: config, io: io, logger: testLogger)
            for i in 0..<30 { try log.appendBatch(try makeBatch(count: 2, tag: "\(i)")) }
            try log.flush()
            io.background.drain()
            let synced = log.logEndOffset
            for i in 30..<60 { try log.appendBatch(try makeBatch(count: 2, tag: "\(i)")) }
            // Sealed segments' background syncs finish first: one still running after the
            // "power loss" would record a recovery point no real crash could have written.
            io.background.drain()
            simulation.crashTearingWrites(seed: seed)

            let reopened = try PartitionLog(directory: path, config: config, io: DiskIO(logger: testLogger), logger: testLogger)
            let survived = try reopened.readAllRecords(from: 0)
            XCTAssertGreaterThanOrEqual(Int64(survived.count), synced, "seed \(seed): a synced record was lost")
            XCTAssertEqual(survived.map(\.offset), (0..<Int64(survived.count)).map { $0 }, "seed \(seed): offsets are not dense")
            for r in survived {
                let batch = r.offset / 2, index = r.offset % 2
                XCTAssertEqual(r.key.map { String(buffer: $0) }, "k\(batch)\(index)", "seed \(seed)")
            }
            // The log takes appends again, after whatever survived.
            XCTAssertEqual(try reopened.appendBatch(try makeBatch(count: 1)).baseOffset, Int64(survived.count))
            reopened.close()
        }
    }
}

/// `tern.replication.fsync`: a follower's copies (and a leader's acks=all writes) are synced
/// before they count, so a power loss of the replica keeps every one; without the setting the
/// same copies can be lost — the check tells the two apart.
final class ReplicationFsyncTests: XCTestCase {
    var dir: TempDir!

    override func setUp() { dir = TempDir() }
    override func tearDown() { dir.cleanup() }

    private func copyThenCrash(replicationFsync: Bool) throws -> (copied: Int64, survived: Int) {
        let leader = try PartitionLog(directory: dir.path + "/leader-0", config: LogConfig(), io: DiskIO(logger: testLogger), logger: testLogger)
        for i in 0..<40 { try leader.appendBatch(try makeBatch(count: 2, tag: "\(i)")) }
        let simulation = CrashSimulation()
        let io = DiskIO(logger: testLogger, crashSimulation: simulation)
        var config = LogConfig()
        config.replicationFsync = replicationFsync
        let follower = try PartitionLog(directory: dir.path + "/follower-0", config: config, io: io, logger: testLogger)
        let appender = LogAppender(io: io, logger: testLogger)
        // As the replica fetcher copies: one fetched chunk at a time, each appended before the next.
        var next: Int64 = 0
        while next < leader.logEndOffset {
            var bytes = try leader.read(from: next, maxBytes: 300, toLogEnd: true).records.bytes
            // Whole batches only (the read may end inside one), as the fetcher keeps them.
            var headers: [RecordBatchHeader] = []
            var at = bytes.readerIndex
            while let h = try? RecordBatchHeader.validated(in: bytes, at: at) {
                headers.append(h)
                at += h.totalSize
            }
            bytes = bytes.getSlice(at: bytes.readerIndex, length: at - bytes.readerIndex)!
            let done = DispatchSemaphore(value: 0)
            appender.append(bytes, headers: headers, to: follower, origin: .replica, sync: follower.syncsReplication) { _ in done.signal() }
            done.wait()
            next = headers.last!.lastOffset + 1
        }
        let copied = follower.logEndOffset
        appender.shutdown()
        leader.close()
        simulation.crash()
        let reopened = try PartitionLog(directory: dir.path + "/follower-0", config: config, io: DiskIO(logger: testLogger), logger: testLogger)
        defer { reopened.close() }
        return (copied, try reopened.readAllRecords(from: 0).count)
    }

    func testSyncedCopiesSurviveAPowerLoss() throws {
        let (copied, survived) = try copyThenCrash(replicationFsync: true)
        XCTAssertEqual(copied, 80)
        XCTAssertEqual(survived, 80)
    }

    func testUnsyncedCopiesCanBeLost() throws {
        let (copied, survived) = try copyThenCrash(replicationFsync: false)
        XCTAssertEqual(copied, 80)
        XCTAssertLessThan(survived, 80, "the simulation must drop unsynced copies, or the test above proves nothing")
    }
}
