/// Dynamic broker configs in etcd: one key per entity (`broker-configs/default` for the
/// cluster-wide defaults, `broker-configs/<id>` for one broker), written by whichever broker
/// received the AlterConfigs — a write any broker may make, as Kafka brokers wrote them to
/// ZooKeeper — and applied by every broker when the change reaches its image.
extension ClusterMember {
    /// Replaces `entity`'s settings with `change(current)`, by compare-and-swap on the key's
    /// revision in the image (retried from the newer image after a lost race). An empty result
    /// deletes the key.
    public func updateBrokerConfigs(_ entity: String, _ change: @Sendable ([String: String]) throws -> [String: String]) async throws {
        for _ in 0..<5 {
            let snapshot = image
            let key = snapshot.brokerConfigKey(entity)
            let compare: EtcdCompare = snapshot.brokerConfigRevisions[entity].map { .modRevision(of: key, is: $0) } ?? .absent(key)
            let next = try change(snapshot.brokerConfigs[entity] ?? [:])
            let operation: EtcdOperation = next.isEmpty ? .delete(key) : .put(key, try Self.encode(next))
            if try await brokerTransaction(if: [compare], then: [operation]) {
                logger.info("altered broker configs", metadata: ["entity": "\(entity.isEmpty ? "<default>" : entity)", "configs": "\(next)"])
                return
            }
        }
        throw ClusterError.conflict(entity.isEmpty ? "the cluster's default broker configs" : "broker \(entity)'s configs")
    }
}
