import Foundation
import NIOCore
import TernProtocol
import XCTest

@testable import TernLog

final class PartitionLogTests: XCTestCase {
    var dir: TempDir!
    let io = DiskIO(logger: testLogger)

    override func setUp() { dir = TempDir() }
    override func tearDown() { dir.cleanup() }

    func open(_ config: LogConfig = LogConfig()) throws -> PartitionLog {
        try PartitionLog(directory: dir.path + "/t-0", config: config, io: io, logger: testLogger)
    }

    func testAppendAssignsConsecutiveOffsetsAndReadsBack() throws {
        let log = try open()
        XCTAssertEqual(try log.appendBatch(try makeBatch(count: 3)).baseOffset, 0)
        XCTAssertEqual(try log.appendBatch(try makeBatch(count: 2, tag: "b")).baseOffset, 3)
        XCTAssertEqual(log.logEndOffset, 5)
        let records = try log.readAllRecords(from: 0)
        XCTAssertEqual(records.map(\.offset), [0, 1, 2, 3, 4])
        XCTAssertEqual(records[3].key, ByteBuffer(string: "kb0"))
        XCTAssertEqual(records[4].headers, [RecordHeader(key: "h", value: ByteBuffer(string: "1"))])
        // Reading from the middle of a batch returns the whole batch (Kafka semantics).
        var mid = try log.read(from: 1, maxBytes: 1).records.bytes
        let batch = try RecordBatch.read(from: &mid)
        XCTAssertEqual(batch.baseOffset, 0)
        XCTAssertEqual(batch.records.count, 3)
        log.close()
    }

    func testStoredBatchesKeepValidCRCAfterOffsetAssignment() throws {
        let log = try open()
        try log.appendBatch(try makeBatch(count: 4))
        try log.appendBatch(try makeBatch(count: 4))
        let bytes = try log.read(from: 0, maxBytes: 1 << 20).records.bytes
        let headers = try RecordBatchHeader.validateAll(bytes)
        XCTAssertEqual(headers.map(\.baseOffset), [0, 4])
        log.close()
    }

    func testReadingAtEndIsEmptyAndPastEndIsOutOfRange() throws {
        let log = try open()
        try log.appendBatch(try makeBatch(count: 2))
        XCTAssertEqual(try log.read(from: 2, maxBytes: 100).records.byteCount, 0)
        XCTAssertThrowsError(try log.read(from: 3, maxBytes: 100)) { error in
            XCTAssertEqual(error as? LogError, .offsetOutOfRange(requested: 3, logStart: 0, logEnd: 2))
        }
        log.close()
    }

    func testSegmentsRollAndReadsCrossThem() throws {
        var config = LogConfig()
        config.segmentBytes = 1024
        config.indexIntervalBytes = 128
        let log = try open(config)
        for i in 0..<40 { try log.appendBatch(try makeBatch(count: 3, tag: "\(i)")) }
        XCTAssertGreaterThan(log.segmentCount, 3)
        let records = try log.readAllRecords(from: 0)
        XCTAssertEqual(records.map(\.offset), Array(0..<120))
        XCTAssertEqual(try log.readAllRecords(from: 77).first?.offset, 77)
        log.close()
        // Reopen: sealed segments load their indexes, the data is all there.
        let reopened = try open(config)
        XCTAssertEqual(reopened.logEndOffset, 120)
        XCTAssertEqual(try reopened.readAllRecords(from: 0).count, 120)
        XCTAssertEqual(try reopened.readAllRecords(from: 100).first?.key, ByteBuffer(string: "k331"))
        reopened.close()
    }

