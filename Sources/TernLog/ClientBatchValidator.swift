import NIOCore
import TernProtocol

/// The per-topic rules a client's batch is checked against.
public struct BatchPolicy: Sendable {
    /// `max.message.bytes`: largest batch, compressed size as sent.
    public var maxMessageBytes: Int
    /// `cleanup.policy` includes compact: every record needs a key.
    public var compacted: Bool
    /// `message.timestamp.before.max.ms` / `after.max.ms`: how far a CreateTime timestamp may lie
    /// behind or ahead of the broker's clock (Kafka's defaults: unlimited).
    public var timestampBeforeMaxMs: Int64
    public var timestampAfterMaxMs: Int64
    /// Largest decompressed body of one batch (see `RecordCompression`).
    public var decompressedLimit: Int
    /// `message.timestamp.type=LogAppendTime`: the broker stamps batches, so producer timestamps
    /// are not range-checked (Kafka checks them only for CreateTime).
    public var logAppendTime = false

    public init(maxMessageBytes: Int, compacted: Bool = false, timestampBeforeMaxMs: Int64 = .max, timestampAfterMaxMs: Int64 = .max,
                decompressedLimit: Int = RecordCompression.defaultDecompressedLimit) {
        self.maxMessageBytes = maxMessageBytes
        self.compacted = compacted
        self.timestampBeforeMaxMs = timestampBeforeMaxMs
        self.timestampAfterMaxMs = timestampAfterMaxMs
        self.decompressedLimit = decompressedLimit
    }
}

/// Records of an otherwise valid batch that break a rule of the topic (Produce v8+ reports them one
/// by one in `record_errors`).
public struct RecordValidationError: Error, Equatable, Sendable {
    public enum Kind: Sendable { case invalidRecord, invalidTimestamp }
    public var kind: Kind
    public var recordErrors: [RecordError]

    public struct RecordError: Equatable, Sendable {
        public var batchIndex: Int32
        public var message: String
    }

    /// Kafka's top-level message for the response's `error_message`.
    public var message: String {
        switch kind {
        case .invalidTimestamp: return "One or more records have been rejected due to invalid timestamp"
        case .invalidRecord:
            let shown = recordErrors.prefix(3).map { "\($0.batchIndex): \($0.message)" }.joined(separator: "; ")
            return "One or more records have been rejected due to \(recordErrors.count) record errors in total, "
                + "and only showing the first three errors at most: [\(shown)]"
        }
    }
}

/// What a broker must check before it stores a client's records, as strictly as Kafka's
/// `LogValidator` and `UnifiedLog.analyzeAndValidateRecords`: exactly one v2 batch, a valid CRC,
/// base offset 0, a record count that matches the offset range and the records actually present,
/// inner offsets 0, 1, 2, …, well-formed records (decompressed, up to a limit, when compressed), no
/// control batch, a sequence for every producer id, keys on compacted topics, timestamps in range.
///
/// Everything stored passes this, so consumers, compaction, recovery and ListOffsets never meet a
/// batch they cannot read.
public enum ClientBatchValidator {
    /// Returns the batch's header. When the batch's max timestamp is not the largest record
    /// timestamp, it is corrected in place (and the CRC recomputed), as Kafka does.
    public static func validate(_ records: inout ByteBuffer, policy: BatchPolicy, nowMs: Int64) throws -> RecordBatchHeader {
        guard records.readableBytes > 0 else { throw RecordBatchError.invalidRecord("the produce request carries no record batch") }
        let start = records.readerIndex
        let header = try RecordBatchHeader.validated(in: records, at: start)
        guard header.totalSize == records.readableBytes else {
            throw RecordBatchError.invalidRecord("a produce request must carry exactly one record batch per partition")
        }
        guard header.totalSize <= policy.maxMessageBytes else {
            throw RecordBatchError.tooLarge(size: header.totalSize, limit: policy.maxMessageBytes)
        }
        try checkHeader(header)
        guard let codec = header.compression else { throw RecordBatchError.unsupportedCompression(header.attributes & 0x7) }
        let payload = records.getSlice(at: start + RecordBatchHeader.size, length: header.totalSize - RecordBatchHeader.size)!
        var reader = RecordReader(
            body: try RecordCompression.decompress(payload, codec: codec, limit: policy.decompressedLimit, fromProducer: true), fromProducer: true)
        var maxTimestamp = Int64.min
        var errors: [RecordValidationError.RecordError] = []
        var timestampErrors = false
        for index in 0..<header.recordsCount {
            let record = try reader.next()
            guard record.offsetDelta == index else {
                throw RecordBatchError.invalidRecord("record \(index) has offset delta \(record.offsetDelta): inner offsets must be 0, 1, 2, …")
            }
            let timestamp = header.baseTimestamp &+ record.timestampDelta
            maxTimestamp = max(maxTimestamp, timestamp)
            if policy.compacted && record.key == nil {
                errors.append(.init(batchIndex: index, message: "Compacted topic cannot accept message without key"))
            } else if header.usesLogAppendTime {
                timestampErrors = true
                errors.append(.init(batchIndex: index, message: "Producer should not set timestamp type to LogAppendTime"))
            } else if !policy.logAppendTime && timestamp != -1 && outOfRange(timestamp, nowMs: nowMs, policy: policy) {
                timestampErrors = true
                errors.append(.init(batchIndex: index, message: "Timestamp \(timestamp) of record \(index) is out of range"))
            }
        }
        guard reader.remainingBytes == 0 else {
            throw RecordBatchError.invalidRecord("incorrect declared batch size: \(reader.remainingBytes) bytes follow the last of \(header.recordsCount) records")
        }
        if !errors.isEmpty { throw RecordValidationError(kind: timestampErrors ? .invalidTimestamp : .invalidRecord, recordErrors: errors) }
        var result = header
        if header.maxTimestamp != maxTimestamp {
            records.setInteger(maxTimestamp, at: start + 35)
            RecordBatch.updateCRC(in: &records, batchAt: start)
            result = try RecordBatchHeader(from: records, at: start)
        }
        return result
    }

