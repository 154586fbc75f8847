/// How the controller changes partition leadership when brokers come, go or shut down — Kafka's
/// KRaft rules (`PartitionChangeBuilder`), as a pure function of the metadata image so every rule
/// can be tested without etcd:
///
/// - A replica may lead only if its broker is registered and not in controlled shutdown
///   ("eligible").
/// - A broker that is no longer eligible leaves the ISR — except the last member, which stays so
///   that the partition waits for it (clean elections only) instead of electing a replica that may
///   be missing acknowledged records.
/// - A leader that is not eligible is replaced by the first replica (in assignment order) that is
///   in the ISR and eligible; if there is none the partition has no leader (-1) until one returns.
/// - With preferred-leader balancing on, a partition whose first replica is eligible and in the ISR
///   moves its leadership back there.
/// - Every change bumps the partition epoch; a change of leader also bumps the leader epoch.
///
/// A replica that is not in the ISR never becomes leader here and never rejoins the ISR: catching
/// up is the follower's job (replication), which then asks for the ISR to grow.
public enum LeaderElection {
    public static let noLeader: Int32 = -1

    /// The new state of one partition, or nil when nothing changes.
    public static func change(_ p: PartitionState, eligible: (Int32) -> Bool, preferred: Bool) -> PartitionState? {
        var isr = p.isr.filter(eligible)
        if isr.isEmpty && !p.isr.isEmpty {
            // Keep one member to wait for: the leader it had, else the first it lists.
            isr = [p.isr.contains(p.leader) ? p.leader : p.isr[0]]
        }
        let inSync = Set(isr)
        var leader = p.leader
        if leader == noLeader || !eligible(leader) || !inSync.contains(leader) {
            leader = p.replicas.first { inSync.contains($0) && eligible($0) } ?? noLeader
        } else if preferred, let first = p.replicas.first, first != leader, inSync.contains(first), eligible(first) {
            leader = first
        }
        // The ISR keeps assignment order so that unchanged sets compare equal.
        isr = p.replicas.filter(inSync.contains) + isr.filter { !p.replicas.contains($0) }
        guard leader != p.leader || isr != p.isr else { return nil }
        var next = p
        next.isr = isr
        if leader != p.leader { next.leaderEpoch += 1 }
        next.leader = leader
        next.partitionEpoch += 1
        return next
    }

    /// What an ElectLeaders request did to one partition.
    public enum Outcome: Sendable, Equatable {
        case elected(PartitionState)
        /// Preferred: the preferred replica already leads. Unclean: the partition has a leader.
        case notNeeded
        /// Preferred: the first replica is not alive or not in sync.
        case preferredNotAvailable
        /// Unclean: no replica is alive.
        case eligibleNotAvailable
    }

    /// ElectLeaders (KIP-460). Preferred: make the first replica leader if it is eligible and in
    /// sync. Unclean: only for a partition without a leader — elect the first eligible replica even
    /// if out of sync (its ISR becomes just itself), accepting the loss of what it lacks.
    public static func elect(_ p: PartitionState, unclean: Bool, eligible: (Int32) -> Bool) -> Outcome {
        var next = p
        if unclean {
            if p.leader != noLeader && eligible(p.leader) { return .notNeeded }
            guard let chosen = p.replicas.first(where: eligible) else { return .eligibleNotAvailable }
            next.leader = chosen
            next.isr = [chosen]
        } else {
            guard let preferred = p.replicas.first else { return .preferredNotAvailable }
            if p.leader == preferred { return .notNeeded }
            guard eligible(preferred), p.isr.contains(preferred) else { return .preferredNotAvailable }
            next.leader = preferred
        }
        next.leaderEpoch += 1
        next.partitionEpoch += 1
        return .elected(next)
    }

    /// Every topic with at least one partition to change, with the changes applied: reassignments
    /// whose new replicas are all in sync complete (`PartitionReassignment.complete`), then the
    /// leadership rules above run on the result.
    public static func changes(in image: MetadataImage, preferred: Bool) -> [TopicRecord] {
        let eligible = { (id: Int32) in image.brokers[id].map { $0.shuttingDown != true } ?? false }
        return image.topics.values.sorted { $0.name < $1.name }.compactMap { topic in
            var record = topic
            for (i, p) in topic.partitions.enumerated() {
                var next = PartitionReassignment.complete(p, eligible: eligible) ?? p
                next = change(next, eligible: eligible, preferred: preferred) ?? next
                record.partitions[i] = next
            }
            return record == topic ? nil : record
        }
    }
}
