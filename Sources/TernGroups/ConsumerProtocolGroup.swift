import NIOCore

/// A group using the KIP-848 consumer protocol (ConsumerGroupHeartbeat): the broker assigns
/// partitions and members converge on the target assignment through their heartbeats. Confined to
/// the coordinator's event loop.
///
/// Invariant: a partition is handed to a member only when no other member owns it (by its last
/// report) or still holds it in the assignment last sent to it, so two members never own the same
/// partition at once. Confined to the coordinator's event loop, with its members (hence the
/// unchecked Sendable: timers scheduled on that loop capture them).
final class ConsumerProtocolGroup: @unchecked Sendable {
    final class Member: @unchecked Sendable {
        let memberId: String
        var instanceId: String?
        var epoch: Int32 = 0
        var previousEpoch: Int32 = -1
        var subscribedTopics: [String] = []
        var subscribedRegex: String?
        var assignor: String?
        var rebalanceTimeoutMs: Int32 = 300_000
        /// What the member last reported owning.
        var owned: Set<TopicPartitionKey> = []
        /// What was last sent to it.
        var sent: Set<TopicPartitionKey> = []
        var sentOnce = false
        var sessionTimer: Scheduled<Void>?
        let clientId: String
        let clientHost: String
        /// Set for a member speaking the classic protocol (JoinGroup/SyncGroup/Heartbeat) inside
        /// this group — after an online upgrade or a classic join (`GroupCoordinator+MixedGroups`).
        var classic: ClassicProtocol?

        struct ClassicProtocol {
            var sessionTimeoutMs: Int32
            var protocols: [(name: String, metadata: ByteBuffer)]
            /// It still owns partitions its target no longer has and must revoke them, then rejoin.
            var revoking = false
        }

        init(memberId: String, clientId: String, clientHost: String) {
            self.memberId = memberId
            self.clientId = clientId
            self.clientHost = clientHost
        }
    }

    let groupId: String
    var groupEpoch: Int32 = 0
    var members: [String: Member] = [:]
    /// Target assignment per member, for `groupEpoch`.
    var target: [String: Set<TopicPartitionKey>] = [:]

    init(groupId: String) { self.groupId = groupId }

    var state: String { members.isEmpty ? "Empty" : (isReconciled ? "Stable" : "Reconciling") }

    var isReconciled: Bool { members.values.allSatisfy { $0.sent == target[$0.memberId] ?? [] && $0.owned == $0.sent } }

    /// Partitions another member may still be using.
    func busyPartitions(excluding memberId: String) -> Set<TopicPartitionKey> {
        var busy: Set<TopicPartitionKey> = []
        for m in members.values where m.memberId != memberId {
            busy.formUnion(m.owned)
            busy.formUnion(m.sent)
        }
        return busy
    }

    /// Recomputes the target assignment: `range` gives each subscribed member a contiguous run of
    /// each topic's partitions; `uniform` (the default) deals all subscribed partitions round-robin.
    func computeTarget(partitionCount: (String) -> Int32?) {
        var next: [String: Set<TopicPartitionKey>] = [:]
        let ids = members.keys.sorted()
        for id in ids { next[id] = [] }
        let topics = Set(members.values.flatMap(\.subscribedTopics)).sorted()
        let useRange = members.values.contains { $0.assignor == "range" }
        var dealer = 0
        for topic in topics {
            guard let count = partitionCount(topic), count > 0 else { continue }
            let subscribers = ids.filter { members[$0]!.subscribedTopics.contains(topic) }
            guard !subscribers.isEmpty else { continue }
            if useRange {
                let per = Int(count) / subscribers.count, extra = Int(count) % subscribers.count
                var p: Int32 = 0
                for (i, id) in subscribers.enumerated() {
                    for _ in 0..<(per + (i < extra ? 1 : 0)) {
                        next[id]!.insert(TopicPartitionKey(topic: topic, partition: p))
                        p += 1
                    }
                }
            } else {
                for p in 0..<count {
                    next[subscribers[dealer % subscribers.count]]!.insert(TopicPartitionKey(topic: topic, partition: p))
                    dealer += 1
                }
            }
        }
        target = next
    }
}
