import NIOCore

// Kafka primitive types on ByteBuffer. Reads throw `KafkaDecodeError` instead of returning nil so the
// generated decoders stay straight-line; every length is checked against the bytes actually present.
extension ByteBuffer {
    @inlinable
    public mutating func readKafka<T: FixedWidthInteger>(_: T.Type) throws -> T {
        guard let v = readInteger(as: T.self) else { throw KafkaDecodeError.truncated }
        return v
    }

    public mutating func readKafkaBool() throws -> Bool { try readKafka(Int8.self) != 0 }

    public mutating func readKafkaFloat64() throws -> Double { Double(bitPattern: try readKafka(UInt64.self)) }

    public mutating func readKafkaUUID() throws -> KafkaUUID {
        KafkaUUID(high: try readKafka(UInt64.self), low: try readKafka(UInt64.self))
    }

    // MARK: varints

    /// Unsigned LEB128 (KIP-482 lengths, counts and tags).
    public mutating func readUnsignedVarint() throws -> UInt32 {
        var result: UInt32 = 0
        var shift: UInt32 = 0
        while true {
            let b = try readKafka(UInt8.self)
            if shift == 28 && b > 0x0F { throw KafkaDecodeError.varintTooLong }
            result |= UInt32(b & 0x7F) << shift
            if b & 0x80 == 0 { return result }
            shift += 7
        }
    }

    /// Zigzag varint (record fields).
    public mutating func readVarint() throws -> Int32 {
        let raw = try readUnsignedVarint()
        return Int32(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    /// Zigzag varlong (record timestamps).
    public mutating func readVarlong() throws -> Int64 {
        var raw: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try readKafka(UInt8.self)
            if shift == 63 && b > 0x01 { throw KafkaDecodeError.varintTooLong }
            raw |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { break }
            shift += 7
        }
        return Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    // MARK: lengths

    /// Reads a length prefix; nil means null. Compact lengths are stored plus one (0 = null).
    @usableFromInline
    mutating func readKafkaLength(compact: Bool, wide: Bool) throws -> Int? {
        let n: Int
        if compact {
            n = Int(try readUnsignedVarint()) - 1
        } else if wide {
            n = Int(try readKafka(Int32.self))
        } else {
            n = Int(try readKafka(Int16.self))
        }
        if n == -1 { return nil }
        guard n >= 0 else { throw KafkaDecodeError.invalidLength(n) }
        return n
    }

    public mutating func readKafkaSlice(length: Int) throws -> ByteBuffer {
        guard length >= 0 else { throw KafkaDecodeError.invalidLength(length) }
        guard let s = readSlice(length: length) else { throw KafkaDecodeError.truncated }
        return s
    }

    public mutating func skipKafkaBytes(_ length: Int) throws {
        guard length >= 0, length <= readableBytes else { throw KafkaDecodeError.truncated }
        moveReaderIndex(forwardBy: length)
    }

    // MARK: strings

    public mutating func readKafkaNullableString(compact: Bool) throws -> String? {
        guard let n = try readKafkaLength(compact: compact, wide: false) else { return nil }
        guard n <= readableBytes else { throw KafkaDecodeError.truncated }
        guard let s = readString(length: n) else { throw KafkaDecodeError.invalidString }
        return s
    }

    public mutating func readKafkaString(compact: Bool) throws -> String {
        try readKafkaNullableString(compact: compact) ?? ""
    }

    // MARK: bytes

    /// Reads bytes as a slice of this buffer: no copy.
    public mutating func readKafkaNullableBytes(compact: Bool) throws -> ByteBuffer? {
        guard let n = try readKafkaLength(compact: compact, wide: true) else { return nil }
        return try readKafkaSlice(length: n)
    }

    public mutating func readKafkaBytes(compact: Bool) throws -> ByteBuffer {
        try readKafkaNullableBytes(compact: compact) ?? ByteBuffer()
    }

    public mutating func readKafkaNullableRecords(compact: Bool) throws -> KafkaRecords? {
        try readKafkaNullableBytes(compact: compact).map(KafkaRecords.bytes)
    }

    public mutating func readKafkaRecords(compact: Bool) throws -> KafkaRecords {
        try readKafkaNullableRecords(compact: compact) ?? .empty
    }

    // MARK: arrays

    /// Reads an array count; nil means a null array. A count that cannot fit in the remaining bytes
    /// (every element takes at least one byte) is rejected before anything is allocated.
    public mutating func readKafkaArrayCount(compact: Bool) throws -> Int? {
        guard let n = try readKafkaLength(compact: compact, wide: true) else { return nil }
        guard n <= readableBytes else { throw KafkaDecodeError.invalidLength(n) }
        return n
    }
}
