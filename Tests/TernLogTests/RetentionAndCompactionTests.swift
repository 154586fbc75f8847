import Foundation
import NIOConcurrencyHelpers
import NIOCore
import TernProtocol
import XCTest

@testable import TernLog

final class RetentionAndCompactionTests: XCTestCase {
    var dir: TempDir!
    let io = DiskIO(logger: testLogger)

    override func setUp() { dir = TempDir() }
    override func tearDown() { dir.cleanup() }

    private func open(_ config: LogConfig, _ name: String = "r-0") throws -> PartitionLog {
        try PartitionLog(directory: dir.path + "/" + name, config: config, io: io, logger: testLogger)
    }

    /// The key map has a memory budget: with room for 8 keys and 30 keys in the log, compaction
    /// takes several passes and still leaves exactly the newest record of every key.
    func testCompactionWithAFullKeyMapTakesMorePassesAndKeepsNewestOfEveryKey() throws {
        for (budgetKeys, expectMultiplePasses) in [(8, true), (1000, false)] {
            var config = LogConfig()
            config.segmentBytes = 600
            config.cleanupPolicy = .compact
            config.cleanerDedupeBufferBytes = budgetKeys * CleanerOffsetMap.bytesPerEntry
            let log = try open(config, "budget\(budgetKeys)-0")
            var newest: [String: (Int64, String)] = [:]
            for round in 0..<4 {
                for k in 0..<30 {
                    var bytes = ByteBuffer()
                    let value = "v\(round)-\(k)"
                    try RecordBatch(records: [Record(timestamp: 1_000, key: ByteBuffer(string: "key\(k)"), value: ByteBuffer(string: value))])
                        .encode(to: &bytes)
                    newest["key\(k)"] = (try log.appendBatch(bytes).baseOffset, value)
                }
            }
            // Tail records in the active segment so every keyed record above sits in sealed ones.
            for i in 0..<6 { try log.appendBatch(try makeBatch(count: 1, tag: "tail\(i)")) }
            let stats = try log.compact()
            if expectMultiplePasses {
                XCTAssertGreaterThan(stats.passes, 1, "30 keys cannot fit a map of 8")
            } else {
                XCTAssertEqual(stats.passes, 1)
            }
            XCTAssertEqual(stats.recordsRemoved, 90, "three of every key's four records go")
            var seen: [String: (Int64, String)] = [:]
            for r in try log.readAllRecords(from: 0) {
                let key = String(buffer: r.key!)
                guard key.hasPrefix("key") else { continue }
                XCTAssertNil(seen[key], "\(key) appears twice")
                seen[key] = (r.offset, String(buffer: r.value!))
            }
            XCTAssertEqual(seen.count, 30)
            for (key, expected) in newest {
                XCTAssertEqual(seen[key]?.0, expected.0, key)
                XCTAssertEqual(seen[key]?.1, expected.1, key)
            }
            log.close()
        }
    }

    func testRetentionBytesDeletesOldestSegmentsAndPersistsStartOffset() throws {
        var config = LogConfig()
        config.segmentBytes = 1024
        config.retentionBytes = 3000
        let log = try open(config)
        for i in 0..<60 { try log.appendBatch(try makeBatch(count: 2, tag: "\(i)")) }
        let before = log.segmentCount
        XCTAssertGreaterThan(try log.enforceRetention(), 0)
        XCTAssertLessThan(log.segmentCount, before)
        XCTAssertLessThanOrEqual(log.sizeInBytes, 3000 + 1024)
        let start = log.logStartOffset
        XCTAssertGreaterThan(start, 0)
        XCTAssertThrowsError(try log.read(from: 0, maxBytes: 100))
        XCTAssertEqual(try log.readAllRecords(from: start).first?.offset, start)
        log.close()
        let reopened = try open(config)
        XCTAssertEqual(reopened.logStartOffset, start)
        XCTAssertEqual(reopened.logEndOffset, 120)
        reopened.close()
    }

    func testRetentionMsUsesNewestTimestampOfEachSegment() throws {
        var config = LogConfig()
        config.segmentBytes = 600
        config.retentionMs = 60_000
        let log = try open(config)
        let now = PartitionLog.nowMs()
        for i in 0..<10 { try log.appendBatch(try makeBatch(count: 2, timestamp: now - 3_600_000, tag: "old\(i)")) }
        for i in 0..<10 { try log.appendBatch(try makeBatch(count: 2, timestamp: now, tag: "new\(i)")) }
        try log.enforceRetention(nowMs: now)
        let records = try log.readAllRecords(from: log.logStartOffset)
        XCTAssertTrue(records.allSatisfy { $0.timestamp >= now - 3_600_000 })
        XCTAssertTrue(records.contains { $0.timestamp == now })
        XCTAssertGreaterThan(log.logStartOffset, 0)
        XCTAssertLessThanOrEqual(log.logStartOffset, 20, "no new record may be deleted")
        log.close()
    }

    func testSegmentMsRollsByFirstTimestamp() throws {
        var config = LogConfig()
        config.rollMs = 1000
        let log = try open(config)
        let now = PartitionLog.nowMs()
        try log.appendBatch(try makeBatch(count: 1, timestamp: now - 5000))
        try log.appendBatch(try makeBatch(count: 1, timestamp: now))
        XCTAssertEqual(log.segmentCount, 2)
        log.close()
    }

    func testDeleteRecordsMovesStartOffset() throws {
        var config = LogConfig()
        config.segmentBytes = 1024
        let log = try open(config)
        for i in 0..<40 { try log.appendBatch(try makeBatch(count: 2, tag: "\(i)")) }
        let segments = log.segmentCount
        XCTAssertEqual(try log.deleteRecords(before: 50), 50)
        XCTAssertLessThan(log.segmentCount, segments)
        XCTAssertEqual(try log.readAllRecords(from: 50).first?.offset, 50)
        XCTAssertThrowsError(try log.deleteRecords(before: 81))
        XCTAssertEqual(try log.deleteRecords(before: -1), 80)
        log.close()
    }

