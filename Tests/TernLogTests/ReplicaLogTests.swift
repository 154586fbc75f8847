import Foundation
import NIOCore
import TernProtocol
import XCTest

@testable import TernLog

/// The log's side of replication: a follower keeps the leader's offsets and epochs, the high
/// watermark bounds what consumers read, the epoch cache answers where an epoch ended, and a
/// divergent tail is cut with everything derived from it.
final class ReplicaLogTests: XCTestCase {
    var dir: TempDir!
    let io = DiskIO(logger: testLogger)

    override func setUp() { dir = TempDir() }
    override func tearDown() { dir.cleanup() }

    func open(_ name: String, _ config: LogConfig = LogConfig()) throws -> PartitionLog {
        try PartitionLog(directory: dir.path + "/" + name, config: config, io: io, logger: testLogger)
    }

    /// Everything a follower would fetch from `leader`, from `offset`.
    func fetched(_ leader: PartitionLog, from offset: Int64) throws -> ByteBuffer {
        try leader.read(from: offset, maxBytes: 1 << 20, toLogEnd: true).records.bytes
    }

    func testFollowerKeepsTheLeadersOffsetsAndEpochs() throws {
        let leader = try open("leader-0"), follower = try open("follower-0")
        defer { leader.close(); follower.close() }
        try leader.append(try makeBatch(count: 3), headers: try RecordBatchHeader.validateAll(try makeBatch(count: 3)), leaderEpoch: 1)
        try leader.append(try makeBatch(count: 2), headers: try RecordBatchHeader.validateAll(try makeBatch(count: 2)), leaderEpoch: 4)
        let bytes = try fetched(leader, from: 0)
        try follower.append(bytes, headers: try RecordBatchHeader.validateAll(bytes), origin: .replica)
        XCTAssertEqual(follower.logEndOffset, 5)
        XCTAssertEqual(try fetched(follower, from: 0), bytes, "byte for byte the leader's batches")
        XCTAssertEqual(follower.leaderEpochs.entries.map(\.epoch), [1, 4])
        XCTAssertEqual(follower.leaderEpochs.entries.map(\.startOffset), [0, 3])

        // Batches that do not continue the log are refused, never renumbered.
        XCTAssertThrowsError(try follower.append(bytes, headers: try RecordBatchHeader.validateAll(bytes), origin: .replica)) { error in
            XCTAssertEqual(error as? LogError, .unexpectedAppendOffset(expectedAtLeast: 5, got: 0))
        }
    }

    /// A follower's write carries many batches, markers anywhere among them: each marker's type
    /// must come from its own batch, or an aborted transaction is missing from the follower's index
    /// and, once it leads, read_committed consumers get the aborted records (found by `tern verify`).
    func testAFollowerKnowsWhichTransactionsAborted() throws {
        let leader = try open("txn-leader-0"), follower = try open("txn-follower-0")
        defer { leader.close(); follower.close() }
        for batch in [
            try transactional("a", producer: 1, sequence: 0), try transactional("b", producer: 2, sequence: 0),
            try transactionMarker(commit: true, producer: 1), try transactionMarker(commit: false, producer: 2),
            try transactional("c", producer: 3, sequence: 0), try transactionMarker(commit: false, producer: 3),
        ] {
            try leader.appendBatch(batch)
        }
        let bytes = try fetched(leader, from: 0)
        try follower.append(bytes, headers: try RecordBatchHeader.validateAll(bytes), origin: .replica)
        let expected = try leader.read(from: 0, maxBytes: 1 << 20, readCommitted: true).abortedTransactions
        let copied = try follower.read(from: 0, maxBytes: 1 << 20, readCommitted: true).abortedTransactions
        XCTAssertEqual(expected.map(\.producerId), [2, 3])
        XCTAssertEqual(copied.map(\.producerId), expected.map(\.producerId))
        XCTAssertEqual(copied.map(\.firstOffset), expected.map(\.firstOffset))
        XCTAssertEqual(follower.lastStableOffset, follower.logEndOffset, "no transaction left open")
    }

