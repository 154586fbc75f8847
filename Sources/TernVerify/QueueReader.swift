import NIOCore
import TernClient
import TernProtocol

/// A consumer for the checkers: reads every partition of a topic in offset order from each
/// partition's leader, with a timeout on every request so a paused or vanished broker costs a
/// retry, never a hang. Positions only move forward past records returned. read_committed (the
/// transactional workload) stops at the last stable offset and drops the records of aborted
/// transactions as Kafka's consumers do: a producer's transactional batches from the first
/// offset of one of its aborted transactions up to its abort marker.
struct QueueReader {
    let client: KafkaClient
    let topic: String
    let readCommitted: Bool
    private(set) var positions: [Int32: Int64]
    /// Each partition's high watermark (read_committed: last stable offset) as of its last fetch.
    private(set) var highWatermarks: [Int32: Int64] = [:]
    /// Partitions whose last fetch showed a transaction still open (last stable offset below the
    /// high watermark).
    private(set) var openTransactions: Set<Int32> = []
    /// read_committed: producers inside an aborted transaction at each partition's position.
    private var abortedProducers: [Int32: Set<Int64>] = [:]
    let requestTimeout: Duration

    init(client: KafkaClient, topic: String, partitions: Int32, readCommitted: Bool = false, requestTimeout: Duration = .seconds(5)) {
        self.client = client
        self.topic = topic
        self.readCommitted = readCommitted
        self.positions = Dictionary(uniqueKeysWithValues: (0..<partitions).map { ($0, 0) })
        self.requestTimeout = requestTimeout
    }

    /// Every partition has been read up to the high watermark (or last stable offset) its leader
    /// last reported.
    var caughtUp: Bool { positions.allSatisfy { p, position in highWatermarks[p].map { position >= $0 } ?? false } }

    /// read_committed: no partition had a transaction open at its last fetch.
    var transactionsEnded: Bool { !readCommitted || openTransactions.isEmpty }

    /// One fetch from each leader. Errors of a partition (leadership moving) or of a broker
    /// (unreachable, timed out) refresh the metadata and are reported; the records read so far are
    /// returned either way.
    mutating func poll(maxWaitMs: Int32) async -> (records: [ReadRecord], errors: [String]) {
        var errors: [String] = []
        guard let info = try? await client.topic(topic) else {
            _ = try? await client.refreshMetadata(topics: [topic])
            return ([], ["no metadata for \(topic)"])
        }
        let byLeader = Dictionary(grouping: positions.keys.sorted(), by: { info.partitions[$0] ?? -1 })
        var records: [ReadRecord] = []
        var refresh = false
        for (leader, partitions) in byLeader.sorted(by: { $0.key < $1.key }) {
            guard leader >= 0 else {
                refresh = true
                errors.append("partitions \(partitions) have no leader")
                continue
            }
            do {
                let connection = try await client.connection(to: leader)
                let version = try connection.version(.fetch, max: 11)
                let request = FetchRequest(
                    replicaId: -1, maxWaitMs: maxWaitMs, minBytes: 1, maxBytes: 8 << 20, isolationLevel: readCommitted ? 1 : 0,
                    topics: [.init(topic: topic, partitions: partitions.map { .init(partition: $0, fetchOffset: positions[$0]!, partitionMaxBytes: 1 << 20) })])
                let response = try await connection.send(request, version: version, as: FetchResponse.self, timeout: requestTimeout + .milliseconds(Int(maxWaitMs)))
                for p in response.responses.flatMap(\.partitions) {
                    guard p.errorCode == 0 else {
                        refresh = true
                        errors.append("partition \(p.partitionIndex): \(KafkaErrorNames.name(p.errorCode))")
                        continue
                    }
                    highWatermarks[p.partitionIndex] = readCommitted ? p.lastStableOffset : p.highWatermark
                    if readCommitted && p.lastStableOffset < p.highWatermark {
                        openTransactions.insert(p.partitionIndex)
                    } else {
                        openTransactions.remove(p.partitionIndex)
                    }
                    guard case .bytes(let bytes)? = p.records, let from = positions[p.partitionIndex] else { continue }
                    if readCommitted {
                        records += try committedRecords(bytes, partition: p.partitionIndex, from: from, aborted: p.abortedTransactions ?? [])
                    } else {
                        var consumed: [ConsumedRecord] = []
                        try Consumer.decode(bytes, topic: topic, partition: p.partitionIndex, from: from, into: &consumed)
                        for r in consumed {
                            records.append(ReadRecord(partition: r.partition, offset: r.offset, value: r.value.map { String(buffer: $0) } ?? ""))
                        }
                    }
                    positions[p.partitionIndex] = max(from, Consumer.offsetAfter(bytes, from: from))
                }
            } catch {
                refresh = true
                errors.append("broker \(leader): \(error)")
            }
        }
        if refresh { _ = try? await client.refreshMetadata(topics: [topic]) }
        return (records, errors)
    }

    /// The records of committed (or non-transactional) batches in `bytes` at or after `from`.
    private mutating func committedRecords(
        _ bytes: ByteBuffer, partition: Int32, from: Int64, aborted: [FetchResponse.AbortedTransaction]
    ) throws -> [ReadRecord] {
        var pending = aborted.sorted { $0.firstOffset < $1.firstOffset }
        var active = abortedProducers[partition] ?? []
        defer { abortedProducers[partition] = active }
        var out: [ReadRecord] = []
        var buffer = bytes
        while buffer.readableBytes >= RecordBatchHeader.size {
            guard let header = try? RecordBatchHeader(from: buffer, at: buffer.readerIndex) else { break }
            guard header.totalSize >= RecordBatchHeader.size else { throw RecordBatchError.invalidLength(header.batchLength) }
            guard buffer.readableBytes >= header.totalSize else { break }
            while let next = pending.first, next.firstOffset <= header.lastOffset {
                active.insert(next.producerId)
                pending.removeFirst()
            }
            if header.isControl {
                // A marker ends its producer's transaction, aborted or not.
                active.remove(header.producerId)
                buffer.moveReaderIndex(forwardBy: header.totalSize)
                continue
            }
            if header.isTransactional && active.contains(header.producerId) {
                buffer.moveReaderIndex(forwardBy: header.totalSize)
                continue
            }
            let batch = try RecordBatch.read(from: &buffer)
            for r in batch.records where r.offset >= from {
                out.append(ReadRecord(partition: partition, offset: r.offset, value: r.value.map { String(buffer: $0) } ?? ""))
            }
        }
        return out
    }
}
