import NIOCore
import XCTest

@testable import TernLog
@testable import TernProtocol

final class ClientBatchValidatorTests: XCTestCase {
    let policy = BatchPolicy(maxMessageBytes: 1 << 20)

    /// A producer's batch built field by field, with a correct CRC-32C, so only deeper checks can fail.
    func batch(records: [(key: String?, value: String, offsetDelta: Int32, timestampDelta: Int64)], count: Int32? = nil,
               lastOffsetDelta: Int32? = nil, baseOffset: Int64 = 0, attributes: Int16 = 0, producerId: Int64 = -1, epoch: Int16 = -1,
               sequence: Int32 = -1, maxTimestamp: Int64? = nil, codec: CompressionCodec = .none, trailing: [UInt8] = []) throws -> ByteBuffer {
        var body = ByteBuffer()
        for r in records {
            Record.write(to: &body, offsetDelta: r.offsetDelta, timestampDelta: r.timestampDelta, key: r.key.map { ByteBuffer(string: $0) },
                         value: ByteBuffer(string: r.value), headers: [])
        }
        body.writeBytes(trailing)
        body = try RecordCompression.compress(body, codec: codec)
        var out = ByteBuffer()
        let n = Int32(records.count)
        RecordBatch.write(
            to: &out, baseOffset: baseOffset, partitionLeaderEpoch: -1, attributes: attributes | codec.rawValue,
            lastOffsetDelta: lastOffsetDelta ?? (count ?? n) - 1, baseTimestamp: 1_000,
            maxTimestamp: maxTimestamp ?? 1_000 + (records.map(\.timestampDelta).max() ?? 0), producerId: producerId, producerEpoch: epoch,
            baseSequence: sequence, recordCount: count ?? n, records: body)
        return out
    }

    func records(_ n: Int, keyed: Bool = true) -> [(key: String?, value: String, offsetDelta: Int32, timestampDelta: Int64)] {
        (0..<n).map { (keyed ? "k\($0)" : nil, "value \($0)", Int32($0), Int64($0)) }
    }

    func validate(_ b: ByteBuffer, _ policy: BatchPolicy? = nil) throws -> RecordBatchHeader {
        var b = b
        return try ClientBatchValidator.validate(&b, policy: policy ?? self.policy, nowMs: 1_000)
    }