    /// A follower catching up fetches thousands of small batches at once (an idempotent producer
    /// sending one record at a time): more than IOV_MAX of them in one write was refused (EINVAL)
    /// and took the follower's log directory offline (found by `tern verify`).
    func testAFollowerWritesThousandsOfSmallBatchesAtOnce() throws {
        let leader = try open("small-leader-0"), follower = try open("small-follower-0")
        defer { leader.close(); follower.close() }
        for i in 0..<(DiskIO.maxBuffersPerWrite * 2 + 10) {
            try leader.appendBatch(try makeBatch(count: 1, valueSize: 1, tag: "\(i)"))
        }
        let bytes = try leader.read(from: 0, maxBytes: 8 << 20, toLogEnd: true).records.bytes
        let headers = try RecordBatchHeader.validateAll(bytes)
        XCTAssertGreaterThan(headers.count, DiskIO.maxBuffersPerWrite)
        try follower.append(bytes, headers: headers, origin: .replica)
        XCTAssertEqual(follower.logEndOffset, leader.logEndOffset)
        XCTAssertEqual(try fetched(follower, from: 0), bytes)
        // And a write of more buffers than that, from any caller, goes through whole.
        let fd = Glibc.open(dir.path + "/many-buffers", O_RDWR | O_CREAT, 0o600)
        defer { close(fd) }
        let pieces = (0..<(DiskIO.maxBuffersPerWrite + 5)).map { ByteBuffer(string: "\($0 % 10)") }
        XCTAssertNil(io.submit([DiskIO.Write(fd: fd, buffers: pieces, offset: 0, sync: false, linkNext: false)])[0])
        var stat = stat()
        fstat(fd, &stat)
        XCTAssertEqual(Int(stat.st_size), pieces.count)
    }

    /// A write accepted while this broker led must not land once it follows: between batches copied
    /// from the new leader no epoch comparison could find it, and the replicas would differ for
    /// good (found by `tern verify`: a transaction marker queued on a deposed leader).
    func testAppendsAreTakenOnlyInTheirRole() throws {
        let log = try open("role-0")
        defer { log.close() }
        let batch = try makeBatch(count: 1)
        log.lead(inEpoch: 1)
        XCTAssertNoThrow(try log.append(batch, headers: try RecordBatchHeader.validateAll(batch), origin: .leader()))
        XCTAssertThrowsError(try log.append(batch, headers: try RecordBatchHeader.validateAll(batch), origin: .replica)) {
            XCTAssertEqual($0 as? LogError, .notInRole)
        }
        log.follow()
        for origin: PartitionLog.Origin in [.leader(), .leader(epoch: 1), .coordinator] {
            XCTAssertThrowsError(try log.append(batch, headers: try RecordBatchHeader.validateAll(batch), origin: origin)) {
                XCTAssertEqual($0 as? LogError, .notInRole)
            }
        }
        var copied = try makeBatch(count: 1)
        copied.setInteger(Int64(1), at: copied.readerIndex)  // the leader's offset
        XCTAssertNoThrow(try log.append(copied, headers: try RecordBatchHeader.validateAll(copied), origin: .replica))
        XCTAssertEqual(log.logEndOffset, 2)
    }

    func testEpochEndOffsetsFollowKafkasRules() {
        var cache = LeaderEpochCache()
        cache.observe(epoch: 1, at: 0)
        cache.observe(epoch: 3, at: 10)
        cache.observe(epoch: 2, at: 12)  // older than the latest: ignored
        cache.observe(epoch: 5, at: 20)
        XCTAssertEqual(cache.endOffset(for: 5, logEnd: 25).endOffset, 25, "the latest epoch ends at the log end")
        XCTAssertTrue(cache.endOffset(for: 3, logEnd: 25) == (3, 20))
        XCTAssertTrue(cache.endOffset(for: 4, logEnd: 25) == (3, 20), "an epoch this log never had: the one before it")
        XCTAssertTrue(cache.endOffset(for: 0, logEnd: 25) == (0, 0), "before the first: where the first started")
        XCTAssertTrue(cache.endOffset(for: 6, logEnd: 25) == (-1, -1), "beyond the latest: unknown")
        cache.truncate(fromEnd: 10)
        XCTAssertEqual(cache.entries.map(\.epoch), [1])
    }

