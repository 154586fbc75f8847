import NIOCore

/// One record of a v2 batch as it lies in the batch body: the fixed fields parsed, key, value and
/// headers left as slices of the body (no copies).
public struct RecordView {
    public var attributes: Int8
    public var timestampDelta: Int64
    public var offsetDelta: Int32
    public var key: ByteBuffer?
    public var value: ByteBuffer?
    public var headerCount: Int
    /// The encoded headers (`headerCount` of them), already checked to be well formed.
    public var encodedHeaders: ByteBuffer

    public func headers() throws -> [RecordHeader] {
        var bytes = encodedHeaders
        var headers: [RecordHeader] = []
        headers.reserveCapacity(headerCount)
        for _ in 0..<headerCount {
            var key = try RecordReader.bytes(&bytes)!
            headers.append(RecordHeader(key: key.readString(length: key.readableBytes) ?? "", value: try RecordReader.bytes(&bytes)))
        }
        return headers
    }
}

/// Reads the records of a batch body in order, checking each one's framing as Kafka's
/// `DefaultRecord.readFrom` does: a non-negative length that the record's fields use exactly, a
/// non-negative header count whose headers fit, and no null header key. Nothing is allocated
/// per record, so walking a batch to validate it costs no more than reading its varints.
public struct RecordReader {
    private var body: ByteBuffer
    /// Records a producer sends: a key, value or header value length below -1 is refused. Kafka
    /// reads any negative length as null; librdkafka refuses it and stops at that offset for
    /// ever, so storing one would stall every librdkafka consumer of the partition.
    private let fromProducer: Bool

    public init(body: ByteBuffer, fromProducer: Bool = false) {
        self.body = body
        self.fromProducer = fromProducer
    }

    /// Bytes after the records read so far; a batch whose declared count is used up must have none.
    public var remainingBytes: Int { body.readableBytes }

    public mutating func next() throws -> RecordView {
        do {
            let length = Int(try body.readVarint())
            guard length > 0, length <= body.readableBytes else {
                throw RecordBatchError.invalidRecord("record length \(length) with \(body.readableBytes) bytes left in the batch")
            }
            var record = body.readSlice(length: length)!
            let attributes = try record.readKafka(Int8.self)
            let timestampDelta = try record.readVarlong()
            let offsetDelta = try record.readVarint()
            let key = try Self.bytes(&record, strict: fromProducer, field: "key")
            let value = try Self.bytes(&record, strict: fromProducer, field: "value")
            let headerCount = Int(try record.readVarint())
            guard headerCount >= 0, headerCount <= record.readableBytes / 2 else {
                throw RecordBatchError.invalidRecord("invalid header count \(headerCount)")
            }
            var scan = record
            for _ in 0..<headerCount {
                let keyLength = try scan.readVarint()
                guard keyLength >= 0 else { throw RecordBatchError.invalidRecord("invalid negative header key size \(keyLength)") }
                try scan.skipKafkaBytes(Int(keyLength))
                _ = try Self.bytes(&scan, strict: fromProducer, field: "header value")
            }
            let headers = record.readSlice(length: scan.readerIndex - record.readerIndex)!
            guard record.readableBytes == 0 else {
                throw RecordBatchError.invalidRecord("record of \(length) bytes has \(record.readableBytes) bytes after its last header")
            }
            return RecordView(attributes: attributes, timestampDelta: timestampDelta, offsetDelta: offsetDelta, key: key, value: value,
                              headerCount: headerCount, encodedHeaders: headers)
        } catch let error as RecordBatchError {
            throw error
        } catch {
            throw RecordBatchError.invalidRecord("malformed record: \(error)")
        }
    }

    /// A varint-length byte field; a negative length is null, as in Kafka (`strict`: only -1 is).
    static func bytes(_ b: inout ByteBuffer, strict: Bool = false, field: String = "field") throws -> ByteBuffer? {
        let n = Int(try b.readVarint())
        if n < 0 {
            guard n == -1 || !strict else {
                throw RecordBatchError.invalidRecord("record \(field) length \(n): only -1 means null, and consumers cannot read any other negative length")
            }
            return nil
        }
        return try b.readKafkaSlice(length: n)
    }
}
