import Logging
import NIOCore
import TernLog
import TernProtocol

/// A committed offset, as OffsetFetch returns it.
struct CommittedOffset: Equatable {
    var offset: Int64
    var leaderEpoch: Int32
    var metadata: String?
    var commitTimestamp: Int64
}

struct TopicPartitionKey: Hashable {
    var topic: String
    var partition: Int32
}

/// Committed offsets, durable in the compacted internal topic `__consumer_offsets`.
///
/// Record format (Kafka's offset-commit key v1 / value v3 layout): key = int16 1, string group,
/// string topic, int32 partition; value = int16 3, int64 offset, int32 leader epoch, nullable
/// string metadata, int64 commit timestamp. A null value (tombstone) deletes the offset, and
/// compaction eventually keeps only the newest record per key.
struct OffsetStore {
    private(set) var offsets: [String: [TopicPartitionKey: CommittedOffset]] = [:]

    static func key(group: String, _ tp: TopicPartitionKey) -> ByteBuffer {
        var b = ByteBuffer()
        b.writeInteger(1 as Int16)
        b.writeKafkaString(group, compact: false)
        b.writeKafkaString(tp.topic, compact: false)
        b.writeInteger(tp.partition)
        return b
    }

    static func value(_ c: CommittedOffset) -> ByteBuffer {
        var b = ByteBuffer()
        b.writeInteger(3 as Int16)
        b.writeInteger(c.offset)
        b.writeInteger(c.leaderEpoch)
        b.writeKafkaNullableString(c.metadata, compact: false)
        b.writeInteger(c.commitTimestamp)
        return b
    }

    /// One record batch holding `changes` (nil = delete), ready to append.
    static func batch(group: String, _ changes: [(TopicPartitionKey, CommittedOffset?)], now: Int64) throws -> ByteBuffer {
        var out = ByteBuffer()
        let records = changes.map { tp, c in Record(timestamp: now, key: key(group: group, tp), value: c.map(value)) }
        try RecordBatch(records: records).encode(to: &out)
        return out
    }

    mutating func apply(group: String, _ changes: [(TopicPartitionKey, CommittedOffset?)]) {
        for (tp, c) in changes {
            if let c {
                offsets[group, default: [:]][tp] = c
            } else {
                offsets[group]?[tp] = nil
            }
        }
        if offsets[group]?.isEmpty == true { offsets[group] = nil }
    }

    /// Forgets the groups `leaving` names (their coordination moved to another broker).
    mutating func remove(where leaving: (String) -> Bool) {
        offsets = offsets.filter { !leaving($0.key) }
    }

    /// Adds one partition's groups by replaying its log from the start.
    mutating func load(from log: PartitionLog, logger: Logger) throws {
        var next = log.logStartOffset
        var loaded = 0
        while next < log.logEndOffset {
            // To the log end, as Kafka's coordinator loads: a new leader's high watermark may still
            // trail records every in-sync replica has (commits answered only once replicated).
            var bytes = try log.read(from: next, maxBytes: 4 << 20, toLogEnd: true).records.bytes
            var progressed = false
            while bytes.readableBytes >= RecordBatchHeader.size,
                let header = try? RecordBatchHeader(from: bytes, at: bytes.readerIndex),
                bytes.readableBytes >= header.totalSize
            {
                let batch = try RecordBatch.read(from: &bytes)
                for r in batch.records where r.offset >= next {
                    guard var k = r.key, try k.readKafka(Int16.self) == 1 else { continue }
                    let group = try k.readKafkaString(compact: false)
                    let tp = TopicPartitionKey(topic: try k.readKafkaString(compact: false), partition: try k.readKafka(Int32.self))
                    if var v = r.value {
                        _ = try v.readKafka(Int16.self)
                        let c = CommittedOffset(
                            offset: try v.readKafka(Int64.self), leaderEpoch: try v.readKafka(Int32.self),
                            metadata: try v.readKafkaNullableString(compact: false), commitTimestamp: try v.readKafka(Int64.self))
                        apply(group: group, [(tp, c)])
                    } else {
                        apply(group: group, [(tp, nil)])
                    }
                    loaded += 1
                }
                next = header.lastOffset + 1
                progressed = true
            }
            if !progressed { break }
        }
        logger.info("loaded committed offsets", metadata: ["records": "\(loaded)", "groups": "\(offsets.count)"])
    }
}
