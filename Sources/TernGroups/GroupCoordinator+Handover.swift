import NIOCore
import TernLog
import TernProtocol

/// Coordinator hand-over in a cluster: the broker leading `__consumer_offsets` coordinates the
/// groups. When that leadership moves here the coordinator rebuilds its state from the log (the
/// committed offsets; group membership starts empty and members rejoin, as after a Kafka
/// coordinator move); when it moves away, everything in memory is dropped — pending joins and
/// syncs are answered NOT_COORDINATOR so their clients look the coordinator up again — and no
/// timer of a group it no longer owns can fire.
extension GroupCoordinator {
    /// Loads the committed offsets from the log. Runs on the coordinator's loop.
    public func takeOver() -> EventLoopFuture<Void> {
        loop.submit { [self] in
            dropEverything()
            var fresh = OffsetStore()
            try fresh.load(from: offsetsLog, logger: logger)
            store = fresh
            logger.info("now coordinating groups", metadata: ["groupsWithOffsets": "\(store.offsets.count)"])
        }
    }

    /// Forgets every group; their members are told NOT_COORDINATOR.
    public func resign() -> EventLoopFuture<Void> {
        loop.submit { [self] in
            dropEverything()
            store = OffsetStore()
            logger.info("no longer coordinating groups")
        }
    }

    private func dropEverything() {
        loop.preconditionInEventLoop()
        for g in groups.values {
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
        for g in modernGroups.values {
            for m in g.members.values { m.sessionTimer?.cancel() }
        }
        groups = [:]
        modernGroups = [:]
    }
}
