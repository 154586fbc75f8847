import CTernIO
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import TernProtocol
import XCTest

@testable import TernLog

/// The io_uring path under the misbehaviour the kernel is allowed: refused and interrupted
/// submissions, short submissions that cut link chains, interrupted waits, failed writes and syncs.
/// Each must end with every append either written exactly once or failed — never a hang, never a
/// lost or reordered byte.
final class RingFaultTests: XCTestCase {
    var dir: TempDir!

    override func setUp() { dir = TempDir() }
    override func tearDown() { dir.cleanup() }

    private func faults(_ configure: (inout tern_ring_faults) -> Void) -> tern_ring_faults {
        var f = tern_ring_faults()
        configure(&f)
        return f
    }

    /// Appends `count` batches to each of three logs through one appender (so submissions mix
    /// logs and chain writes per file), with `flush` asking for a linked fdatasync per batch.
    private func appendMany(io: DiskIO, count: Int, flush: Bool) throws -> [PartitionLog] {
        var config = LogConfig()
        if flush { config.flushIntervalMessages = 1 }
        let logs = try (0..<3).map { try PartitionLog(directory: dir.path + "/f-\($0)", config: config, io: io, logger: testLogger) }
        let appender = LogAppender(io: io, logger: testLogger)
        appender.pauseForTesting()
        let group = DispatchGroup()
        let failures = NIOLockedValueBox(0)
        for i in 0..<count {
            for log in logs {
                let batch = try makeBatch(count: 2, tag: "\(i)")
                group.enter()
                appender.append(batch, headers: try RecordBatchHeader.validateAll(batch), to: log) { result in
                    if case .failure = result { failures.withLockedValue { $0 += 1 } }
                    group.leave()
                }
            }
        }
        appender.resumeForTesting()
        XCTAssertEqual(group.wait(timeout: .now() + 30), .success, "appends must complete, not hang")
        XCTAssertEqual(failures.withLockedValue { $0 }, 0)
        appender.shutdown()
        return logs
    }

    private func assertComplete(_ logs: [PartitionLog], count: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        for log in logs {
            let records = try log.readAllRecords(from: 0)
            XCTAssertEqual(records.map(\.offset), (0..<Int64(count * 2)).map { $0 }, file: file, line: line)
            XCTAssertEqual(records.map { String(buffer: $0.key!) }, (0..<count).flatMap { ["k\($0)0", "k\($0)1"] }, file: file, line: line)
            log.close()
        }
    }

    func testRefusedAndInterruptedSubmissionsAreRetried() throws {
        let io = DiskIO(logger: testLogger)
        for error in [EINTR, EBUSY, EAGAIN] {
            dir.cleanup()
            dir = TempDir()
            guard io.injectRingFaults(faults { $0.submit_errors = 5; $0.submit_error = -error }) else { throw XCTSkip("no io_uring here") }
            try assertComplete(try appendMany(io: io, count: 40, flush: true), count: 40)
        }
    }

    func testShortSubmissionsKeepChainsInOrder() throws {
        let io = DiskIO(logger: testLogger)
        guard io.injectRingFaults(faults { $0.short_submits = 1000 }) else { throw XCTSkip("no io_uring here") }
        try assertComplete(try appendMany(io: io, count: 60, flush: true), count: 60)
    }

    func testInterruptedWaitsAreRetried() throws {
        let io = DiskIO(logger: testLogger)
        guard io.injectRingFaults(faults { $0.wait_errors = 50 }) else { throw XCTSkip("no io_uring here") }
        try assertComplete(try appendMany(io: io, count: 30, flush: false), count: 30)
    }

    /// The kernel may write less than asked without being out of space, and a short write cuts
    /// the link chain, cancelling the linked fdatasync: the rest is written and synced, and every
    /// append succeeds — before, each was failed as ENOSPC.
    func testShortWritesAreContinuedNotTakenForNoSpace() throws {
        for flush in [false, true] {
            dir.cleanup()
            dir = TempDir()
            let io = DiskIO(logger: testLogger)
            guard io.injectRingFaults(faults { $0.short_writes = 25 }) else { throw XCTSkip("no io_uring here") }
            let logs = try appendMany(io: io, count: 20, flush: flush)
            XCTAssertNil(io.offlineReason)
            try assertComplete(logs, count: 20)
        }
    }

