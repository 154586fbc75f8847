import NIOCore
import XCTest

@testable import TernProtocol

final class RecordBatchTests: XCTestCase {
    private func sampleRecords() -> [Record] {
        [
            Record(timestamp: 1_700_000_000_000, key: ByteBuffer(string: "k1"), value: ByteBuffer(string: "v1"),
                   headers: [RecordHeader(key: "trace", value: ByteBuffer(bytes: [0, 1, 2])), RecordHeader(key: "n", value: nil)]),
            Record(timestamp: 1_700_000_000_005, key: nil, value: ByteBuffer(string: String(repeating: "z", count: 300))),
            Record(timestamp: 1_699_999_999_999, key: ByteBuffer(string: "tomb"), value: nil),
        ]
    }

    func testUncompressedAndLZ4BatchesRoundTrip() throws {
        for codec in [CompressionCodec.none, .lz4] {
            var batch = RecordBatch(records: sampleRecords(), compression: codec)
            batch.baseOffset = 40
            var bytes = ByteBuffer()
            try batch.encode(to: &bytes)
            let header = try RecordBatchHeader.validated(in: bytes, at: 0)
            XCTAssertEqual(header.magic, 2)
            XCTAssertEqual(header.compression, codec)
            XCTAssertEqual(header.recordsCount, 3)
            XCTAssertEqual(header.lastOffset, 42)
            XCTAssertEqual(header.maxTimestamp, 1_700_000_000_005)
            XCTAssertEqual(header.totalSize, bytes.readableBytes)
            let decoded = try RecordBatch.read(from: &bytes)
            XCTAssertEqual(decoded.records.map(\.offset), [40, 41, 42])
            XCTAssertEqual(decoded.records.map(\.timestamp), sampleRecords().map(\.timestamp))
            XCTAssertEqual(decoded.records.map(\.key), sampleRecords().map(\.key))
            XCTAssertEqual(decoded.records.map(\.value), sampleRecords().map(\.value))
            XCTAssertEqual(decoded.records[0].headers, sampleRecords()[0].headers)
        }
    }

    func testCRCCoversAttributesToEndButNotBaseOffsetOrEpoch() throws {
        var bytes = ByteBuffer()
        try RecordBatch(records: sampleRecords()).encode(to: &bytes)
        // The broker rewrites base offset and leader epoch without touching the CRC.
        bytes.setInteger(Int64(12345), at: 0)
        bytes.setInteger(Int32(7), at: 12)
        XCTAssertNoThrow(try RecordBatchHeader.validated(in: bytes, at: 0))
        for position in [21, 30, bytes.readableBytes - 1] {
            var tampered = bytes
            tampered.setInteger(tampered.getInteger(at: position, as: UInt8.self)! ^ 0x40, at: position)
            XCTAssertThrowsError(try RecordBatchHeader.validated(in: tampered, at: 0)) { error in
                guard case RecordBatchError.crcMismatch = error else { return XCTFail("\(error)") }
            }
        }
    }

    func testTruncatedAndOldMagicBatchesAreRejected() throws {
        var bytes = ByteBuffer()
        try RecordBatch(records: sampleRecords()).encode(to: &bytes)
        XCTAssertThrowsError(try RecordBatchHeader.validated(in: bytes.getSlice(at: 0, length: bytes.readableBytes - 1)!, at: 0)) {
            XCTAssertEqual($0 as? RecordBatchError, .truncated)
        }
        var old = bytes
        old.setInteger(Int8(1), at: 16)
        XCTAssertThrowsError(try RecordBatchHeader.validated(in: old, at: 0)) {
            XCTAssertEqual($0 as? RecordBatchError, .unsupportedMagic(1))
        }
        var negative = bytes
        negative.setInteger(Int32(-1), at: 8)
        XCTAssertThrowsError(try RecordBatchHeader.validated(in: negative, at: 0))
    }

    func testValidateAllWalksBackToBackBatches() throws {
        var bytes = ByteBuffer()
        try RecordBatch(records: sampleRecords()).encode(to: &bytes)
        try RecordBatch(records: Array(sampleRecords().prefix(1)), compression: .lz4).encode(to: &bytes)
        let headers = try RecordBatchHeader.validateAll(bytes)
        XCTAssertEqual(headers.map(\.recordsCount), [3, 1])
        // Trailing junk after the last whole batch is an error, not silently dropped.
        bytes.writeBytes([1, 2, 3])
        XCTAssertThrowsError(try RecordBatchHeader.validateAll(bytes))
    }
}