    func testCompactionKeepsNewestValuePerKeyWithOffsets() throws {
        var config = LogConfig()
        config.segmentBytes = 800
        config.cleanupPolicy = .compact
        config.deleteRetentionMs = 1000
        let log = try open(config, "c-0")
        let now = PartitionLog.nowMs()
        var newest: [String: (Int64, String?)] = [:]
        for round in 0..<12 {
            for k in 0..<5 {
                // Key 3's last write is a tombstone, old enough to be dropped.
                let tombstone = k == 3 && round == 11
                let value = tombstone ? nil : "v\(round)-\(k)"
                var bytes = ByteBuffer()
                try RecordBatch(records: [Record(
                    timestamp: tombstone ? now - 10_000 : now, key: ByteBuffer(string: "k\(k)"),
                    value: value.map { ByteBuffer(string: $0) })]).encode(to: &bytes)
                let offset = try log.appendBatch(bytes).baseOffset
                newest["k\(k)"] = (offset, value)
            }
        }
        // Writes after the tombstone land in the active segment, so the tombstone is cleanable.
        for i in 0..<8 { try log.appendBatch(try makeBatch(count: 1, tag: "tail\(i)")) }
        let end = log.logEndOffset
        let stats = try log.compact(nowMs: now)
        XCTAssertGreaterThan(stats.recordsRemoved, 40)
        XCTAssertEqual(log.logEndOffset, end)
        let records = try log.readAllRecords(from: 0)
        var seen: [String: (Int64, String?)] = [:]
        for r in records {
            let key = String(buffer: r.key!)
            XCTAssertNil(seen[key], "key \(key) appears twice")
            seen[key] = (r.offset, r.value.map { String(buffer: $0) })
        }
        for k in [0, 1, 2, 4] {
            XCTAssertEqual(seen["k\(k)"]?.0, newest["k\(k)"]!.0)
            XCTAssertEqual(seen["k\(k)"]?.1, newest["k\(k)"]!.1)
        }
        XCTAssertNil(seen["k3"], "an expired tombstone and everything before it are gone")
        log.close()
        // The compacted log reopens with the same content.
        let reopened = try open(config, "c-0")
        XCTAssertEqual(try reopened.readAllRecords(from: 0).count, records.count)
        reopened.close()
    }

    /// An aborted write of a key must not count as its latest value: the cleaner would then delete
    /// the committed value and keep the aborted one, which read_committed consumers drop — the key
    /// would vanish.
    func testCompactionIgnoresAbortedTransactionalRecords() throws {
        var config = LogConfig()
        config.segmentBytes = 600
        config.cleanupPolicy = .compact
        let log = try open(config, "txn-0")
        try log.appendBatch(try transactional("committed", producer: 1, sequence: 0))
        try log.appendBatch(try transactionMarker(commit: true, producer: 1))
        try log.appendBatch(try transactional("aborted", producer: 2, sequence: 0))
        try log.appendBatch(try transactionMarker(commit: false, producer: 2))
        for i in 0..<20 { try log.appendBatch(try makeBatch(count: 1, tag: "filler\(i)")) }
        XCTAssertGreaterThan(log.segmentCount, 2)
        try log.compact()
        let values = try log.readAllRecords(from: 0).filter { $0.key == ByteBuffer(string: "k") }.map { String(buffer: $0.value!) }
        XCTAssertTrue(values.contains("committed"), "\(values)")
        log.close()
    }

    /// Compaction holds the log's lock only to snapshot and to swap: appends made while a pass runs
    /// all land, and every key still reads back with its newest value.
    func testAppendsProceedWhileCompacting() throws {
        var config = LogConfig()
        config.segmentBytes = 2048
        config.cleanupPolicy = .compact
        let log = try open(config, "busy-0")
        func keyed(_ key: Int, _ value: Int) throws -> ByteBuffer {
            var out = ByteBuffer()
            try RecordBatch(records: [Record(timestamp: 1_000, key: ByteBuffer(string: "key\(key)"), value: ByteBuffer(string: "v\(value)"))])
                .encode(to: &out)
            return out
        }
        for i in 0..<400 { try log.appendBatch(try keyed(i % 10, i)) }
        let appended = NIOLockedValueBox<[Int64]>([])
        let batches = try (400..<600).map { try keyed($0 % 10, $0) }
        let failures = NIOLockedValueBox<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 2) { worker in
            do {
                if worker == 0 {
                    try log.compact()
                } else {
                    for batch in batches {
                        let offset = try log.appendBatch(batch).baseOffset
                        appended.withLockedValue { $0.append(offset) }
                    }
                }
            } catch {
                failures.withLockedValue { $0.append("\(error)") }
            }
        }
        XCTAssertEqual(failures.withLockedValue { $0 }, [])
        XCTAssertEqual(appended.withLockedValue { $0 }, (400..<600).map { Int64($0) })
        let records = try log.readAllRecords(from: 0)
        XCTAssertEqual(records.map(\.offset), records.map(\.offset).sorted())
        var newest: [String: String] = [:]
        for r in records { newest[String(buffer: r.key!)] = String(buffer: r.value!) }
        XCTAssertEqual(newest, Dictionary(uniqueKeysWithValues: (590..<600).map { ("key\($0 % 10)", "v\($0)") }))
        XCTAssertLessThan(records.count, 600, "the pass removed superseded records")
        log.close()
    }
}