    /// A write refused for lack of space fails its append; the file is cut back to the last good
    /// batch and the log takes new appends once writes succeed again (space freed), no restart.
    func testNoSpaceFailsTheAppendAndWritesResume() throws {
        let io = DiskIO(logger: testLogger)
        let log = try PartitionLog(directory: dir.path + "/w-0", config: LogConfig(), io: io, logger: testLogger)
        try log.appendBatch(try makeBatch(count: 3))
        guard io.injectRingFaults(faults { $0.write_errors = 1; $0.write_error = -ENOSPC }) else { throw XCTSkip("no io_uring here") }
        XCTAssertThrowsError(try log.appendBatch(try makeBatch(count: 2, tag: "lost"))) { error in
            XCTAssertEqual(error as? LogError, .io("write", ENOSPC))
        }
        XCTAssertNil(io.offlineReason)
        XCTAssertEqual(log.logEndOffset, 3)
        XCTAssertEqual(try log.appendBatch(try makeBatch(count: 1, tag: "after")).baseOffset, 3)
        XCTAssertEqual(try log.readAllRecords(from: 0).map { String(buffer: $0.key!) }, ["k0", "k1", "k2", "kafter0"])
        log.close()
    }

    /// EIO may have lost data: the directory goes offline (every later append fails with a storage
    /// error), and what was written before stays readable.
    func testIOErrorTakesTheDirectoryOffline() throws {
        let io = DiskIO(logger: testLogger)
        let log = try PartitionLog(directory: dir.path + "/e-0", config: LogConfig(), io: io, logger: testLogger)
        let other = try PartitionLog(directory: dir.path + "/e-1", config: LogConfig(), io: io, logger: testLogger)
        try log.appendBatch(try makeBatch(count: 3))
        guard io.injectRingFaults(faults { $0.write_errors = 1; $0.write_error = -EIO }) else { throw XCTSkip("no io_uring here") }
        XCTAssertThrowsError(try log.appendBatch(try makeBatch(count: 2, tag: "lost")))
        XCTAssertNotNil(io.offlineReason)
        XCTAssertThrowsError(try other.appendBatch(try makeBatch(count: 1))) { error in
            guard case LogError.offline = error else { return XCTFail("\(error)") }
        }
        XCTAssertEqual(try log.readAllRecords(from: 0).count, 3)
        log.close()
        other.close()
    }

    /// Issue 22's loss: a producer's two pipelined batches are prepared, the first write fails for
    /// lack of space and the second fails after it (it would leave a gap). Each failure restores
    /// the producer state it saw before its own batch — undone first-to-last, the second put the
    /// first's sequence back, so the retried first batch was answered as a duplicate at an offset
    /// the next record then took. Both must be forgotten: the retry is written, once.
    func testFailedPipelinedAppendsForgetEverySequenceTheyRecorded() throws {
        let log = try PartitionLog(directory: dir.path + "/p-0", config: LogConfig(), io: DiskIO(logger: testLogger), logger: testLogger)
        try log.appendBatch(try idempotent("a", producer: 7, sequence: 0))
        let b = try idempotent("b", producer: 7, sequence: 1)
        let c = try idempotent("c", producer: 7, sequence: 2)
        guard case .ready(let first) = try log.prepareAppend(b, headers: try RecordBatchHeader.validateAll(b)),
            case .ready(let second) = try log.prepareAppend(c, headers: try RecordBatchHeader.validateAll(c))
        else { return XCTFail("both appends prepared") }
        XCTAssertThrowsError(try log.completeAppend(first, error: .io("write", ENOSPC)))
        XCTAssertThrowsError(try log.completeAppend(second, error: nil), "an append after a failed one fails too")
        XCTAssertEqual(log.logEndOffset, 1)
        let retried = try log.appendBatch(b)
        XCTAssertEqual(retried.baseOffset, 1, "the retry is written, not answered as a duplicate")
        XCTAssertEqual(try log.appendBatch(c).baseOffset, 2)
        XCTAssertEqual(try log.readAllRecords(from: 0).map { String(buffer: $0.value!) }, ["a", "b", "c"])
        log.close()
    }
}
