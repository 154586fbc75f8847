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

/// Committed offsets and each classic group's last generation, durable in the compacted
/// internal topic `__consumer_offsets`.
///
/// Record format (Kafka's offset-commit key v1 / value v3 layout): key = int16 1, string group,
/// string topic, int32 partition; value = int16 3, int64 offset, int32 leader epoch, nullable
/// string metadata, int64 commit timestamp. A null value (tombstone) deletes the offset, and
/// compaction eventually keeps only the newest record per key. A group's generation is Kafka's
/// group-metadata record (key v2: int16 2, string group; value v3: string protocol type, int32
/// generation, nullable string protocol, nullable string leader, int64 state timestamp, members
/// — written without members: they rejoin a new coordinator), so generations keep counting up
/// across coordinator moves and a generation number is never handed out twice.
///
/// Offsets a transaction commits (TxnOffsetCommit) are written as transactional records of the
/// producer; they count only once the transaction's commit marker follows them in the same
/// partition, and never after an abort marker (`pendingTransactional` holds them meanwhile).
struct OffsetStore {
    private(set) var offsets: [String: [TopicPartitionKey: CommittedOffset]] = [:]
    /// Producer id → group → offsets written by its open transaction. Bounded by the open
    /// transactions: the broker verifies each TxnOffsetCommit against the transaction coordinator
    /// first, so only a transaction whose marker will clear its entry can add one.
    private(set) var pendingTransactional: [Int64: [String: [TopicPartitionKey: CommittedOffset]]] = [:]
    /// Group → its last generation written.
    private(set) var generations: [String: Int32] = [:]

    static func groupKey(_ group: String) -> ByteBuffer {
        var b = ByteBuffer()
        b.writeInteger(2 as Int16)
        b.writeKafkaString(group, compact: false)
        return b
    }

    /// A tombstone of a group's metadata record: a deleted group's generation goes too.
    static func groupTombstone(group: String, now: Int64) throws -> ByteBuffer {
        var out = ByteBuffer()
        try RecordBatch(records: [Record(timestamp: now, key: groupKey(group), value: nil)]).encode(to: &out)
        return out
    }

    mutating func forgetGeneration(_ group: String) { generations[group] = nil }

    /// A group-metadata record of `generation` (members omitted).
    static func groupBatch(group: String, protocolType: String?, generation: Int32, protocolName: String?, leader: String?, now: Int64) throws -> ByteBuffer {
        var value = ByteBuffer()
        value.writeInteger(3 as Int16)
        value.writeKafkaString(protocolType ?? "", compact: false)
        value.writeInteger(generation)
        value.writeKafkaNullableString(protocolName, compact: false)
        value.writeKafkaNullableString(leader, compact: false)
        value.writeInteger(now)
        value.writeInteger(0 as Int32)  // members
        var out = ByteBuffer()
        try RecordBatch(records: [Record(timestamp: now, key: groupKey(group), value: value)]).encode(to: &out)
        return out
    }

    mutating func setGeneration(_ group: String, _ generation: Int32) {
        generations[group] = max(generations[group] ?? generation, generation)
    }

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

    /// One record batch holding `changes` (nil = delete), ready to append; a transaction's
    /// (`producer`) is marked transactional with its producer id and epoch.
    static func batch(
        group: String, _ changes: [(TopicPartitionKey, CommittedOffset?)], now: Int64, producer: (id: Int64, epoch: Int16)? = nil
    ) throws -> ByteBuffer {
        var out = ByteBuffer()
        let records = changes.map { tp, c in Record(timestamp: now, key: key(group: group, tp), value: c.map(value)) }
        var batch = RecordBatch(records: records)
        if let producer {
            batch.attributes |= 0x10  // transactional
            batch.producerId = producer.id
            batch.producerEpoch = producer.epoch
        }
        try batch.encode(to: &out)
        return out
    }

    /// A transaction wrote offsets for `group`: they wait for its marker.
    mutating func stage(producerId: Int64, group: String, _ changes: [(TopicPartitionKey, CommittedOffset)]) {
        for (tp, c) in changes { pendingTransactional[producerId, default: [:]][group, default: [:]][tp] = c }
    }

    /// The marker of `producerId`'s transaction: a commit makes its pending offsets of the groups
    /// `included` names committed, an abort drops them.
    mutating func complete(producerId: Int64, commit: Bool, included: (String) -> Bool) {
        guard var byGroup = pendingTransactional[producerId] else { return }
        for (group, pending) in byGroup where included(group) {
            if commit { apply(group: group, pending.map { ($0.key, Optional($0.value)) }) }
            byGroup[group] = nil
        }
        pendingTransactional[producerId] = byGroup.isEmpty ? nil : byGroup
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
        generations = generations.filter { !leaving($0.key) }
        pendingTransactional = pendingTransactional.compactMapValues { byGroup in
            let kept = byGroup.filter { !leaving($0.key) }
            return kept.isEmpty ? nil : kept
        }
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
                if header.isControl {
                    // A transaction's marker: every group here is in this partition.
                    if header.lastOffset >= next, var k = batch.records.first?.key, (try? k.readKafka(Int16.self)) != nil,
                        let type = try? k.readKafka(Int16.self)
                    {
                        complete(producerId: header.producerId, commit: type == TransactionIndex.commitMarker, included: { _ in true })
                    }
                    next = header.lastOffset + 1
                    progressed = true
                    continue
                }
                for r in batch.records where r.offset >= next {
                    guard var k = r.key else { continue }
                    let keyVersion = try k.readKafka(Int16.self)
                    if keyVersion == 2 {
                        let group = try k.readKafkaString(compact: false)
                        if var v = r.value {
                            _ = try v.readKafka(Int16.self)
                            _ = try v.readKafkaString(compact: false)
                            setGeneration(group, try v.readKafka(Int32.self))
                        } else {
                            generations[group] = nil
                        }
                        continue
                    }
                    guard keyVersion == 1 else { continue }
                    let group = try k.readKafkaString(compact: false)
                    let tp = TopicPartitionKey(topic: try k.readKafkaString(compact: false), partition: try k.readKafka(Int32.self))
                    if var v = r.value {
                        _ = try v.readKafka(Int16.self)
                        let c = CommittedOffset(
                            offset: try v.readKafka(Int64.self), leaderEpoch: try v.readKafka(Int32.self),
                            metadata: try v.readKafkaNullableString(compact: false), commitTimestamp: try v.readKafka(Int64.self))
                        if header.isTransactional {
                            stage(producerId: header.producerId, group: group, [(tp, c)])
                        } else {
                            apply(group: group, [(tp, c)])
                        }
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