    func testHighWatermarkBoundsConsumersButNotFollowers() throws {
        let log = try open("hw-0")
        defer { log.close() }
        log.trackHighWatermark()
        try log.appendBatch(try makeBatch(count: 3))
        try log.appendBatch(try makeBatch(count: 2))
        XCTAssertEqual(log.highWatermark, 0)
        XCTAssertEqual(try log.read(from: 0, maxBytes: 1 << 20).records.byteCount, 0, "nothing replicated yet")
        XCTAssertTrue(log.advanceHighWatermark(to: 3))
        let visible = try RecordBatchHeader.validateAll(try log.read(from: 0, maxBytes: 1 << 20).records.bytes)
        XCTAssertEqual(visible.map(\.baseOffset), [0], "consumers stop at the high watermark")
        XCTAssertEqual(try log.read(from: 0, maxBytes: 1 << 20).highWatermark, 3)
        XCTAssertEqual(try RecordBatchHeader.validateAll(try fetched(log, from: 0)).count, 2, "followers read to the end")
        XCTAssertFalse(log.advanceHighWatermark(to: 2), "never back")
        XCTAssertTrue(log.advanceHighWatermark(to: 99))
        XCTAssertEqual(log.highWatermark, 5, "never past the log end")
        XCTAssertEqual(log.lastStableOffset, 5)
    }

    func testTruncationCutsTheTailAndWhatWasDerivedFromIt() throws {
        var config = LogConfig()
        config.segmentBytes = 400  // several segments, so whole segments go too
        var log = try open("cut-0", config)
        for epoch in [1, 1, 2, 2, 2, 3, 3] as [Int32] {
            let bytes = try makeBatch(count: 2, tag: "e\(epoch)")
            try log.append(bytes, headers: try RecordBatchHeader.validateAll(bytes), leaderEpoch: epoch)
        }
        XCTAssertGreaterThan(log.segmentCount, 2)
        log.trackHighWatermark()
        log.advanceHighWatermark(to: 14)
        // Epoch 2 ended at 10 on the leader: everything from there is a tail it never had.
        try log.truncate(to: 6)
        XCTAssertEqual(log.logEndOffset, 6)
        XCTAssertEqual(log.highWatermark, 6)
        XCTAssertEqual(log.leaderEpochs.entries.map(\.epoch), [1, 2])
        XCTAssertEqual(try log.readAllRecords(from: 0).count, 6)
        let bytes = try makeBatch(count: 1, tag: "new")
        XCTAssertEqual(try log.append(bytes, headers: try RecordBatchHeader.validateAll(bytes), leaderEpoch: 4).baseOffset, 6)

        // All of it survives a restart: the epoch file, the offsets, the data.
        log.close()
        log = try open("cut-0", config)
        defer { log.close() }
        XCTAssertEqual(log.logEndOffset, 7)
        XCTAssertEqual(log.leaderEpochs.entries.map(\.epoch), [1, 2, 4])
        XCTAssertEqual(log.leaderEpochs.entries.map(\.startOffset), [0, 4, 6])
        XCTAssertEqual(try log.readAllRecords(from: 0).map(\.offset), Array(0..<7))
    }

    func testTruncatingFullyRestartsTheLogAtTheLeadersStart() throws {
        let log = try open("full-0")
        defer { log.close() }
        try log.appendBatch(try makeBatch(count: 4))
        try log.truncateFully(startingAt: 100)
        XCTAssertEqual(log.logStartOffset, 100)
        XCTAssertEqual(log.logEndOffset, 100)
        XCTAssertEqual(log.leaderEpochs.entries, [])
        let leader = try open("leader-0")
        defer { leader.close() }
        try leader.truncateFully(startingAt: 100)
        try leader.appendBatch(try makeBatch(count: 2))
        let bytes = try fetched(leader, from: 100)
        try log.append(bytes, headers: try RecordBatchHeader.validateAll(bytes), origin: .replica)
        XCTAssertEqual(log.logEndOffset, 102)
    }
}
