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
    init(_ view: RecordView, baseOffset: Int64, baseTimestamp: Int64) throws {
        self.init(
            offset: baseOffset + Int64(view.offsetDelta), timestamp: baseTimestamp &+ view.timestampDelta,
            key: view.key, value: view.value, headers: try view.headers())
    }

    /// Writes this record relative to its batch's base offset and timestamp.
    func write(to out: inout ByteBuffer, offsetDelta: Int32, timestampDelta: Int64) {
        Self.write(to: &out, offsetDelta: offsetDelta, timestampDelta: timestampDelta, key: key, value: value, headers: headers)
    }

    /// The v2 record encoding, written straight into the batch: the length prefix is computed
    /// first, so no per-record buffer is needed (producers call this once per record).
    static func write(to out: inout ByteBuffer, offsetDelta: Int32, timestampDelta: Int64, key: ByteBuffer?, value: ByteBuffer?,
                      headers: [RecordHeader]) {
        var length = 1 + varlongSize(timestampDelta) + varintSize(offsetDelta)
        length += bytesSize(key) + bytesSize(value) + varintSize(Int32(headers.count))
        for h in headers { length += varintSize(Int32(h.key.utf8.count)) + h.key.utf8.count + bytesSize(h.value) }
        out.writeVarint(Int32(length))
        out.writeInteger(0 as Int8)
        out.writeVarlong(timestampDelta)
        out.writeVarint(offsetDelta)
        writeBytes(key, to: &out)
        writeBytes(value, to: &out)
        out.writeVarint(Int32(headers.count))
        for h in headers {
            out.writeVarint(Int32(h.key.utf8.count))
            out.writeString(h.key)
            writeBytes(h.value, to: &out)
        }
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