    /// LogAppendTime: marks the (validated, single) batch's timestamp type and sets its max
    /// timestamp to the broker's clock, recomputing the CRC — Kafka's `setMaxTimestamp(LOG_APPEND_TIME,
    /// now)`. Consumers then read every record's timestamp as `nowMs`. Returns the new header.
    public static func stampLogAppendTime(_ records: inout ByteBuffer, nowMs: Int64) throws -> RecordBatchHeader {
        let start = records.readerIndex
        let attributes = records.getInteger(at: start + 21, as: Int16.self)!
        records.setInteger(attributes | 0x08, at: start + 21)
        records.setInteger(nowMs, at: start + 35)
        RecordBatch.updateCRC(in: &records, batchAt: start)
        return try RecordBatchHeader.validated(in: records, at: start)
    }

    /// The header rules of `LogValidator.validateBatch` for client appends, plus the producer fields
    /// Kafka checks in its producer state: an epoch and sequence with every producer id, and no
    /// transactional flag without one.
    static func checkHeader(_ h: RecordBatchHeader) throws {
        guard h.baseOffset == 0 else {
            throw RecordBatchError.invalidRecord("the base offset of a produced batch must be 0, not \(h.baseOffset)")
        }
        guard h.recordsCount > 0 else { throw RecordBatchError.invalidRecord("invalid reported count for record batch: \(h.recordsCount)") }
        guard Int64(h.lastOffsetDelta) + 1 == Int64(h.recordsCount) else {
            throw RecordBatchError.invalidRecord("inconsistent batch offset range [0, \(h.lastOffsetDelta)] and count of records \(h.recordsCount)")
        }
        guard !h.isControl else { throw RecordBatchError.invalidRecord("clients are not allowed to write control records") }
        if h.producerId >= 0 {
            guard h.baseSequence >= 0 else {
                throw RecordBatchError.invalidRecord("invalid sequence number \(h.baseSequence) in record batch with producer id \(h.producerId)")
            }
            guard h.producerEpoch >= 0 else {
                throw RecordBatchError.invalidRecord("invalid producer epoch \(h.producerEpoch) for producer id \(h.producerId)")
            }
        } else {
            guard !h.isTransactional else { throw RecordBatchError.invalidRecord("transactional batch without a producer id") }
            guard h.producerId == -1 else { throw RecordBatchError.invalidRecord("invalid producer id \(h.producerId)") }
        }
    }

    private static func outOfRange(_ timestamp: Int64, nowMs: Int64, policy: BatchPolicy) -> Bool {
        guard policy.timestampBeforeMaxMs != .max || policy.timestampAfterMaxMs != .max else { return false }
        let (behind, overflow) = nowMs.subtractingReportingOverflow(timestamp)
        if overflow { return true }
        return behind > policy.timestampBeforeMaxMs || (behind < 0 && -behind > policy.timestampAfterMaxMs)
    }
}
