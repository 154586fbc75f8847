import NIOCore
import TernProtocol

/// A record as a consumer sees it.
public struct ConsumedRecord: Sendable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    public var timestamp: Int64
    public var key: ByteBuffer?
    public var value: ByteBuffer?
    public var headers: [RecordHeader]
}

public struct TopicPartition: Hashable, Sendable, Comparable {
    public var topic: String
    public var partition: Int32
    public init(topic: String, partition: Int32) {
        self.topic = topic
        self.partition = partition
    }
    public static func < (a: Self, b: Self) -> Bool { (a.topic, a.partition) < (b.topic, b.partition) }
}

/// Fetches assigned partitions from their leaders, in order, one fetch round per `poll`.
/// Decodes batches of every codec Kafka uses (through the C core's CTernCodec).
public final class Consumer {
    public enum StartOffset: Sendable, Equatable {
        case earliest, latest
        case offset(Int64)
        case timestamp(Int64)
    }

    public struct Config: Sendable {
        public var maxWaitMs: Int32 = 500
        public var minBytes: Int32 = 1
        public var maxBytes: Int32 = 50 << 20
        public var partitionMaxBytes: Int32 = 4 << 20
        /// 1 = read_committed.
        public var isolationLevel: Int8 = 0
        public init() {}
    }

    public let client: KafkaClient
    let config: Config
    public private(set) var positions: [TopicPartition: Int64] = [:]
    /// High watermarks from the last fetch, for lag and "caught up" checks.
    public private(set) var highWatermarks: [TopicPartition: Int64] = [:]

    public init(client: KafkaClient, config: Config = Config()) {
        self.client = client
        self.config = config
    }

    /// Adds partitions (nil = all of the topic's) starting at `start`.
    public func assign(topic: String, partitions: [Int32]? = nil, from start: StartOffset) async throws {
        let info = try await client.topic(topic)
        for p in partitions ?? info.partitions.keys.sorted() {
            positions[TopicPartition(topic: topic, partition: p)] = try await resolve(start, topic: topic, partition: p)
        }
    }

    public func assign(_ offsets: [TopicPartition: Int64]) {
        for (tp, o) in offsets { positions[tp] = o }
    }

    public func unassignAll() {
        positions.removeAll()
        highWatermarks.removeAll()
        inFlight.values.forEach { $0.task.cancel() }
        inFlight.removeAll()
    }

    func resolve(_ start: StartOffset, topic: String, partition: Int32) async throws -> Int64 {
        switch start {
        case .earliest: return try await client.listOffset(topic: topic, partition: partition, timestamp: -2)
        case .latest: return try await client.listOffset(topic: topic, partition: partition, timestamp: -1)
        case .offset(let o): return o
        case .timestamp(let t):
            let o = try await client.listOffset(topic: topic, partition: partition, timestamp: t)
            return o >= 0 ? o : try await client.listOffset(topic: topic, partition: partition, timestamp: -1)
        }
    }

    /// Whether every assigned partition has been read up to its high watermark.
    public var caughtUp: Bool {
        positions.allSatisfy { tp, position in highWatermarks[tp].map { position >= $0 } ?? false }
    }

