import NIOCore
import NIOEmbedded
import XCTest

@testable import TernServer
import TernProtocol

final class KafkaFrameDecoderTests: XCTestCase {
    private func frame(_ payload: [UInt8]) -> ByteBuffer {
        var b = ByteBuffer()
        b.writeInteger(Int32(payload.count))
        b.writeBytes(payload)
        return b
    }

    func testSplitsFramesAcrossAndWithinReads() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(KafkaFrameDecoder(maxFrameSize: 1024)))
        var stream = frame(Array(0..<10))
        stream.writeImmutableBuffer(frame(Array(repeating: 7, count: 20)))
        let third = frame(Array(repeating: 9, count: 12))
        stream.writeImmutableBuffer(third.getSlice(at: 0, length: 6)!)
        try channel.writeInbound(stream)
        XCTAssertEqual(try channel.readInbound(as: ByteBuffer.self)?.readableBytes, 10)
        XCTAssertEqual(try channel.readInbound(as: ByteBuffer.self)?.readableBytes, 20)
        XCTAssertNil(try channel.readInbound(as: ByteBuffer.self))
        try channel.writeInbound(third.getSlice(at: 6, length: third.readableBytes - 6)!)
        XCTAssertEqual(try channel.readInbound(as: ByteBuffer.self).map { Array($0.readableBytesView) }, Array(repeating: 9, count: 12))
        XCTAssertTrue(try channel.finish().isClean)
    }

    func testOversizedAndNegativeSizesAreErrors() {
        for size: Int32 in [1025, -1, 0, Int32.max] {
            let channel = EmbeddedChannel(handler: ByteToMessageHandler(KafkaFrameDecoder(maxFrameSize: 1024)))
            var b = ByteBuffer()
            b.writeInteger(size)
            XCTAssertThrowsError(try channel.writeInbound(b), "size \(size)")
            _ = try? channel.finish()
        }
    }
}
