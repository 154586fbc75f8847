import Logging

/// Kafka's AlterPartition, sent by a partition's leader rather than the controller: the leader
/// shrinks the ISR when a follower falls behind and grows it when one catches up. Any broker may
/// write it, but only as the leader of the epoch it names and only over the partition state it
/// saw: the compare-and-set on the topic's record plus the leader and partition epochs mean a
/// stale leader (one the controller has replaced) can neither widen nor shrink the ISR.
extension ClusterMember {
    public enum AlterPartitionOutcome: Sendable, Equatable {
        case altered(PartitionState)
        /// The partition moved on (new leader epoch, or another change of its state): the leader
        /// acts on the newer state when it reaches its image.
        case stale
        /// The request names replicas that are not assigned or not eligible (KIP-841).
        case invalid(String)
    }

    public func alterPartition(topic: String, partition: Int32, leaderEpoch: Int32, partitionEpoch: Int32, isr: [Int32]) async throws
        -> AlterPartitionOutcome
    {
        for _ in 0..<3 {
            let snapshot = image
            guard let record = snapshot.topics[topic], let revision = snapshot.topicRevisions[topic],
                partition >= 0, Int(partition) < record.partitions.count
            else { return .stale }
            let current = record.partitions[Int(partition)]
            guard current.leader == registration.nodeId, current.leaderEpoch == leaderEpoch, current.partitionEpoch == partitionEpoch else {
                return .stale
            }
            guard isr.contains(registration.nodeId), isr.allSatisfy(current.replicas.contains) else {
                return .invalid("the ISR \(isr) must hold the leader and only assigned replicas \(current.replicas)")
            }
            let joining = isr.filter { !current.isr.contains($0) }
            guard joining.allSatisfy({ snapshot.brokers[$0].map { $0.shuttingDown != true } ?? false }) else {
                return .invalid("replicas \(joining) joining the ISR are not live brokers")
            }
            var next = current
            next.isr = current.replicas.filter(isr.contains)
            next.partitionEpoch += 1
            var updated = record
            updated.partitions[Int(partition)] = next
            let key = snapshot.topicKey(topic)
            if try await brokerTransaction(if: [.modRevision(of: key, is: revision)], then: [.put(key, try Self.encode(updated))]) {
                logger.info("ISR changed", metadata: ["topic": "\(topic)", "partition": "\(partition)", "isr": "\(next.isr)", "was": "\(current.isr)"])
                return .altered(next)
            }
            // Another partition of the topic changed meanwhile: compute again from the newer record.
        }
        return .stale
    }
}
