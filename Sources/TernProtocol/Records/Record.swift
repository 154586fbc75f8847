import NIOCore

/// A record header: a non-null UTF-8 key and an optional value.
public struct RecordHeader: Equatable, Sendable {
    public var key: String
    public var value: ByteBuffer?

    public init(key: String, value: ByteBuffer?) {
        self.key = key
        self.value = value
    }
}

/// One record of a v2 batch, with absolute offset and timestamp resolved against its batch.
public struct Record: Equatable, Sendable {
    public var offset: Int64
    public var timestamp: Int64
    public var key: ByteBuffer?
    public var value: ByteBuffer?
    public var headers: [RecordHeader]

    public init(offset: Int64 = 0, timestamp: Int64, key: ByteBuffer?, value: ByteBuffer?, headers: [RecordHeader] = []) {
        self.offset = offset
        self.timestamp = timestamp
        self.key = key
        self.value = value
        self.headers = headers
    }
}

extension Record {
    /// Reads one varint-framed record (all fields zigzag varints).
    static func read(from buffer: inout ByteBuffer, baseOffset: Int64, baseTimestamp: Int64) throws -> Record {
        let length = Int(try buffer.readVarint())
        guard length >= 0 else { throw RecordBatchError.invalidRecord("negative record length") }
        var body = try buffer.readKafkaSlice(length: length)
        _ = try body.readKafka(Int8.self)  // attributes: unused
        let timestampDelta = try body.readVarlong()
        let offsetDelta = try body.readVarint()
        let key = try readVarBytes(&body)
        let value = try readVarBytes(&body)
        let headerCount = Int(try body.readVarint())
        guard headerCount >= 0, headerCount <= body.readableBytes else {
            throw RecordBatchError.invalidRecord("bad header count \(headerCount)")
        }
        var headers: [RecordHeader] = []
        headers.reserveCapacity(headerCount)
        for _ in 0..<headerCount {
            guard var k = try readVarBytes(&body), let keyString = k.readString(length: k.readableBytes) else {
                throw RecordBatchError.invalidRecord("null header key")
            }
            headers.append(RecordHeader(key: keyString, value: try readVarBytes(&body)))
        }
        return Record(
            offset: baseOffset + Int64(offsetDelta), timestamp: baseTimestamp + timestampDelta,
            key: key, value: value, headers: headers)
    }

    private static func readVarBytes(_ b: inout ByteBuffer) throws -> ByteBuffer? {
        let n = Int(try b.readVarint())
        if n < 0 { return nil }
        return try b.readKafkaSlice(length: n)
    }

    /// Writes this record relative to its batch's base offset and timestamp.
    func write(to out: inout ByteBuffer, offsetDelta: Int32, timestampDelta: Int64) {
        var body = ByteBuffer()
        body.writeInteger(0 as Int8)
        body.writeVarlong(timestampDelta)
        body.writeVarint(offsetDelta)
        Self.writeVarBytes(key, to: &body)
        Self.writeVarBytes(value, to: &body)
        body.writeVarint(Int32(headers.count))
        for h in headers {
            body.writeVarint(Int32(h.key.utf8.count))
            body.writeString(h.key)
            Self.writeVarBytes(h.value, to: &body)
        }
        out.writeVarint(Int32(body.readableBytes))
        out.writeBuffer(&body)
    }

    private static func writeVarBytes(_ v: ByteBuffer?, to out: inout ByteBuffer) {
        guard var v else {
            out.writeVarint(-1)
            return
        }
        out.writeVarint(Int32(v.readableBytes))
        out.writeBuffer(&v)
    }
}
