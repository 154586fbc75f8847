import CTernCodec
import NIOCore
import XCTest

@testable import TernProtocol

final class PrimitivesTests: XCTestCase {
    func testUnsignedVarintEncodings() throws {
        let cases: [(UInt32, [UInt8])] = [(0, [0]), (1, [1]), (127, [0x7F]), (128, [0x80, 0x01]), (300, [0xAC, 0x02]),
                                          (UInt32.max, [0xFF, 0xFF, 0xFF, 0xFF, 0x0F])]
        for (value, encoded) in cases {
            var b = ByteBuffer()
            b.writeUnsignedVarint(value)
            XCTAssertEqual(Array(b.readableBytesView), encoded, "\(value)")
            XCTAssertEqual(try b.readUnsignedVarint(), value)
        }
    }

    func testZigzagVarintAndVarlong() throws {
        for v: Int32 in [0, -1, 1, -64, 63, 64, Int32.min, Int32.max] {
            var b = ByteBuffer()
            b.writeVarint(v)
            XCTAssertEqual(try b.readVarint(), v)
        }
        var one = ByteBuffer()
        one.writeVarint(-1)
        XCTAssertEqual(Array(one.readableBytesView), [0x01])  // zigzag(-1) = 1
        for v: Int64 in [0, -1, 1, 1_700_000_000_000, Int64.min, Int64.max] {
            var b = ByteBuffer()
            b.writeVarlong(v)
            XCTAssertEqual(try b.readVarlong(), v)
        }
    }

    func testOverlongVarintIsRejected() {
        var b = ByteBuffer(bytes: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01])
        XCTAssertThrowsError(try b.readUnsignedVarint())
        var t = ByteBuffer(bytes: [0x80])
        XCTAssertThrowsError(try t.readUnsignedVarint())
    }

    func testCompactAndClassicStringsAndNulls() throws {
        var b = ByteBuffer()
        b.writeKafkaNullableString(nil, compact: true)
        b.writeKafkaNullableString("héllo", compact: true)
        b.writeKafkaNullableString(nil, compact: false)
        b.writeKafkaString("x", compact: false)
        XCTAssertEqual(try b.readKafkaNullableString(compact: true), nil)
        XCTAssertEqual(try b.readKafkaNullableString(compact: true), "héllo")
        XCTAssertEqual(try b.readKafkaNullableString(compact: false), nil)
        XCTAssertEqual(try b.readKafkaString(compact: false), "x")
    }

    func testArrayCountLargerThanTheBufferIsRefusedBeforeAllocating() {
        var b = ByteBuffer()
        b.writeInteger(Int32.max)
        XCTAssertThrowsError(try b.readKafkaArrayCount(compact: false))
        var n = ByteBuffer()
        n.writeInteger(-7 as Int32)
        XCTAssertThrowsError(try n.readKafkaArrayCount(compact: false))
    }

    func testCRC32CKnownVectorsHardwareAndTable() {
        let check = Array("123456789".utf8)
        XCTAssertEqual(tern_crc32c(0, check, check.count), 0xE306_9283)
        XCTAssertEqual(tern_crc32c(0, [UInt8](repeating: 0, count: 32), 32), 0x8A91_36AA)
        // Incremental computation matches one-shot, across the 8-byte fast path boundary.
        let data = (0..<1000).map { UInt8(truncatingIfNeeded: $0 * 31) }
        let whole = tern_crc32c(0, data, data.count)
        let part = data.withUnsafeBufferPointer { p in
            tern_crc32c(tern_crc32c(0, p.baseAddress, 13), p.baseAddress! + 13, 987)
        }
        XCTAssertEqual(whole, part)
    }

    func testLZ4FrameRoundTrip() throws {
        let text = String(repeating: "tern tern kafka ", count: 5000)
        let compressed = try RecordCompression.compress(ByteBuffer(string: text), codec: .lz4)
        XCTAssertLessThan(compressed.readableBytes, text.utf8.count / 10)
        XCTAssertEqual(compressed.getBytes(at: 0, length: 4), [0x04, 0x22, 0x4D, 0x18])  // frame magic
        XCTAssertEqual(String(buffer: try RecordCompression.decompress(compressed, codec: .lz4)), text)
        var corrupt = compressed
        corrupt.setInteger(UInt8(0xAB), at: 20)
        XCTAssertThrowsError(try RecordCompression.decompress(corrupt.getSlice(at: 0, length: 30)!, codec: .lz4))
    }
}
