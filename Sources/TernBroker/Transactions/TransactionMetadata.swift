import TernGroups

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

    struct PendingOffset: Codable, Equatable {
        var topic: String
        var partition: Int32
        var offset: Int64
        var leaderEpoch: Int32
        var metadata: String?
    }

    var transactionalId: String
    var producerId: Int64
    var producerEpoch: Int16
    var timeoutMs: Int32
    var state: State = .empty
    var partitions: Set<Partition> = []
    var pendingOffsets: [String: [PendingOffset]] = [:]
    var startedMs: Int64 = -1
    /// When the coordinator last changed this id (nil in metadata written before it was kept:
    /// counted from when the broker loaded it).
    var lastUpdateMs: Int64?

    /// No transaction in progress: the id may expire (`transactional.id.expiration.ms`).
    var isIdle: Bool { state == .empty || state == .completeCommit || state == .completeAbort }
}
