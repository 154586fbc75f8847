import Dispatch
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import TernProtocol
import XCTest

@testable import TernLog

final class LogAppenderTests: XCTestCase {
    var dir: TempDir!
    let io = DiskIO(logger: testLogger)

    override func setUp() { dir = TempDir() }
    override func tearDown() { dir.cleanup() }

    private func appendAll(_ appender: LogAppender, _ items: [(PartitionLog, ByteBuffer)]) throws -> [PartitionLog.AppendResult] {
        let group = DispatchGroup()
        let out = NIOLockedValueBox([Result<PartitionLog.AppendResult, Error>?](repeating: nil, count: items.count))
        for (i, (log, bytes)) in items.enumerated() {
            group.enter()
            appender.append(bytes, headers: try RecordBatchHeader.validateAll(bytes), to: log) { r in
                out.withLockedValue { $0[i] = r }
                group.leave()
            }
        }
        group.wait()
        return try out.withLockedValue { $0 }.map { try $0!.get() }
    }

    /// The same batches in the same order give byte-identical segment files whether each append is
    /// its own write or many are submitted together.
    func testGroupCommitWritesTheSameBytesAsUnbatched() throws {
        var config = LogConfig()
        config.segmentBytes = 2048  // several rolls, some of them inside one submission
        config.indexIntervalBytes = 256
        let batches = try (0..<120).map { try makeBatch(count: 1 + $0 % 4, timestamp: Int64(1000 + $0), tag: "\($0)") }

        let direct = try PartitionLog(directory: dir.path + "/direct-0", config: config, io: io, logger: testLogger)
        for b in batches { try direct.appendBatch(b) }

        let grouped = try PartitionLog(directory: dir.path + "/grouped-0", config: config, io: io, logger: testLogger)
        let other = try PartitionLog(directory: dir.path + "/other-0", config: config, io: io, logger: testLogger)
        let appender = LogAppender(io: io, logger: testLogger)
        // Interleave with another log's appends, all queued at once so they share submissions.
        var items: [(PartitionLog, ByteBuffer)] = []
        for b in batches {
            items.append((grouped, b))
            items.append((other, b))
        }
        let results = try appendAll(appender, items)
        appender.shutdown()
        XCTAssertLessThan(appender.stats.submissions, items.count, "appends were not grouped")
        XCTAssertEqual(results.count, items.count)
        XCTAssertEqual(grouped.logEndOffset, direct.logEndOffset)
        direct.close()
        grouped.close()
        other.close()

        // Segments and indexes (the producer-state snapshot is not part of the log's bytes).
        func segmentFiles(_ d: String) throws -> [String] {
            try FileManager.default.contentsOfDirectory(atPath: d).filter { $0.hasSuffix(".log") || $0.hasSuffix("index") }.sorted()
        }
        let files = try segmentFiles(dir.path + "/direct-0")
        XCTAssertGreaterThan(files.filter { $0.hasSuffix(".log") }.count, 3)
        XCTAssertEqual(files, try segmentFiles(dir.path + "/grouped-0"))
        for f in files {
            let a = try Data(contentsOf: URL(fileURLWithPath: dir.path + "/direct-0/" + f))
            let b = try Data(contentsOf: URL(fileURLWithPath: dir.path + "/grouped-0/" + f))
            XCTAssertEqual(a, b, f)
        }
    }

    func testOffsetsAreContiguousUnderConcurrentProducersWithFlushPerBatch() throws {
        var config = LogConfig()
        config.flushIntervalMessages = 1
        let logs = try (0..<3).map { try PartitionLog(directory: dir.path + "/c-\($0)", config: config, io: io, logger: testLogger) }
        let appender = LogAppender(io: io, logger: testLogger)
        let basesBox = NIOLockedValueBox([Int: [Int64]]())
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            for i in 0..<25 {
                let log = logs[(worker + i) % 3]
                let bytes = try! makeBatch(count: 2, tag: "w\(worker)")
                let done = DispatchSemaphore(value: 0)
                appender.append(bytes, headers: try! RecordBatchHeader.validateAll(bytes), to: log) { r in
                    basesBox.withLockedValue { $0[(worker + i) % 3, default: []].append(try! r.get().baseOffset) }
                    done.signal()
                }
                done.wait()
            }
        }
        appender.shutdown()
        let bases = basesBox.withLockedValue { $0 }
        for (p, log) in logs.enumerated() {
            XCTAssertEqual(bases[p]!.sorted(), stride(from: 0, to: Int64(bases[p]!.count * 2), by: 2).map { $0 })
            XCTAssertEqual(try log.readAllRecords(from: 0).count, bases[p]!.count * 2)
            log.close()
        }
    }

    func testAppendsAfterShutdownFail() throws {
        let log = try PartitionLog(directory: dir.path + "/s-0", config: LogConfig(), io: io, logger: testLogger)
        let appender = LogAppender(io: io, logger: testLogger)
        appender.shutdown()
        let bytes = try makeBatch(count: 1)
        let failed = expectation(description: "fails")
        appender.append(bytes, headers: try RecordBatchHeader.validateAll(bytes), to: log) { r in
            if case .failure(let e) = r, e as? LogError == .closed { failed.fulfill() }
        }
        wait(for: [failed], timeout: 5)
        log.close()
    }

    /// A partition with a deep backlog does not delay another partition's append by that backlog:
    /// logs take turns, and a submission stops at `maxBytesPerSubmit`.
    func testOneLogsBacklogDoesNotDelayAnother() throws {
        let heavy = try PartitionLog(directory: dir.path + "/heavy-0", config: LogConfig(), io: io, logger: testLogger)
        let light = try PartitionLog(directory: dir.path + "/light-0", config: LogConfig(), io: io, logger: testLogger)
        let appender = LogAppender(io: io, logger: testLogger)
        let big = try makeBatch(count: 1, valueSize: 1 << 20)
        let small = try makeBatch(count: 1)
        let order = NIOLockedValueBox<[String]>([])
        let group = DispatchGroup()
        appender.pauseForTesting()
        for i in 0..<40 {
            group.enter()
            appender.append(big, headers: try RecordBatchHeader.validateAll(big), to: heavy) { _ in
                order.withLockedValue { $0.append("heavy\(i)") }
                group.leave()
            }
        }
        group.enter()
        appender.append(small, headers: try RecordBatchHeader.validateAll(small), to: light) { _ in
            order.withLockedValue { $0.append("light") }
            group.leave()
        }
        appender.resumeForTesting()
        group.wait()
        let position = try XCTUnwrap(order.withLockedValue { $0.firstIndex(of: "light") })
        // FIFO would put it last (40); taking turns puts it right after the heavy log's first append.
        XCTAssertEqual(position, 1, "\(order.withLockedValue { $0 })")
        XCTAssertGreaterThanOrEqual(appender.stats.submissions, 40 / (LogAppender.maxBytesPerSubmit >> 20), "submissions stop at the byte budget")
        XCTAssertEqual(appender.queuedAppends.appends, 0)
        appender.shutdown()
        heavy.close()
        light.close()
    }
}

