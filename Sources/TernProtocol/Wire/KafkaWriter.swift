import NIOCore

/// Where generated encoders write. `ByteBuffer` is one; `OutboundFrame.Writer` is the other, and
/// differs only in how it takes record data: it keeps file-backed records as file slices so the
/// server can send them with sendfile instead of copying them through memory.
public protocol KafkaWriter {
    mutating func writeKafkaInteger<T: FixedWidthInteger>(_ value: T)
    /// Appends bytes as they are (no length prefix).
    mutating func appendKafkaRaw(_ bytes: ByteBuffer)
    mutating func appendKafkaUTF8(_ string: String)
    /// Appends record data as it is (no length prefix).
    mutating func appendKafkaRecords(_ records: KafkaRecords)
}

extension ByteBuffer: KafkaWriter {
    @inlinable
    public mutating func writeKafkaInteger<T: FixedWidthInteger>(_ value: T) { writeInteger(value) }

    public mutating func appendKafkaRaw(_ bytes: ByteBuffer) { writeImmutableBuffer(bytes) }

    public mutating func appendKafkaUTF8(_ string: String) { writeString(string) }

    /// A plain buffer has nowhere to keep a file slice: its bytes are read in.
    public mutating func appendKafkaRecords(_ records: KafkaRecords) {
        switch records {
        case .bytes(let b): writeImmutableBuffer(b)
        case .file(let slice): writeImmutableBuffer(slice.readAll())
        }
    }
}

// Kafka's composite types, for any writer.
extension KafkaWriter {
    public mutating func writeKafkaBool(_ v: Bool) { writeKafkaInteger(v ? 1 : 0 as Int8) }

    public mutating func writeKafkaFloat64(_ v: Double) { writeKafkaInteger(v.bitPattern) }

    public mutating func writeKafkaUUID(_ v: KafkaUUID) {
        writeKafkaInteger(v.high)
        writeKafkaInteger(v.low)
    }

    public mutating func writeUnsignedVarint(_ value: UInt32) {
        var v = value
        while v >= 0x80 {
            writeKafkaInteger(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        writeKafkaInteger(UInt8(v))
    }

    public mutating func writeUnsignedVarint(_ value: Int) { writeUnsignedVarint(UInt32(value)) }

    public mutating func writeVarint(_ value: Int32) {
        writeUnsignedVarint(UInt32(bitPattern: (value << 1) ^ (value >> 31)))
    }

    public mutating func writeVarlong(_ value: Int64) {
        var v = UInt64(bitPattern: (value << 1) ^ (value >> 63))
        while v >= 0x80 {
            writeKafkaInteger(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        writeKafkaInteger(UInt8(v))
    }

    /// A length prefix; nil writes null. Compact lengths are stored plus one (0 = null).
    mutating func writeKafkaLength(_ n: Int?, compact: Bool, wide: Bool) {
        if compact {
            writeUnsignedVarint(UInt32((n ?? -1) + 1))
        } else if wide {
            writeKafkaInteger(Int32(n ?? -1))
        } else {
            writeKafkaInteger(Int16(n ?? -1))
        }
    }

    public mutating func writeKafkaNullableString(_ s: String?, compact: Bool) {
        guard let s else {
            writeKafkaLength(nil, compact: compact, wide: false)
            return
        }
        let fitting = compact ? s : Self.fittingInt16Length(s)
        writeKafkaLength(fitting.utf8.count, compact: compact, wide: false)
        appendKafkaUTF8(fitting)
    }

    /// A classic string's length is an int16, and a string can outgrow it: a client's invalid
    /// UTF-8 is decoded into 3-byte replacement characters and then echoed back (32767 bytes
    /// become 98301), or a message is built around a long name. Such a string is cut after the
    /// last whole scalar that fits, so encoding a response never traps on a client's input and the
    /// frame stays well formed (Kafka's serializer throws on it instead, failing the response).
    static func fittingInt16Length(_ s: String) -> String {
        guard s.utf8.count > Int(Int16.max) else { return s }
        var bytes = 0
        var end = s.unicodeScalars.startIndex
        for scalar in s.unicodeScalars {
            let width = UTF8.width(scalar)
            guard bytes + width <= Int(Int16.max) else { break }
            bytes += width
            end = s.unicodeScalars.index(after: end)
        }
        return String(s.unicodeScalars[..<end])
    }

    public mutating func writeKafkaString(_ s: String, compact: Bool) {
        writeKafkaNullableString(s, compact: compact)
    }

    public mutating func writeKafkaNullableBytes(_ b: ByteBuffer?, compact: Bool) {
        guard let b else {
            writeKafkaLength(nil, compact: compact, wide: true)
            return
        }
        writeKafkaLength(b.readableBytes, compact: compact, wide: true)
        appendKafkaRaw(b)
    }

    public mutating func writeKafkaBytes(_ b: ByteBuffer, compact: Bool) {
        writeKafkaNullableBytes(b, compact: compact)
    }

    public mutating func writeKafkaNullableRecords(_ r: KafkaRecords?, compact: Bool) {
        guard let r else {
            writeKafkaLength(nil, compact: compact, wide: true)
            return
        }
        writeKafkaLength(r.byteCount, compact: compact, wide: true)
        appendKafkaRecords(r)
    }

    public mutating func writeKafkaRecords(_ r: KafkaRecords, compact: Bool) {
        writeKafkaNullableRecords(r, compact: compact)
    }

    public mutating func writeKafkaArrayCount(_ n: Int?, compact: Bool) {
        writeKafkaLength(n, compact: compact, wide: true)
    }
}
