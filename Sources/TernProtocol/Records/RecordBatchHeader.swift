import CTernCodec
import NIOCore

/// Compression codec in bits 0-2 of a record batch's attributes.
public enum CompressionCodec: Int16, Sendable, CaseIterable {
    case none = 0, gzip = 1, snappy = 2, lz4 = 3, zstd = 4

    /// Kafka's names, as in `compression.type`: none, gzip, snappy, lz4, zstd.
    public init?(kafkaName: String) {
        guard let codec = Self.allCases.first(where: { "\($0)" == kafkaName }) else { return nil }
        self = codec
    }
}

/// The fixed 61-byte header of a v2 (magic 2) record batch, read in place.
///
/// Layout (big-endian): baseOffset i64 @0, batchLength i32 @8 (bytes after this field),
/// partitionLeaderEpoch i32 @12, magic i8 @16, crc u32 @17 (CRC-32C of bytes 21..end),
/// attributes i16 @21, lastOffsetDelta i32 @23, baseTimestamp i64 @27, maxTimestamp i64 @35,
/// producerId i64 @43, producerEpoch i16 @51, baseSequence i32 @53, recordsCount i32 @57.
public struct RecordBatchHeader: Equatable, Sendable {
    public static let size = 61
    /// Bytes before `batchLength` counts from: baseOffset + batchLength itself.
    public static let logOverhead = 12
    public static let crcOffset = 17
    public static let attributesOffset = 21
    public static let partitionLeaderEpochOffset = 12

    public var baseOffset: Int64
    public var batchLength: Int32
    public var partitionLeaderEpoch: Int32
    public var magic: Int8
    public var crc: UInt32
    public var attributes: Int16
    public var lastOffsetDelta: Int32
    public var baseTimestamp: Int64
    public var maxTimestamp: Int64
    public var producerId: Int64
    public var producerEpoch: Int16
    public var baseSequence: Int32
    public var recordsCount: Int32

    public var totalSize: Int { Int(batchLength) + Self.logOverhead }
    public var lastOffset: Int64 { baseOffset + Int64(lastOffsetDelta) }
    public var compression: CompressionCodec? { CompressionCodec(rawValue: attributes & 0x7) }
    public var usesLogAppendTime: Bool { attributes & 0x8 != 0 }
    public var isTransactional: Bool { attributes & 0x10 != 0 }
    public var isControl: Bool { attributes & 0x20 != 0 }

    /// Reads the header at `index` of `buffer` without moving any index.
    public init(from buffer: ByteBuffer, at index: Int) throws {
        guard index >= buffer.readerIndex, buffer.writerIndex - index >= Self.size else {
            throw RecordBatchError.truncated
        }
        func get<T: FixedWidthInteger>(_ at: Int, _: T.Type) -> T { buffer.getInteger(at: index + at, as: T.self)! }
        baseOffset = get(0, Int64.self)
        batchLength = get(8, Int32.self)
        partitionLeaderEpoch = get(12, Int32.self)
        magic = get(16, Int8.self)
        crc = get(17, UInt32.self)
        attributes = get(21, Int16.self)
        lastOffsetDelta = get(23, Int32.self)
        baseTimestamp = get(27, Int64.self)
        maxTimestamp = get(35, Int64.self)
        producerId = get(43, Int64.self)
        producerEpoch = get(51, Int16.self)
        baseSequence = get(53, Int32.self)
        recordsCount = get(57, Int32.self)
    }
}

public enum RecordBatchError: Error, Equatable, Sendable {
    /// Fewer bytes than the header or the declared length need.
    case truncated
    /// Magic other than 2: message formats v0/v1 are not accepted (KIP-724).
    case unsupportedMagic(Int8)
    case invalidLength(Int32)
    case crcMismatch(expected: UInt32, actual: UInt32)
    case invalidRecord(String)
    case unsupportedCompression(Int16)
    /// The compressed records do not decode.
    case corruptCompression(CompressionCodec)
    /// The records would decompress to more than the broker accepts for one batch.
    case decompressedTooLarge(limit: Int)
    case compressionFailed(CompressionCodec)
    /// Larger than `max.message.bytes`.
    case tooLarge(size: Int, limit: Int)
}

extension RecordBatchHeader {
    /// Validates the batch starting at `index` (length, magic, CRC-32C) and returns its header.
    public static func validated(in buffer: ByteBuffer, at index: Int) throws -> RecordBatchHeader {
        let available = buffer.writerIndex - index
        guard available >= logOverhead + 5 else { throw RecordBatchError.truncated }
        let length = buffer.getInteger(at: index + 8, as: Int32.self)!
        let magic = buffer.getInteger(at: index + 16, as: Int8.self)!
        guard magic == 2 else { throw RecordBatchError.unsupportedMagic(magic) }
        guard length >= Int32(size - logOverhead) else { throw RecordBatchError.invalidLength(length) }
        guard available >= Int(length) + logOverhead else { throw RecordBatchError.truncated }
        let header = try RecordBatchHeader(from: buffer, at: index)
        let crcStart = index + attributesOffset
        let crcLength = Int(length) + logOverhead - attributesOffset
        let actual = buffer.withUnsafeReadableBytes { raw in
            tern_crc32c(0, raw.baseAddress! + (crcStart - buffer.readerIndex), crcLength)
        }
        guard actual == header.crc else { throw RecordBatchError.crcMismatch(expected: header.crc, actual: actual) }
        guard header.lastOffsetDelta >= 0, header.recordsCount >= 0 else {
            throw RecordBatchError.invalidRecord("negative offset delta or record count")
        }
        return header
    }

    /// Validates every batch in `records` back to back; the bytes must end exactly at a batch end.
    public static func validateAll(_ records: ByteBuffer) throws -> [RecordBatchHeader] {
        var headers: [RecordBatchHeader] = []
        var index = records.readerIndex
        while index < records.writerIndex {
            let h = try validated(in: records, at: index)
            headers.append(h)
            index += h.totalSize
        }
        return headers
    }
}
