import NIOCore

/// Splits the byte stream into Kafka frames: a big-endian int32 size, then that many bytes.
/// A negative or oversized length (`socket.request.max.bytes` on a broker) is a protocol error
/// that closes the connection before any of the frame is buffered. Used by the broker and the client.
public struct KafkaFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = ByteBuffer

    public enum FrameError: Error { case invalidSize(Int32) }

    public let maxFrameSize: Int
    /// The smallest frame accepted: a request header is at least 8 bytes, a response header 4.
    public let minFrameSize: Int

    public init(maxFrameSize: Int, minFrameSize: Int = 8) {
        self.maxFrameSize = maxFrameSize
        self.minFrameSize = minFrameSize
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let size = buffer.getInteger(at: buffer.readerIndex, as: Int32.self) else { return .needMoreData }
        guard Int(size) >= minFrameSize, Int(size) <= maxFrameSize else { throw FrameError.invalidSize(size) }
        guard buffer.readableBytes >= 4 + Int(size) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        context.fireChannelRead(Self.wrapInboundOut(buffer.readSlice(length: Int(size))!))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // A partial frame at EOF is dropped: the client went away mid-request.
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}
