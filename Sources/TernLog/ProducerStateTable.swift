import Logging
import Foundation
import TernProtocol

/// Idempotent-producer state of one partition: per producer id, its epoch and the last five
/// batches it wrote (sequence range → offsets), which is what Kafka keeps to answer retries.
///
/// Rules (Kafka's): a batch from an older epoch is fenced; a new epoch must start at sequence 0;
/// a batch equal to one of the last five is a duplicate and gets that batch's offsets back without
/// being written again; otherwise its first sequence must follow the last one (wrapping at
/// Int32.max), or it is out of order.
struct ProducerStateTable: Codable {
    struct CachedBatch: Codable, Equatable {
        var firstSequence: Int32
        var lastSequence: Int32
        var firstOffset: Int64
        var lastOffset: Int64
    }

    struct Entry: Codable, Equatable {
        var epoch: Int16
        var batches: [CachedBatch]
        /// Max timestamp of the producer's last batch (nil in snapshots older than expiry).
        var lastTimestamp: Int64?
        /// Epoch of the coordinator that wrote the producer's last transaction marker here (nil:
        /// none yet, or a snapshot from before coordinator epochs were kept).
        var coordinatorEpoch: Int32?
    }

    enum Verdict: Equatable {
        case append
        case duplicate(CachedBatch)
    }

    static let cachedBatches = 5
    private(set) var producers: [Int64: Entry] = [:]

    /// `coordinatorEpoch`: a transaction marker's, from its control record. Markers follow
    /// Kafka's `appendEndTxnMarker`: one from an older producer epoch is INVALID_PRODUCER_EPOCH,
    /// one from an older coordinator than the last marker's is TRANSACTION_COORDINATOR_FENCED.
    func check(_ h: RecordBatchHeader, coordinatorEpoch: Int32? = nil) throws -> Verdict {
        guard h.producerId >= 0, let entry = producers[h.producerId] else { return .append }
        if h.isControl {
            if h.producerEpoch < entry.epoch { throw LogError.invalidProducerEpoch }
            if let known = entry.coordinatorEpoch, let coordinatorEpoch, coordinatorEpoch < known {
                throw LogError.transactionCoordinatorFenced
            }
            return .append
        }
        let lastSequence = Self.lastSequence(h)
        if h.producerEpoch < entry.epoch { throw LogError.invalidProducerEpoch }
        if h.producerEpoch > entry.epoch {
            guard h.baseSequence == 0 else { throw LogError.outOfOrderSequence }
            return .append
        }
        if let dup = entry.batches.first(where: { $0.firstSequence == h.baseSequence && $0.lastSequence == lastSequence }) {
            return .duplicate(dup)
        }
        guard let last = entry.batches.last else { return .append }
        let expected = last.lastSequence == Int32.max ? 0 : last.lastSequence + 1
        guard h.baseSequence == expected else { throw LogError.outOfOrderSequence }
        return .append
    }

    /// Records a batch written at `firstOffset...lastOffset` (`coordinatorEpoch`: a marker's).
    mutating func record(_ h: RecordBatchHeader, firstOffset: Int64, lastOffset: Int64, coordinatorEpoch: Int32? = nil) {
        guard h.producerId >= 0 else { return }
        if h.isControl {
            // A transaction marker written with a bumped epoch fences older producer instances.
            var entry = producers[h.producerId] ?? Entry(epoch: h.producerEpoch, batches: [])
            if h.producerEpoch > entry.epoch { entry = Entry(epoch: h.producerEpoch, batches: [], lastTimestamp: entry.lastTimestamp) }
            if let coordinatorEpoch { entry.coordinatorEpoch = max(entry.coordinatorEpoch ?? coordinatorEpoch, coordinatorEpoch) }
            entry.lastTimestamp = max(entry.lastTimestamp ?? Int64.min, h.maxTimestamp)
            producers[h.producerId] = entry
            return
        }
        var entry = producers[h.producerId] ?? Entry(epoch: h.producerEpoch, batches: [])
        if h.producerEpoch != entry.epoch { entry = Entry(epoch: h.producerEpoch, batches: [], coordinatorEpoch: entry.coordinatorEpoch) }
        entry.lastTimestamp = max(entry.lastTimestamp ?? Int64.min, h.maxTimestamp)
        entry.batches.append(CachedBatch(firstSequence: h.baseSequence, lastSequence: Self.lastSequence(h), firstOffset: firstOffset, lastOffset: lastOffset))
        if entry.batches.count > Self.cachedBatches { entry.batches.removeFirst(entry.batches.count - Self.cachedBatches) }
        producers[h.producerId] = entry
    }

    mutating func restore(_ producerId: Int64, _ entry: Entry?) { producers[producerId] = entry }

    /// Forgets producers idle for `producer.id.expiration.ms` (by their last batch's timestamp,
    /// as Kafka does), except those in `keep` (an open transaction). Without this the table, and
    /// every snapshot of it, grows with every producer id that ever wrote. Returns how many went.
    @discardableResult
    mutating func expire(nowMs: Int64, expirationMs: Int64, keep: Set<Int64>) -> Int {
        let before = producers.count
        producers = producers.filter { id, entry in
            keep.contains(id) || (entry.lastTimestamp.map { nowMs &- $0 < expirationMs } ?? true)
        }
        return before - producers.count
    }

    static func lastSequence(_ h: RecordBatchHeader) -> Int32 {
        let last = Int64(h.baseSequence) + Int64(h.lastOffsetDelta)
        return Int32(truncatingIfNeeded: last > Int64(Int32.max) ? last - Int64(Int32.max) - 1 : last)
    }
}

/// The table on disk: written at clean shutdown and segment roll, so startup only replays the
/// batches after it.
struct ProducerStateSnapshot: Codable {
    var offset: Int64
    var table: ProducerStateTable
    var transactions: TransactionIndex?

    static func path(_ directory: String) -> String { "\(directory)/producer-state.json" }

    /// The snapshot in `directory`, or nil; an unreadable one is reported and ignored (the state is
    /// then rebuilt from the log, which only costs time).
    static func load(_ directory: String, logger: Logger) -> ProducerStateSnapshot? {
        guard let data = FileManager.default.contents(atPath: path(directory)) else { return nil }
        do {
            return try JSONDecoder().decode(ProducerStateSnapshot.self, from: data)
        } catch {
            logger.warning("ignoring unreadable producer state snapshot; rebuilding it from the log",
                           metadata: ["file": "\(path(directory))", "error": "\(error)"])
            return nil
        }
    }

    /// `durable: false` at rolls: a lost snapshot only means replaying more of the log at start.
    func save(_ directory: String, durable: Bool = true) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        try PosixFile.writeAtomically(Self.path(directory), Array(try encoder.encode(self)), durable: durable)
    }
}
