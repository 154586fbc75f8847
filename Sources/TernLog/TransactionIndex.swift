import NIOCore
import TernProtocol

/// Transactions seen by one partition: which producers have a transaction open (from their first
/// transactional batch until their commit/abort marker) and which transactions were aborted. The
/// first open offset is the last stable offset; the aborted list is what read_committed consumers
/// get with each fetch so they can drop aborted records.
public struct TransactionIndex: Codable {
    struct Aborted: Codable, Equatable {
        var producerId: Int64
        var firstOffset: Int64
        var lastOffset: Int64
    }

    var open: [Int64: Int64] = [:]
    var aborted: [Aborted] = []

    /// Control record types (the control record key: int16 version, int16 type).
    public static let abortMarker: Int16 = 0
    public static let commitMarker: Int16 = 1

    /// `marker` is the control record type for control batches, nil otherwise.
    mutating func observe(_ h: RecordBatchHeader, marker: Int16?) {
        guard h.isTransactional, h.producerId >= 0 else { return }
        if h.isControl {
            guard let first = open.removeValue(forKey: h.producerId) else { return }
            if marker == Self.abortMarker { aborted.append(Aborted(producerId: h.producerId, firstOffset: first, lastOffset: h.lastOffset)) }
        } else if open[h.producerId] == nil {
            open[h.producerId] = h.baseOffset
        }
    }

    func lastStableOffset(logEnd: Int64) -> Int64 { open.values.min() ?? logEnd }

    /// Aborted transactions overlapping [from, to).
    func aborted(from: Int64, to: Int64) -> [Aborted] {
        aborted.filter { $0.lastOffset >= from && $0.firstOffset < to }
    }

    mutating func dropBefore(_ offset: Int64) {
        aborted.removeAll { $0.lastOffset < offset }
    }

    /// The control record type of a control batch's bytes (whole batch, any offsets).
    static func markerType(_ batch: ByteBuffer) -> Int16? { marker(batch)?.type }

    /// A transaction marker's control record: its type (key: int16 version, int16 type) and the
    /// epoch of the coordinator that wrote it (value: int16 version, int32 coordinator epoch).
    static func marker(_ batch: ByteBuffer) -> (type: Int16, coordinatorEpoch: Int32)? {
        var bytes = batch
        guard let decoded = try? RecordBatch.read(from: &bytes), let record = decoded.records.first, var key = record.key,
            let _ = key.readInteger(as: Int16.self), let type = key.readInteger(as: Int16.self)
        else { return nil }
        var value = record.value ?? ByteBuffer()
        guard let _ = value.readInteger(as: Int16.self), let coordinatorEpoch = value.readInteger(as: Int32.self) else {
            return (type, -1)
        }
        return (type, coordinatorEpoch)
    }
}
