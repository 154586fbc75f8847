import CTernCodec
import NIOCore

/// A decoded v2 record batch. The broker never needs this on its hot path (it stores batches as
/// received); it is for clients, tests, and the few places that must look inside records.
public struct RecordBatch: Equatable, Sendable {
    public var baseOffset: Int64 = 0
    public var partitionLeaderEpoch: Int32 = -1
    public var attributes: Int16 = 0
    public var baseTimestamp: Int64 = 0
    public var maxTimestamp: Int64 = 0
    public var producerId: Int64 = -1
    public var producerEpoch: Int16 = -1
    public var baseSequence: Int32 = -1
    public var records: [Record] = []
    /// Set when the records carry their own offsets (a batch read back from a log, possibly with
    /// records removed by compaction): encoding then keeps each record's offset and the batch's
    /// last offset delta instead of numbering the records 0, 1, 2, …
    public var preservedLastOffsetDelta: Int32?

    public init(records: [Record], compression: CompressionCodec = .none) {
        self.records = records
        self.attributes = compression.rawValue
        self.baseTimestamp = records.first?.timestamp ?? 0
        self.maxTimestamp = records.map(\.timestamp).max() ?? 0
    }

    public var compression: CompressionCodec? { CompressionCodec(rawValue: attributes & 0x7) }

    /// Decodes (and CRC-checks) the batch at the reader index, advancing past it.
    public static func read(from buffer: inout ByteBuffer) throws -> RecordBatch {
        let header = try RecordBatchHeader.validated(in: buffer, at: buffer.readerIndex)
        var whole = try buffer.readKafkaSlice(length: header.totalSize)
        whole.moveReaderIndex(forwardBy: RecordBatchHeader.size)
        guard let codec = header.compression else { throw RecordBatchError.unsupportedCompression(header.attributes & 0x7) }
        let body = try RecordCompression.decompress(whole, codec: codec)
        var batch = RecordBatch(records: [])
        batch.baseOffset = header.baseOffset
        batch.partitionLeaderEpoch = header.partitionLeaderEpoch
        batch.attributes = header.attributes
        batch.baseTimestamp = header.baseTimestamp
        batch.maxTimestamp = header.maxTimestamp
        batch.producerId = header.producerId
        batch.producerEpoch = header.producerEpoch
        batch.baseSequence = header.baseSequence
        batch.preservedLastOffsetDelta = header.lastOffsetDelta
        batch.records.reserveCapacity(Int(min(header.recordsCount, Int32(body.readableBytes / 6))))
        var reader = RecordReader(body: body)
        for _ in 0..<max(header.recordsCount, 0) {
            batch.records.append(try Record(reader.next(), baseOffset: header.baseOffset, baseTimestamp: header.baseTimestamp))
        }
        guard reader.remainingBytes == 0 else {
            throw RecordBatchError.invalidRecord("incorrect declared batch size, \(reader.remainingBytes) bytes after the last record")
        }
        return batch
    }

    /// Encodes the batch with its records' offsets taken as consecutive from `baseOffset`.
    public func encode(to out: inout ByteBuffer) throws {
        var body = ByteBuffer()
        for (i, r) in records.enumerated() {
            let delta = preservedLastOffsetDelta == nil ? Int32(i) : Int32(r.offset - baseOffset)
            // Wrapping, as decoding adds the delta (`Record`): a client's extreme timestamps
            // (Int64.min after base 1) must re-encode to the bytes they came from, not trap.
            r.write(to: &body, offsetDelta: delta, timestampDelta: r.timestamp &- baseTimestamp)
        }
        guard let codec = compression else { throw RecordBatchError.unsupportedCompression(attributes & 0x7) }
        body = try RecordCompression.compress(body, codec: codec)
        Self.write(
            to: &out, baseOffset: baseOffset, partitionLeaderEpoch: partitionLeaderEpoch, attributes: attributes,
            lastOffsetDelta: preservedLastOffsetDelta ?? Int32(max(records.count - 1, 0)), baseTimestamp: baseTimestamp,
            maxTimestamp: maxTimestamp, producerId: producerId, producerEpoch: producerEpoch, baseSequence: baseSequence,
            recordCount: Int32(records.count), records: body)
    }

    /// Writes a whole batch: the 61-byte header around already encoded (and maybe compressed)
    /// records, then the CRC-32C over attributes..end.
    static func write(to out: inout ByteBuffer, baseOffset: Int64, partitionLeaderEpoch: Int32, attributes: Int16, lastOffsetDelta: Int32,
                      baseTimestamp: Int64, maxTimestamp: Int64, producerId: Int64, producerEpoch: Int16, baseSequence: Int32,
                      recordCount: Int32, records: ByteBuffer) {
        let start = out.writerIndex
        out.reserveCapacity(minimumWritableBytes: RecordBatchHeader.size + records.readableBytes)
        out.writeInteger(baseOffset)
        out.writeInteger(Int32(RecordBatchHeader.size - RecordBatchHeader.logOverhead + records.readableBytes))
        out.writeInteger(partitionLeaderEpoch)
        out.writeInteger(2 as Int8)
        out.writeInteger(0 as UInt32)  // CRC, patched below
        out.writeInteger(attributes)
        out.writeInteger(lastOffsetDelta)
        out.writeInteger(baseTimestamp)
        out.writeInteger(maxTimestamp)
        out.writeInteger(producerId)
        out.writeInteger(producerEpoch)
        out.writeInteger(baseSequence)
        out.writeInteger(recordCount)
        out.writeImmutableBuffer(records)
        updateCRC(in: &out, batchAt: start)
    }

    /// Recomputes the CRC-32C of the batch at `index` (after the broker edits covered fields).
    public static func updateCRC(in buffer: inout ByteBuffer, batchAt index: Int) {
        let length = Int(buffer.getInteger(at: index + 8, as: Int32.self)!)
        let from = index + RecordBatchHeader.attributesOffset
        let count = length + RecordBatchHeader.logOverhead - RecordBatchHeader.attributesOffset
        let crc = buffer.withUnsafeReadableBytes { raw in
            tern_crc32c(0, raw.baseAddress! + (from - buffer.readerIndex), count)
        }
        buffer.setInteger(crc, at: index + RecordBatchHeader.crcOffset)
    }
}
