/// Moving a partition's replicas to other brokers (KIP-455) — Kafka's KRaft rules
/// (`PartitionReassignmentReplicas`, `PartitionReassignmentRevert`) as pure functions of one
/// partition's state, so each rule is tested without etcd:
///
/// 1. Start: the replica list becomes the target followed by the replicas being removed; the
///    target's newcomers are `adding`, the replicas it drops are `removing`. Leadership and the
///    ISR are untouched. The newcomers start fetching as followers.
/// 2. The leader grows the ISR as each newcomer catches up (AlterPartition, as for any follower).
/// 3. Complete, once every target replica is in the ISR: the removed replicas leave the replica
///    list and the ISR; a removed leader hands over to the first target replica that is alive
///    (a new leader epoch). Removed brokers then stop their replicas and delete their copies.
///
/// Nothing is dropped before the target replicas hold every acknowledged record, so a
/// reassignment never lowers a partition's redundancy below its current replication.
public enum PartitionReassignment {
    public enum Refusal: Error, Sendable, Equatable {
        /// INVALID_REPLICA_ASSIGNMENT, with Kafka's explanation.
        case invalidAssignment(String)
        /// NO_REASSIGNMENT_IN_PROGRESS: a cancellation of a partition that is not moving.
        case noReassignmentInProgress
        case unknownTopicOrPartition
    }

    /// The state that starts moving `p` to `target`, completed at once when the ISR already
    /// holds every target replica (a reordering, or a shrink). A partition already moving is
    /// re-targeted from its current replica list, as Kafka does. Nil when nothing changes.
    public static func start(
        _ p: PartitionState, target: [Int32], isRegistered: (Int32) -> Bool, eligible: (Int32) -> Bool
    ) throws(Refusal) -> PartitionState? {
        guard !target.isEmpty else { throw .invalidAssignment("The manual partition assignment includes an empty replica list.") }
        guard Set(target).count == target.count else {
            throw .invalidAssignment("The manual partition assignment \(target) contains duplicate broker ids.")
        }
        if let unknown = target.first(where: { !isRegistered($0) }) {
            throw .invalidAssignment("The manual partition assignment includes broker \(unknown), but no such broker is registered.")
        }
        let removing = p.replicas.filter { !target.contains($0) }
        let adding = target.filter { !p.replicas.contains($0) }
        var next = p
        next.replicas = target + removing
        next.isr = next.replicas.filter(p.isr.contains)
        next.addingReplicas = adding.isEmpty ? nil : adding
        next.removingReplicas = removing.isEmpty ? nil : removing
        guard next != p else { return nil }
        if let done = complete(next, eligible: eligible) { return done }
        next.partitionEpoch += 1
        return next
    }

    /// The state that finishes a reassignment whose target replicas are all in sync, or nil
    /// (not reassigning; still catching up; or the leader is being removed and no target replica
    /// is alive to take over).
    public static func complete(_ p: PartitionState, eligible: (Int32) -> Bool) -> PartitionState? {
        guard p.isReassigning else { return nil }
        let removing = Set(p.removing)
        let replicas = p.replicas.filter { !removing.contains($0) }
        let isr = p.isr.filter { !removing.contains($0) }
        guard !replicas.isEmpty, replicas.allSatisfy(isr.contains) else { return nil }
        var next = p
        next.replicas = replicas
        next.isr = replicas
        next.addingReplicas = nil
        next.removingReplicas = nil
        if !replicas.contains(p.leader) {
            guard let leader = replicas.first(where: eligible) else { return nil }
            next.leader = leader
            next.leaderEpoch += 1
        }
        next.partitionEpoch += 1
        return next
    }

    /// Cancels a reassignment: back to the original replicas (the adding ones leave, the
    /// removing ones stay). Reverting is refused when no original replica is in sync, unless the
    /// topic allows unclean elections — its first original replica would lead without every
    /// acknowledged record.
    public static func cancel(_ p: PartitionState, allowUnclean: Bool, eligible: (Int32) -> Bool) throws(Refusal) -> PartitionState {
        guard p.isReassigning else { throw .noReassignmentInProgress }
        let adding = Set(p.adding)
        var next = p
        next.replicas = p.replicas.filter { !adding.contains($0) }
        next.isr = p.isr.filter { !adding.contains($0) }
        next.addingReplicas = nil
        next.removingReplicas = nil
        if next.isr.isEmpty {
            guard allowUnclean, let first = next.replicas.first else {
                throw .invalidAssignment("Unable to revert the partition assignment because it would require an unclean leader election.")
            }
            next.isr = [first]
        }
        if !next.isr.contains(p.leader) {
            next.leader = next.replicas.first { next.isr.contains($0) && eligible($0) } ?? LeaderElection.noLeader
            next.leaderEpoch += 1
        }
        next.partitionEpoch += 1
        return next
    }
}
