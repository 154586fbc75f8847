import Foundation
import Logging
import NIOCore
import TernProtocol

@testable import TernLog

/// A fresh directory under the system temp dir, removed by `cleanup()`.
struct TempDir {
    let path: String
    init() {
        path = NSTemporaryDirectory() + "tern-test-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    func cleanup() { try? FileManager.default.removeItem(atPath: path) }
}

let testLogger = Logger(label: "tern.test")

/// A batch of `count` records "k<i>"/"v<i>" with timestamps from `timestamp`, as a producer sends it.
func makeBatch(count: Int, timestamp: Int64 = 1_000, valueSize: Int = 10, tag: String = "") throws -> ByteBuffer {
    let records = (0..<count).map { i in
        Record(
            timestamp: timestamp + Int64(i), key: ByteBuffer(string: "k\(tag)\(i)"),
            value: ByteBuffer(string: "v\(tag)\(i)" + String(repeating: "x", count: valueSize)),
            headers: [RecordHeader(key: "h", value: ByteBuffer(string: "\(i)"))])
    }
    var out = ByteBuffer()
    try RecordBatch(records: records).encode(to: &out)
    return out
}

/// A transactional batch of one record (key "k") of `producer` at epoch 0.
func transactional(_ value: String, producer: Int64, sequence: Int32) throws -> ByteBuffer {
    var batch = RecordBatch(records: [Record(timestamp: 1_000, key: ByteBuffer(string: "k"), value: ByteBuffer(string: value))])
    batch.attributes = 0x10
    batch.producerId = producer
    batch.producerEpoch = 0
    batch.baseSequence = sequence
    var out = ByteBuffer()
    try batch.encode(to: &out)
    return out
}

/// An idempotent (not transactional) batch of one record (key "k") of `producer` at epoch 0.
func idempotent(_ value: String, producer: Int64, sequence: Int32) throws -> ByteBuffer {
    var batch = RecordBatch(records: [Record(timestamp: 1_000, key: ByteBuffer(string: "k"), value: ByteBuffer(string: value))])
    batch.producerId = producer
    batch.producerEpoch = 0
    batch.baseSequence = sequence
    var out = ByteBuffer()
    try batch.encode(to: &out)
    return out
}

/// The commit or abort marker of `producer`'s transaction (a control batch), written by the
/// coordinator of `coordinatorEpoch`.
func transactionMarker(commit: Bool, producer: Int64, epoch: Int16 = 0, coordinatorEpoch: Int32 = 0) throws -> ByteBuffer {
    var key = ByteBuffer()
    key.writeInteger(0 as Int16)
    key.writeInteger(commit ? TransactionIndex.commitMarker : TransactionIndex.abortMarker)
    var value = ByteBuffer()
    value.writeInteger(0 as Int16)
    value.writeInteger(coordinatorEpoch)
    var batch = RecordBatch(records: [Record(timestamp: 1_000, key: key, value: value)])
    batch.attributes = 0x30
    batch.producerId = producer
    batch.producerEpoch = epoch
    var out = ByteBuffer()
    try batch.encode(to: &out)
    return out
}

extension PartitionLog {
    /// Validates and appends like the broker does.
    @discardableResult
    func appendBatch(_ bytes: ByteBuffer) throws -> AppendResult {
        try append(bytes, headers: try RecordBatchHeader.validateAll(bytes))
    }

    /// Reads every record from `offset` to the end, following batches across segments.
    func readAllRecords(from offset: Int64) throws -> [Record] {
        var records: [Record] = []
        var next = offset
        while next < logEndOffset {
            var bytes = try read(from: next, maxBytes: 1 << 20).records.bytes
            var progressed = false
            while bytes.readableBytes >= RecordBatchHeader.size,
                let header = try? RecordBatchHeader(from: bytes, at: bytes.readerIndex),
                bytes.readableBytes >= header.totalSize
            {
                let batch = try RecordBatch.read(from: &bytes)
                for r in batch.records where r.offset >= next { records.append(r) }
                next = header.lastOffset + 1
                progressed = true
            }
            if !progressed { break }
        }
        return records
    }
}
