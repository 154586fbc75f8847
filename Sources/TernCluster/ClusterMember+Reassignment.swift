/// AlterPartitionReassignments on the controller: starts, re-targets or cancels the movement of
/// partitions' replicas (`PartitionReassignment`). Completion is the controller's ordinary pass
/// (`LeaderElection.changes`), which runs on every metadata change — including the ISR growth
/// that the new replicas' catching up causes.
extension ClusterMember {
    /// One partition's requested change: `target` nil cancels.
    public struct ReassignmentRequest: Sendable {
        public let partition: Int32
        public let target: [Int32]?

        public init(partition: Int32, target: [Int32]?) {
            self.partition = partition
            self.target = target
        }
    }

    /// Each topic's changes are one fenced compare-and-swap (recomputed if another change of the
    /// topic won a race). Returns every partition's outcome.
    public func alterPartitionReassignments(_ requests: [String: [ReassignmentRequest]]) async throws
        -> [String: [Int32: Result<Void, PartitionReassignment.Refusal>]]
    {
        guard isController else { throw ClusterError.notController }
        var outcomes: [String: [Int32: Result<Void, PartitionReassignment.Refusal>]] = [:]
        for (name, changes) in requests.sorted(by: { $0.key < $1.key }) {
            outcomes[name] = try await alterReassignments(of: name, changes)
        }
        return outcomes
    }

    private func alterReassignments(of name: String, _ changes: [ReassignmentRequest]) async throws -> [Int32: Result<Void, PartitionReassignment.Refusal>] {
        for _ in 0..<5 {
            let snapshot = image
            guard let record = snapshot.topics[name], let revision = snapshot.topicRevisions[name] else {
                return Dictionary(changes.map { ($0.partition, .failure(.unknownTopicOrPartition)) }, uniquingKeysWith: { $1 })
            }
            let registered = { (id: Int32) in snapshot.brokers[id] != nil }
            let eligible = { (id: Int32) in snapshot.brokers[id].map { $0.shuttingDown != true } ?? false }
            let allowUnclean = record.configs["unclean.leader.election.enable"] == "true"
            var next = record
            var results: [Int32: Result<Void, PartitionReassignment.Refusal>] = [:]
            for change in changes {
                guard change.partition >= 0, Int(change.partition) < record.partitions.count else {
                    results[change.partition] = .failure(.unknownTopicOrPartition)
                    continue
                }
                let i = Int(change.partition)
                do throws(PartitionReassignment.Refusal) {
                    if let target = change.target {
                        if let moved = try PartitionReassignment.start(next.partitions[i], target: target, isRegistered: registered, eligible: eligible) {
                            next.partitions[i] = moved
                        }
                    } else {
                        next.partitions[i] = try PartitionReassignment.cancel(next.partitions[i], allowUnclean: allowUnclean, eligible: eligible)
                    }
                    results[change.partition] = .success(())
                } catch {
                    results[change.partition] = .failure(error)
                }
            }
            guard next != record else { return results }
            let key = snapshot.topicKey(name)
            if try await controllerTransaction(if: [.modRevision(of: key, is: revision)], then: [.put(key, try Self.encode(next))]) {
                logger.info("partition reassignments changed", metadata: [
                    "topic": "\(name)", "replicas": "\(next.partitions.map(\.replicas))", "adding": "\(next.partitions.map(\.adding))",
                    "removing": "\(next.partitions.map(\.removing))",
                ])
                return results
            }
            guard isController else { throw ClusterError.notController }
        }
        throw ClusterError.conflict(name)
    }
}
