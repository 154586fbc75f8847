import NIOCore

/// Builds a v2 record batch one record at a time, writing each record straight into the batch's
/// buffer (no intermediate per-record buffers), for producers.
public struct RecordBatchBuilder: Sendable {
    private var body = ByteBuffer()
    public private(set) var count = 0
    public private(set) var firstTimestamp: Int64 = 0
    public private(set) var maxTimestamp: Int64 = 0

    public init(capacity: Int = 16 << 10) {
        body.reserveCapacity(capacity)
    }

    /// Bytes of records so far (uncompressed).
    public var byteCount: Int { body.readableBytes }

    public mutating func append(timestamp: Int64, key: ByteBuffer?, value: ByteBuffer?, headers: [RecordHeader] = []) {
        if count == 0 {
            firstTimestamp = timestamp
            maxTimestamp = timestamp
        }
        maxTimestamp = max(maxTimestamp, timestamp)
        let timestampDelta = timestamp - firstTimestamp
        let offsetDelta = Int32(count)
        var length = 1 + Self.varlongSize(timestampDelta) + Self.varintSize(offsetDelta)
        length += Self.bytesSize(key) + Self.bytesSize(value) + Self.varintSize(Int32(headers.count))
        for h in headers { length += Self.varintSize(Int32(h.key.utf8.count)) + h.key.utf8.count + Self.bytesSize(h.value) }
        body.writeVarint(Int32(length))
        body.writeInteger(0 as Int8)
        body.writeVarlong(timestampDelta)
        body.writeVarint(offsetDelta)
        Self.writeBytes(key, to: &body)
        Self.writeBytes(value, to: &body)
        body.writeVarint(Int32(headers.count))
        for h in headers {
            body.writeVarint(Int32(h.key.utf8.count))
            body.writeString(h.key)
            Self.writeBytes(h.value, to: &body)
        }
        count += 1
    }

    /// The finished batch (base offset 0; the broker assigns offsets).
    public func build(compression: CompressionCodec = .none, producerId: Int64 = -1, producerEpoch: Int16 = -1,
                      baseSequence: Int32 = -1) throws -> ByteBuffer {
        var records = body
        switch compression {
        case .none: break
        case .lz4: records = try LZ4Frame.compress(body)
        default: throw RecordBatchError.unsupportedCompression(compression.rawValue)
        }
        var out = ByteBuffer()
        out.reserveCapacity(RecordBatchHeader.size + records.readableBytes)
        out.writeInteger(0 as Int64)
        out.writeInteger(Int32(RecordBatchHeader.size - RecordBatchHeader.logOverhead + records.readableBytes))
        out.writeInteger(-1 as Int32)
        out.writeInteger(2 as Int8)
        out.writeInteger(0 as UInt32)
        out.writeInteger(compression.rawValue)
        out.writeInteger(Int32(max(count - 1, 0)))
        out.writeInteger(firstTimestamp)
        out.writeInteger(maxTimestamp)
        out.writeInteger(producerId)
        out.writeInteger(producerEpoch)
        out.writeInteger(baseSequence)
        out.writeInteger(Int32(count))
        out.writeImmutableBuffer(records)
        RecordBatch.updateCRC(in: &out, batchAt: 0)
        return out
    }

    static func varintSize(_ v: Int32) -> Int {
        var u = UInt32(bitPattern: (v << 1) ^ (v >> 31))
        var n = 1
        while u >= 0x80 {
            u >>= 7
            n += 1
        }
        return n
    }

    static func varlongSize(_ v: Int64) -> Int {
        var u = UInt64(bitPattern: (v << 1) ^ (v >> 63))
        var n = 1
        while u >= 0x80 {
            u >>= 7
            n += 1
        }
        return n
    }

    static func bytesSize(_ b: ByteBuffer?) -> Int {
        guard let b else { return 1 }
        return varintSize(Int32(b.readableBytes)) + b.readableBytes
    }

    static func writeBytes(_ b: ByteBuffer?, to out: inout ByteBuffer) {
        guard let b else {
            out.writeVarint(-1)
            return
        }
        out.writeVarint(Int32(b.readableBytes))
        out.writeImmutableBuffer(b)
    }
}