final class LogAppenderDurabilityTests: XCTestCase {
    /// Appends complete as their writes finish, but an append that asked for fdatasync
    /// (`flush.messages=1`) is acknowledged only after the sync that covers it: in a submission of
    /// five appends to one log, which share one trailing sync, no completion may run before it.
    func testSyncedAppendsAreAcknowledgedOnlyAfterTheirSync() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let simulation = CrashSimulation()
        let io = DiskIO(logger: testLogger, crashSimulation: simulation)
        var config = LogConfig()
        config.flushIntervalMessages = 1
        let log = try PartitionLog(directory: dir.path + "/s-0", config: config, io: io, logger: testLogger)
        let plain = try PartitionLog(directory: dir.path + "/p-0", config: LogConfig(), io: io, logger: testLogger)
        let appender = LogAppender(io: io, logger: testLogger)
        let syncsBefore = simulation.syncCount
        let seen = NIOLockedValueBox<[Int]>([])
        let group = DispatchGroup()
        appender.pauseForTesting()
        for i in 0..<5 {
            for target in [log, plain] {
                let batch = try makeBatch(count: 1, tag: "\(i)")
                group.enter()
                appender.append(batch, headers: try RecordBatchHeader.validateAll(batch), to: target) { result in
                    if target === log, case .success = result { seen.withLockedValue { $0.append(simulation.syncCount) } }
                    group.leave()
                }
            }
        }
        appender.resumeForTesting()
        group.wait()
        appender.shutdown()
        let syncCounts = seen.withLockedValue { $0 }
        XCTAssertEqual(syncCounts.count, 5)
        XCTAssertTrue(syncCounts.allSatisfy { $0 > syncsBefore }, "a synced append was acknowledged before its fdatasync: \(syncCounts)")
        XCTAssertEqual(appender.stats.submissions, 1, "the ten appends went in one submission")
        log.close()
        plain.close()
    }
}

final class LogAppenderRollStressTests: XCTestCase {
    /// Rolling on almost every append while several threads append to several logs through one
    /// appender: offsets stay dense and every append succeeds.
    func testRollingUnderConcurrentGroupCommits() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let io = DiskIO(logger: testLogger)
        var config = LogConfig()
        config.rollMs = 1
        config.flushIntervalMessages = 1
        let logs = try (0..<3).map { try PartitionLog(directory: dir.path + "/s-\($0)", config: config, io: io, logger: testLogger) }
        let appender = LogAppender(io: io, logger: testLogger)
        let failures = NIOLockedValueBox([String]())
        let clock = NIOLockedValueBox(Int64(1_000_000))
        DispatchQueue.concurrentPerform(iterations: 6) { worker in
            for i in 0..<40 {
                let ts = clock.withLockedValue { t in
                    t += 10
                    return t
                }
                let bytes = try! makeBatch(count: 2, timestamp: ts, tag: "w\(worker)-\(i)")
                let done = DispatchSemaphore(value: 0)
                appender.append(bytes, headers: try! RecordBatchHeader.validateAll(bytes), to: logs[(worker + i) % 3]) { r in
                    if case .failure(let e) = r { failures.withLockedValue { $0.append("\(e)") } }
                    done.signal()
                }
                done.wait()
            }
        }
        appender.shutdown()
        XCTAssertEqual(failures.withLockedValue { $0 }, [])
        var total = 0
        for log in logs {
            let records = try log.readAllRecords(from: 0)
            XCTAssertEqual(records.map(\.offset), Array(0..<Int64(records.count)))
            total += records.count
            log.close()
        }
        XCTAssertEqual(total, 6 * 40 * 2)
    }
}
