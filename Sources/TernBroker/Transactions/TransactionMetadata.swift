/// What the transaction coordinator knows about one transactional id; persisted as JSON in the
/// compacted internal topic `__transaction_state` (key = transactional id) on every transition.
struct TransactionMetadata: Codable, Equatable {
    enum State: String, Codable {
        case empty = "Empty"
        case ongoing = "Ongoing"
        case prepareCommit = "PrepareCommit"
        case prepareAbort = "PrepareAbort"
        case completeCommit = "CompleteCommit"
        case completeAbort = "CompleteAbort"
    }

    struct Partition: Codable, Hashable {
        var topic: String
        var partition: Int32
    }

    var transactionalId: String
    var producerId: Int64
    var producerEpoch: Int16
    var timeoutMs: Int32
    var state: State = .empty
    /// Every partition the transaction wrote to — `__consumer_offsets` ones too (AddOffsetsToTxn):
    /// each gets the marker. (State written by older versions may also hold `pendingOffsets`, now
    /// ignored: TxnOffsetCommit's offsets are in `__consumer_offsets` itself.)
    var partitions: Set<Partition> = []
    var startedMs: Int64 = -1
    /// When the coordinator last changed this id (nil in metadata written before it was kept:
    /// counted from when the broker loaded it).
    var lastUpdateMs: Int64?

    /// No transaction in progress: the id may expire (`transactional.id.expiration.ms`).
    var isIdle: Bool { state == .empty || state == .completeCommit || state == .completeAbort }
}
