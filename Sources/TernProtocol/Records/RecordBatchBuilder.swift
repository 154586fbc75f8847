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
        Record.write(to: &body, offsetDelta: Int32(count), timestampDelta: timestamp - firstTimestamp, key: key, value: value, headers: headers)
        count += 1
    }

    /// The finished batch (base offset 0; the broker assigns offsets). `transactional` marks it
    /// part of its producer's transaction (attribute bit 4).
    public func build(compression: CompressionCodec = .none, producerId: Int64 = -1, producerEpoch: Int16 = -1,
                      baseSequence: Int32 = -1, transactional: Bool = false) throws -> ByteBuffer {
        let records = try RecordCompression.compress(body, codec: compression)
        var out = ByteBuffer()
        let attributes = compression.rawValue | (transactional ? 0x10 : 0)
        RecordBatch.write(
            to: &out, baseOffset: 0, partitionLeaderEpoch: -1, attributes: attributes, lastOffsetDelta: Int32(max(count - 1, 0)),
            baseTimestamp: firstTimestamp, maxTimestamp: maxTimestamp, producerId: producerId, producerEpoch: producerEpoch,
            baseSequence: baseSequence, recordCount: Int32(count), records: records)
        return out
    }
}