    func testTornTailIsTruncatedAndEarlierBytesSurvive() throws {
        let log = try open()
        try log.appendBatch(try makeBatch(count: 5))
        try log.appendBatch(try makeBatch(count: 5, tag: "b"))
        log.close()
        let file = dir.path + "/t-0/00000000000000000000.log"
        let intact = try Data(contentsOf: URL(fileURLWithPath: file))
        // A torn write: half of a third batch.
        let third = try makeBatch(count: 5, tag: "c")
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: file))
        handle.seekToEndOfFile()
        handle.write(Data(third.getBytes(at: 0, length: third.readableBytes / 2)!))
        handle.closeFile()

        let reopened = try open()
        XCTAssertEqual(reopened.logEndOffset, 10)
        XCTAssertEqual(try reopened.readAllRecords(from: 0).count, 10)
        reopened.close()
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: file)), intact)
    }

    func testCorruptBatchIsTruncatedWithEverythingAfterIt() throws {
        let log = try open()
        try log.appendBatch(try makeBatch(count: 5))
        try log.appendBatch(try makeBatch(count: 5, tag: "b"))
        try log.appendBatch(try makeBatch(count: 5, tag: "c"))
        log.close()
        let file = dir.path + "/t-0/00000000000000000000.log"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: file))
        let firstSize = try makeBatch(count: 5).readableBytes
        bytes[firstSize + 70] ^= 0xFF  // flip a byte inside the second batch's records: bad CRC
        try bytes.write(to: URL(fileURLWithPath: file))

        let reopened = try open()
        XCTAssertEqual(reopened.logEndOffset, 5)
        XCTAssertEqual(try reopened.readAllRecords(from: 0).map(\.offset), [0, 1, 2, 3, 4])
        // New appends continue from the recovered end.
        XCTAssertEqual(try reopened.appendBatch(try makeBatch(count: 1)).baseOffset, 5)
        reopened.close()
    }

    func testOffsetForTimestampUsesTimeIndex() throws {
        var config = LogConfig()
        config.indexIntervalBytes = 64
        config.segmentBytes = 2048
        let log = try open(config)
        for i in 0..<30 { try log.appendBatch(try makeBatch(count: 2, timestamp: Int64(10_000 + i * 10))) }
        // Batch i holds timestamps 10000+10i and 10000+10i+1 at offsets 2i, 2i+1.
        let hit = try log.offset(forTimestamp: 10_151)
        XCTAssertEqual(hit?.offset, 31)
        XCTAssertEqual(hit?.timestamp, 10_151)
        XCTAssertEqual(try log.offset(forTimestamp: 10_152)?.offset, 32)
        XCTAssertEqual(try log.offset(forTimestamp: 0)?.offset, 0)
        XCTAssertNil(try log.offset(forTimestamp: 99_999))
        log.close()
    }

    func testFlushPerMessageUsesLinkedSync() throws {
        var config = LogConfig()
        config.flushIntervalMessages = 1
        let simulation = CrashSimulation()
        let log = try PartitionLog(directory: dir.path + "/t-0", config: config, io: DiskIO(logger: testLogger, crashSimulation: simulation),
                                   logger: testLogger)
        for i in 0..<10 {
            try log.appendBatch(try makeBatch(count: 1))
            XCTAssertEqual(simulation.syncCount, i + 1, "each append is synced before it returns")
        }
        XCTAssertEqual(log.logEndOffset, 10)
        log.close()
    }

    /// A batch whose offsets span almost 2^31 (a compacted batch may keep a wide range with few
    /// records): the next append would overflow the 32-bit relative offsets of the segment's
    /// indexes, so it rolls a new segment instead of trapping.
    func testRelativeOffsetOverflowRollsANewSegment() throws {
        let log = try open()
        var wide = try makeBatch(count: 1)
        wide.setInteger(Int32.max - 1, at: wide.readerIndex + 23)  // lastOffsetDelta
        RecordBatch.updateCRC(in: &wide, batchAt: wide.readerIndex)
        try log.appendBatch(wide)
        XCTAssertEqual(log.logEndOffset, Int64(Int32.max))
        XCTAssertEqual(try log.appendBatch(try makeBatch(count: 3)).baseOffset, Int64(Int32.max))
        XCTAssertEqual(log.segmentCount, 2)
        log.close()
        let reopened = try open()
        XCTAssertEqual(reopened.logEndOffset, Int64(Int32.max) + 3)
        XCTAssertEqual(try reopened.readAllRecords(from: Int64(Int32.max)).map(\.offset), [2_147_483_647, 2_147_483_648, 2_147_483_649])
        reopened.close()
    }

    /// The crash loop of issue 9: a segment holding a batch whose offsets do not fit it (written by
    /// an older version) is cut at that batch on recovery, never trapped on.
    func testRecoveryCutsABatchWhoseOffsetsOverflowTheSegment() throws {
        let log = try open()
        try log.appendBatch(try makeBatch(count: 2))
        log.close()
        let file = dir.path + "/t-0/00000000000000000000.log"
        var bad = try makeBatch(count: 1)
        bad.setInteger(Int64(Int32.max) + 10, at: bad.readerIndex)  // base offset far past the segment's range
        RecordBatch.updateCRC(in: &bad, batchAt: bad.readerIndex)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: file))
        handle.seekToEndOfFile()
        handle.write(Data(bad.readableBytesView))
        handle.closeFile()
        let reopened = try open()
        XCTAssertEqual(reopened.logEndOffset, 2)
        XCTAssertEqual(try reopened.appendBatch(try makeBatch(count: 1)).baseOffset, 2)
        reopened.close()
    }

    /// A sealed segment's index files that are well formed but describe other data (here: shifted
    /// entries) are detected at open and rebuilt; reads return the right records.
    func testWellFormedButWrongIndexIsRebuilt() throws {
        var config = LogConfig()
        config.indexIntervalBytes = 64
        config.segmentBytes = 2048
        let log = try open(config)
        for i in 0..<40 { try log.appendBatch(try makeBatch(count: 2, tag: "\(i)")) }
        XCTAssertGreaterThan(log.segmentCount, 2)
        log.close()
        let index = dir.path + "/t-0/00000000000000000000.index"
        var bytes = [UInt8]()
        for i in 0..<6 { bytes += IndexFile.be(UInt32(i * 3 + 1)) + IndexFile.be(UInt32(i * 97 + 13)) }
        try Data(bytes).write(to: URL(fileURLWithPath: index))
        let reopened = try open(config)
        XCTAssertEqual(try reopened.readAllRecords(from: 0).map(\.offset), (0..<80).map { Int64($0) })
        var middle = try reopened.read(from: 7, maxBytes: 1).records.bytes
        XCTAssertEqual(try RecordBatch.read(from: &middle).baseOffset, 6)
        reopened.close()
    }

    /// A persisted log start offset beyond the log's end would hide every record, new ones too: it
    /// is clamped to the end at open.
    func testLogStartOffsetBeyondTheEndIsClamped() throws {
        let log = try open()
        try log.appendBatch(try makeBatch(count: 5))
        log.close()
        try "1000\n".write(toFile: dir.path + "/t-0/log-start-offset", atomically: true, encoding: .utf8)
        let reopened = try open()
        XCTAssertEqual(reopened.logStartOffset, 5)
        XCTAssertEqual(try reopened.appendBatch(try makeBatch(count: 1)).baseOffset, 5)
        XCTAssertEqual(try reopened.readAllRecords(from: 5).map(\.offset), [5])
        reopened.close()
    }

    /// A crash can lose the tail of a sealed segment whose background sync had not finished while
    /// a later segment survived. Recovery re-validates every segment from the recovery point on
    /// and drops what follows lost bytes, so offsets stay dense.
    func testSegmentsAfterALostTailAreDropped() throws {
        var config = LogConfig()
        config.segmentBytes = 1024
        let log = try open(config)
        for i in 0..<30 { try log.appendBatch(try makeBatch(count: 2, tag: "\(i)")) }
        let segments = log.segmentCount
        XCTAssertGreaterThanOrEqual(segments, 4)
        log.close()
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/t-0").filter { $0.hasSuffix(".log") }.sorted()
        // As if the crash came before any background sync: no recovery point, and the second
        // segment lost its last 30 bytes.
        try FileManager.default.removeItem(atPath: dir.path + "/t-0/recovery-point")
        let victim = dir.path + "/t-0/" + files[1]
        let size = try FileManager.default.attributesOfItem(atPath: victim)[.size] as! Int
        truncate(victim, off_t(size - 30))
        let reopened = try open(config)
        XCTAssertEqual(reopened.segmentCount, 2)
        let end = reopened.logEndOffset
        XCTAssertEqual(try reopened.readAllRecords(from: 0).map(\.offset), (0..<end).map { $0 })
        XCTAssertEqual(try reopened.appendBatch(try makeBatch(count: 1)).baseOffset, end)
        reopened.close()
    }

    func testRecoveryPointFollowsRolls() throws {
        var config = LogConfig()
        config.segmentBytes = 1024
        let log = try open(config)
        for i in 0..<30 { try log.appendBatch(try makeBatch(count: 2, tag: "\(i)")) }
        log.close()
        let point = try String(contentsOfFile: dir.path + "/t-0/recovery-point", encoding: .utf8)
        let lastBase = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/t-0")
            .filter { $0.hasSuffix(".log") }.compactMap { Int64($0.dropLast(4)) }.max()!
        XCTAssertEqual(Int64(point.trimmingCharacters(in: .whitespacesAndNewlines)), lastBase)
    }
}
