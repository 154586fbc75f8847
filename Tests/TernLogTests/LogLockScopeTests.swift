import Foundation
import NIOConcurrencyHelpers
import XCTest

@testable import TernLog

/// The log's lock covers metadata, never disk work: a flush stuck in fdatasync (a slow or dying
/// disk) must not hold up a fetch, an append's bookkeeping or retention of the same partition.
final class LogLockScopeTests: XCTestCase {
    func testReadsAppendsAndRetentionProceedWhileAFlushIsInFdatasync() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        var config = LogConfig()
        config.segmentBytes = 4096
        config.retentionBytes = 8192
        let io = DiskIO(logger: testLogger)
        let log = try PartitionLog(directory: dir.path + "/t-0", config: config, io: io, logger: testLogger)
        defer { log.close() }
        for i in 0..<40 { try log.appendBatch(try makeBatch(count: 5, valueSize: 100, tag: "\(i)")) }
        XCTAssertGreaterThan(log.segmentCount, 3)

        let inSync = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let armed = NIOLockedValueBox(true)
        io.beforeSyncForTesting.withLockedValue {
            $0 = {
                guard armed.withLockedValue({ let was = $0; $0 = false; return was }) else { return 0 }
                inSync.signal()
                release.wait()
                return 0
            }
        }
        let flushed = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            try? log.flush()
            flushed.signal()
        }
        XCTAssertEqual(inSync.wait(timeout: .now() + 5), .success, "the flush reached fdatasync")

        let done = DispatchSemaphore(value: 0)
        let outcome = NIOLockedValueBox<String>("")
        Thread.detachNewThread {
            do {
                let start = log.logStartOffset
                let read = try log.read(from: start, maxBytes: 1 << 20)
                let appended = try log.appendBatch(try makeBatch(count: 1, tag: "during"))
                let deleted = try log.enforceRetention()
                outcome.withLockedValue { $0 = "read \(read.records.bytes.readableBytes) appended \(appended.baseOffset) deleted \(deleted)" }
            } catch {
                outcome.withLockedValue { $0 = "error \(error)" }
            }
            done.signal()
        }
        let proceeded = done.wait(timeout: .now() + 5)
        release.signal()
        XCTAssertEqual(proceeded, .success, "read, append and retention waited for another thread's fdatasync")
        XCTAssertEqual(flushed.wait(timeout: .now() + 5), .success)
        let summary = outcome.withLockedValue { $0 }
        XCTAssertTrue(summary.hasPrefix("read "), summary)
        XCTAssertFalse(summary.hasPrefix("read 0 "), summary)
        XCTAssertFalse(summary.hasSuffix("deleted 0"), "retention had segments to delete: \(summary)")
        XCTAssertEqual(log.logEndOffset, 201)
    }

    func testFailedSyncIsReportedAndTakesTheDirectoryOffline() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let io = DiskIO(logger: testLogger)
        let log = try PartitionLog(directory: dir.path + "/s-0", config: LogConfig(), io: io, logger: testLogger)
        defer { log.close() }
        try log.appendBatch(try makeBatch(count: 1))
        io.beforeSyncForTesting.withLockedValue { $0 = { EIO } }
        XCTAssertThrowsError(try log.flush()) { error in
            XCTAssertEqual(error as? LogError, .io("fdatasync", EIO))
        }
        XCTAssertNotNil(io.offlineReason, "after a failed fdatasync nothing written is known to be durable")
        XCTAssertThrowsError(try log.appendBatch(try makeBatch(count: 1))) { error in
            guard case LogError.offline = error else { return XCTFail("\(error)") }
        }
    }
}

final class PeriodicThreadTests: XCTestCase {
    func testRunsRepeatedlyAndStopWaitsForTheRunInProgress() {
        let runs = NIOLockedValueBox(0)
        let inRun = NIOLockedValueBox(false)
        let thread = PeriodicThread(name: "tern-test-periodic", intervalMs: 5) {
            inRun.withLockedValue { $0 = true }
            Thread.sleep(forTimeInterval: 0.02)
            runs.withLockedValue { $0 += 1 }
            inRun.withLockedValue { $0 = false }
        }
        let deadline = Date().addingTimeInterval(5)
        while runs.withLockedValue({ $0 }) < 3 && Date() < deadline { Thread.sleep(forTimeInterval: 0.005) }
        thread.stop()
        XCTAssertFalse(inRun.withLockedValue { $0 }, "stop returned while a run was in progress")
        let afterStop = runs.withLockedValue { $0 }
        XCTAssertGreaterThanOrEqual(afterStop, 3)
        Thread.sleep(forTimeInterval: 0.05)
        XCTAssertEqual(runs.withLockedValue { $0 }, afterStop, "no run after stop")
        thread.stop()  // a second stop returns at once
    }
}