    /// One fetch round: long-polls each leader (up to `maxWaitMs`) and returns the new records.
    ///
    /// Fetches are prefetched: as soon as a response arrives, the next fetch (from the offsets
    /// after it) is sent, so the transfer of the next response overlaps decoding this one.
    public func poll() async throws -> [ConsumedRecord] {
        var byLeader: [Int32: [TopicPartition]] = [:]
        for tp in positions.keys.sorted() {
            let leader = try await client.topic(tp.topic).partitions[tp.partition] ?? -1
            byLeader[leader, default: []].append(tp)
        }
        var out: [ConsumedRecord] = []
        for (leader, tps) in byLeader {
            let offsets = Dictionary(uniqueKeysWithValues: tps.map { ($0, positions[$0]!) })
            let pending: InFlightFetch
            if let prefetched = inFlight[leader], prefetched.offsets == offsets {
                pending = prefetched
            } else {
                pending = try await startFetch(leader: leader, offsets: offsets)
            }
            inFlight[leader] = nil
            let response = try await pending.task.value
            guard response.errorCode == 0 else { throw ClientError.kafka(code: response.errorCode, context: "fetch") }
            var next = offsets
            for t in response.responses {
                for p in t.partitions {
                    let tp = TopicPartition(topic: t.topic, partition: p.partitionIndex)
                    guard p.errorCode == 0 else { throw ClientError.kafka(code: p.errorCode, context: "fetch \(t.topic)[\(p.partitionIndex)]") }
                    highWatermarks[tp] = p.highWatermark
                    if let bytes = p.records?.bytes, let from = next[tp] { next[tp] = Self.offsetAfter(bytes, from: from) }
                }
            }
            // Ask for what follows before decoding what arrived.
            inFlight[leader] = try await startFetch(leader: leader, offsets: next)
            for t in response.responses {
                for p in t.partitions {
                    let tp = TopicPartition(topic: t.topic, partition: p.partitionIndex)
                    guard let bytes = p.records?.bytes, let from = offsets[tp] else { continue }
                    try Self.decode(bytes, topic: t.topic, partition: p.partitionIndex, from: from, into: &out)
                }
            }
            for (tp, o) in next { positions[tp] = o }
        }
        return out
    }

    private struct InFlightFetch {
        let offsets: [TopicPartition: Int64]
        let task: Task<FetchResponse, Error>
    }

    private var inFlight: [Int32: InFlightFetch] = [:]

    private func startFetch(leader: Int32, offsets: [TopicPartition: Int64]) async throws -> InFlightFetch {
        let connection = try await client.connection(to: leader)
        let version = try connection.version(.fetch, max: 11)
        let topics = Dictionary(grouping: offsets.keys, by: \.topic)
        let request = FetchRequest(
            replicaId: -1, maxWaitMs: config.maxWaitMs, minBytes: config.minBytes, maxBytes: config.maxBytes,
            isolationLevel: config.isolationLevel,
            topics: topics.keys.sorted().map { t in
                .init(topic: t, partitions: topics[t]!.sorted().map { .init(partition: $0.partition, fetchOffset: offsets[$0]!, partitionMaxBytes: config.partitionMaxBytes) })
            })
        return InFlightFetch(offsets: offsets, task: Task { try await connection.send(request, version: version, as: FetchResponse.self) })
    }

    /// The offset after the last whole batch in `bytes` (a trailing partial batch is not counted).
    public static func offsetAfter(_ bytes: ByteBuffer, from: Int64) -> Int64 {
        var next = from
        var index = bytes.readerIndex
        while bytes.writerIndex - index >= RecordBatchHeader.size, let h = try? RecordBatchHeader(from: bytes, at: index),
            h.totalSize >= RecordBatchHeader.size, bytes.writerIndex - index >= h.totalSize
        {
            next = max(next, h.lastOffset + 1)
            index += h.totalSize
        }
        return next
    }

    /// The records of the whole batches in `records` at or after offset `from` (control batches
    /// skipped; a partial batch at the end is left for the next fetch).
    public static func decode(_ records: ByteBuffer, topic: String, partition: Int32, from: Int64, into out: inout [ConsumedRecord]) throws {
        var bytes = records
        while bytes.readableBytes >= RecordBatchHeader.size {
            guard let header = try? RecordBatchHeader(from: bytes, at: bytes.readerIndex) else { break }
            // A length below a header's is a broken (or hostile) broker's, not a partial batch.
            guard header.totalSize >= RecordBatchHeader.size else { throw RecordBatchError.invalidLength(header.batchLength) }
            guard bytes.readableBytes >= header.totalSize else { break }  // a partial batch at the end of the response
            if header.isControl {
                bytes.moveReaderIndex(forwardBy: header.totalSize)
                continue
            }
            let batch = try RecordBatch.read(from: &bytes)
            for r in batch.records where r.offset >= from {
                out.append(ConsumedRecord(topic: topic, partition: partition, offset: r.offset, timestamp: r.timestamp,
                                          key: r.key, value: r.value, headers: r.headers))
            }
        }
    }
}