    func assertInvalidRecord(_ b: ByteBuffer, _ needle: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try validate(b), file: file, line: line) { error in
            guard case RecordBatchError.invalidRecord(let message) = error else { return XCTFail("\(error)", file: file, line: line) }
            XCTAssertTrue(message.contains(needle), message, file: file, line: line)
        }
    }

    func testValidBatchesOfEveryCodecPass() throws {
        for codec in CompressionCodec.allCases {
            let h = try validate(try batch(records: records(50), codec: codec))
            XCTAssertEqual(h.recordsCount, 50, "\(codec)")
        }
    }

    func testHeadersThatLieAreInvalidRecord() throws {
        let one = records(1), two = records(2)
        assertInvalidRecord(try batch(records: one, lastOffsetDelta: Int32.max), "inconsistent batch offset range")
        assertInvalidRecord(try batch(records: one, count: 2, lastOffsetDelta: 0), "inconsistent batch offset range")
        assertInvalidRecord(try batch(records: one, count: 2, lastOffsetDelta: 1), "malformed record")
        assertInvalidRecord(try batch(records: two, count: 1), "incorrect declared batch size")
        assertInvalidRecord(try batch(records: [], count: 0, lastOffsetDelta: 0), "invalid reported count")
        assertInvalidRecord(try batch(records: one, baseOffset: 7), "base offset")
        assertInvalidRecord(try batch(records: [("k", "a", 0, 0), ("k", "b", 2, 0)]), "offset delta 2")
        assertInvalidRecord(try batch(records: one, attributes: 0x30, producerId: 5, epoch: 0, sequence: 0), "control")
        assertInvalidRecord(try batch(records: one, attributes: 0x10), "transactional batch without a producer id")
        assertInvalidRecord(try batch(records: one, producerId: 5, epoch: 0, sequence: -1), "invalid sequence number")
        assertInvalidRecord(try batch(records: one, producerId: 5, epoch: -1, sequence: 0), "invalid producer epoch")
        assertInvalidRecord(try batch(records: one, trailing: [0x00]), "incorrect declared batch size")
        var twoBatches = try batch(records: one)
        twoBatches.writeImmutableBuffer(try batch(records: one))
        assertInvalidRecord(twoBatches, "exactly one record batch")
    }

    func testCompactedTopicsReportEachKeylessRecord() throws {
        let b = try batch(records: [("k", "a", 0, 0), (nil, "b", 1, 0), ("k", "c", 2, 0), (nil, "d", 3, 0)])
        XCTAssertNoThrow(try validate(b))
        XCTAssertThrowsError(try validate(b, BatchPolicy(maxMessageBytes: 1 << 20, compacted: true))) { error in
            guard let e = error as? RecordValidationError else { return XCTFail("\(error)") }
            XCTAssertEqual(e.kind, .invalidRecord)
            XCTAssertEqual(e.recordErrors.map(\.batchIndex), [1, 3])
        }
    }

    func testTimestampsOutsideTheConfiguredWindowAreInvalidTimestamp() throws {
        let strict = BatchPolicy(maxMessageBytes: 1 << 20, timestampBeforeMaxMs: 100, timestampAfterMaxMs: 100)
        XCTAssertNoThrow(try validate(try batch(records: [("k", "a", 0, 50)]), strict))
        XCTAssertThrowsError(try validate(try batch(records: [("k", "a", 0, 0), ("k", "b", 1, 500)]), strict)) { error in
            XCTAssertEqual((error as? RecordValidationError)?.kind, .invalidTimestamp)
            XCTAssertEqual((error as? RecordValidationError)?.recordErrors.map(\.batchIndex), [1])
        }
        XCTAssertThrowsError(try validate(try batch(records: records(1), attributes: 0x08))) { error in
            XCTAssertEqual((error as? RecordValidationError)?.kind, .invalidTimestamp, "clients may not set LogAppendTime")
        }
    }

    func testMaxTimestampIsCorrectedInPlaceWithAValidCRC() throws {
        var b = try batch(records: [("k", "a", 0, 0), ("k", "b", 1, 900)], maxTimestamp: 5)
        let h = try ClientBatchValidator.validate(&b, policy: policy, nowMs: 0)
        XCTAssertEqual(h.maxTimestamp, 1_900)
        XCTAssertEqual(try RecordBatchHeader.validated(in: b, at: b.readerIndex).maxTimestamp, 1_900, "CRC recomputed")
    }

    func testOversizedBatchIsTooLarge() throws {
        XCTAssertThrowsError(try validate(try batch(records: records(100)), BatchPolicy(maxMessageBytes: 200))) { error in
            guard case RecordBatchError.tooLarge = error else { return XCTFail("\(error)") }
        }
    }

    func testZipBombsStopAtTheDecompressionLimit() throws {
        // One record whose value is 8 MiB of zeros: a few KB compressed with any codec.
        let huge = String(repeating: "\0", count: 8 << 20)
        for codec in [CompressionCodec.gzip, .snappy, .lz4, .zstd] {
            let b = try batch(records: [("k", huge, 0, 0)], codec: codec)
            XCTAssertLessThan(b.readableBytes, 1 << 20, "\(codec)")
            XCTAssertThrowsError(try validate(b, BatchPolicy(maxMessageBytes: 1 << 20, decompressedLimit: 1 << 20))) { error in
                XCTAssertEqual(error as? RecordBatchError, .decompressedTooLarge(limit: 1 << 20), "\(codec)")
            }
            XCTAssertNoThrow(try validate(b), "\(codec): within the default limit")
        }
    }

    func testTruncatedCompressedRecordsAreCorruptCompression() throws {
        for codec in [CompressionCodec.gzip, .snappy, .lz4, .zstd] {
            let good = try batch(records: records(20), codec: codec)
            var cut = good.getSlice(at: good.readerIndex, length: good.readableBytes - 4)!
            cut.setInteger(cut.getInteger(at: 8, as: Int32.self)! - 4, at: 8)
            RecordBatch.updateCRC(in: &cut, batchAt: cut.readerIndex)
            XCTAssertThrowsError(try validate(cut), "\(codec)") { error in
                XCTAssertEqual(error as? RecordBatchError, .corruptCompression(codec))
            }
        }
    }

    /// Mutated batches (with their CRC fixed up, so every byte reaches the deep checks) never
    /// crash the validator, and whatever it accepts decodes completely.
    func testMutatedBatchesAreRefusedOrFullyReadable() throws {
        var rng = SystemRandomNumberGenerator()
        let seeds = try CompressionCodec.allCases.map { try batch(records: records(8), codec: $0) }
        var accepted = 0
        for i in 0..<20_000 {
            var b = seeds[i % seeds.count]
            let body = b.readableBytes - RecordBatchHeader.attributesOffset
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let at = b.readerIndex + RecordBatchHeader.attributesOffset + Int.random(in: 0..<body, using: &rng)
                b.setInteger(UInt8.random(in: 0...255, using: &rng), at: at)
            }
            RecordBatch.updateCRC(in: &b, batchAt: b.readerIndex)
            guard let h = try? ClientBatchValidator.validate(&b, policy: policy, nowMs: 1_000) else { continue }
            accepted += 1
            var copy = b
            let decoded = try RecordBatch.read(from: &copy)
            XCTAssertEqual(decoded.records.count, Int(h.recordsCount))
            XCTAssertEqual(decoded.records.map(\.offset), (0..<Int64(h.recordsCount)).map { $0 })
        }
        XCTAssertGreaterThan(accepted, 0, "some mutations (values, timestamps) are legitimately valid")
    }
}
