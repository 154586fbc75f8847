import NIOCore
import TernLog
import TernProtocol

/// Coordinator hand-over in a cluster: the leader of a `__consumer_offsets` partition coordinates
/// the groups hashing to it. When a partition's leadership moves here the coordinator rebuilds
/// those groups' state from the partition's log (the committed offsets; membership starts empty
/// and members rejoin, as after a Kafka coordinator move); when it moves away, their state is
/// dropped — pending joins and syncs are answered NOT_COORDINATOR so the clients look the
/// coordinator up again — and no timer of a group it no longer owns can fire.
extension GroupCoordinator {
    /// Loads the committed offsets of the groups in `partitions` from their logs.
    public func takeOver(_ partitions: Set<Int>) -> EventLoopFuture<Void> {
        loop.submit { [self] in
            drop(partitions)
            for p in partitions.sorted() {
                try store.load(from: offsetsLogs[p], logger: logger)
                loadedAtMs[p] = PartitionLog.nowMs()
            }
            logger.info("now coordinating groups", metadata: ["partitions": "\(partitions.sorted())", "groupsWithOffsets": "\(store.offsets.count)"])
        }
    }

    /// Forgets the groups in `partitions`; their members are told NOT_COORDINATOR.
    public func resign(_ partitions: Set<Int>) -> EventLoopFuture<Void> {
        loop.submit { [self] in
            drop(partitions)
            logger.info("no longer coordinating groups", metadata: ["partitions": "\(partitions.sorted())"])
        }
    }

    private func drop(_ partitions: Set<Int>) {
        loop.preconditionInEventLoop()
        let leaving = { (id: String) in partitions.contains(self.partition(of: id)) }
        store.remove(where: leaving)
        for p in partitions { loadedAtMs[p] = nil }
        for g in groups.values where leaving(g.groupId) {
            g.rebalanceTimer?.cancel()
            g.pendingMembers.values.forEach { $0.cancel() }
            for m in g.members.values {
                m.sessionTimer?.cancel()
                m.joinPromise?.succeed(JoinResult(error: .notCoordinator, memberId: m.memberId))
                m.joinPromise = nil
                m.syncPromise?.succeed(SyncResult(error: .notCoordinator))
                m.syncPromise = nil
            }
        }
        for (id, g) in modernGroups where leaving(id) {
            for m in g.members.values { m.sessionTimer?.cancel() }
        }
        groups = groups.filter { !leaving($0.key) }
        modernGroups = modernGroups.filter { !leaving($0.key) }
    }
}
