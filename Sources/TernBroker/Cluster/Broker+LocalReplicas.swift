import TernCluster

/// Cluster mode: local storage follows the metadata image. Runs on the `tern-cluster-apply`
/// thread (and once in `Broker.init`, before the broker serves), never on an event loop.
extension Broker {
    /// Makes the local topics match `image`: a log for every partition with a replica here, none
    /// for partitions or topics the cluster no longer places here (including topics deleted while
    /// this broker was away, recognised by their id). The internal topics keep their data and are
    /// always open here: every broker runs the coordinators over its local copy.
    func applyToLocalReplicas(_ image: MetadataImage) {
        applyDynamicConfigs(DynamicBrokerConfigs(image.brokerConfigs))
        let me = config.nodeId
        // Replicas moved away (or deleted) stop being fetched and led before their logs go.
        replicas?.release(image)
        for record in image.topics.values.sorted(by: { $0.name < $1.name }) {
            let isInternal = Self.internalTopics.contains(record.name)
            let hosted = record.partitions.indices.filter { record.partitions[$0].replicas.contains(me) }.map(Int32.init)
            do {
                if let local = topics.topic(record.name), local.metadata.hosted == nil, local.metadata.id != record.topicId, !isInternal {
                    // Data from before this directory joined the cluster, under a name the cluster
                    // uses for another topic: never deleted silently (`registerLocalTopics` refuses
                    // to start over it).
                    continue
                }
                if isInternal, let local = topics.topic(record.name), local.metadata.partitions != Int32(record.partitions.count) {
                    // The coordinators hash over this count and hold these logs; adopting another
                    // count would delete partitions of group and transaction state. A start with
                    // a mismatch is refused (`InternalTopicMismatch`); live, it is only reported.
                    logger.error("the cluster's internal topic has another partition count than this broker's: not applied", metadata: [
                        "topic": "\(record.name)", "cluster": "\(record.partitions.count)", "local": "\(local.metadata.partitions)",
                    ])
                    continue
                }
                if hosted.isEmpty && !isInternal {
                    if topics.topic(record.name) != nil { try topics.deleteTopic(record.name) }
                    continue
                }
                let meta = TopicMetadata(
                    name: record.name, id: record.topicId, partitions: Int32(record.partitions.count), configs: record.configs,
                    hosted: isInternal ? nil : hosted)
                try topics.adopt(meta, keepingData: isInternal)
            } catch {
                logger.error("could not apply the cluster's metadata to a local topic", metadata: ["topic": "\(record.name)", "error": "\(error)"])
            }
        }
        replicas?.apply(image)
        handOverGroupCoordination(image)
        handOverTransactionCoordination(image)
        for local in topics.allTopics where image.topics[local.metadata.name] == nil && !Self.internalTopics.contains(local.metadata.name) {
            // Topics from before this data directory joined a cluster (hosted == nil) are
            // registered at start (`registerLocalTopics`); one still missing is being registered.
            guard local.metadata.hosted != nil else { continue }
            logger.info("deleting a local topic the cluster no longer has", metadata: ["topic": "\(local.metadata.name)"])
            do { try topics.deleteTopic(local.metadata.name) } catch {
                logger.error("could not delete a local topic", metadata: ["topic": "\(local.metadata.name)", "error": "\(error)"])
            }
        }
    }
}

extension Broker {
    /// The group coordinator follows the leadership of `__consumer_offsets`' partitions: it loads
    /// a partition's groups when its leadership moves here — or comes back in a later leader
    /// epoch, which a paused broker may not have seen go — and drops them when it moves away
    /// (`GroupCoordinator+Handover`). A partition changing hands is refused (NOT_COORDINATOR)
    /// until its groups are loaded: served earlier, its offsets would read as never committed.
    func handOverGroupCoordination(_ image: MetadataImage) {
        let me = config.nodeId
        var led: [Int: Int32] = [:]
        for (i, p) in (image.topics[Self.offsetsTopic]?.partitions ?? []).enumerated() where p.leader == me && image.brokers[me] != nil {
            led[i] = p.leaderEpoch
        }
        let (gained, lost) = groupCoordination.withLockedValue { current in
            let gained = Set(led.keys.filter { current[$0] != led[$0] })
            let lost = Set(current.keys.filter { led[$0] == nil })
            for p in gained.union(lost) { current[p] = nil }
            return (gained, lost)
        }
        do {
            if !lost.isEmpty { try groups.resign(lost).wait() }
            if !gained.isEmpty {
                try groups.takeOver(gained).wait()
                groupCoordination.withLockedValue { current in
                    for p in gained { current[p] = led[p] }
                }
            }
        } catch {
            logger.error("group coordinator hand-over failed", metadata: ["error": "\(error)"])
        }
    }

    /// The transaction coordinator follows the leadership of `__transaction_state`'s partitions:
    /// it reloads a partition's ids (and finishes endings its previous coordinator left
    /// half-done) when the leadership moves here — or comes back in a later leader epoch: another
    /// coordinator may have served the ids in between, unseen by a paused broker — and drops
    /// them when it moves away.
    func handOverTransactionCoordination(_ image: MetadataImage) {
        let me = config.nodeId
        var led: [Int: Int32] = [:]
        for (i, p) in (image.topics[TransactionCoordinator.stateTopic]?.partitions ?? []).enumerated()
        where p.leader == me && image.brokers[me] != nil {
            led[i] = p.leaderEpoch
        }
        let (gained, lost) = transactionCoordination.withLockedValue { current in
            defer { current = led }
            return (Set(led.keys.filter { current[$0] != led[$0] }), Set(current.keys.filter { led[$0] == nil }))
        }
        if !lost.isEmpty { transactions.resign(lost) }
        if !gained.isEmpty {
            do { try transactions.takeOver(gained) } catch {
                logger.error("transaction coordinator hand-over failed", metadata: ["error": "\(error)"])
            }
        }
    }

    /// At start in cluster mode: topics this data directory had before it joined a cluster (made
    /// by a single broker) become cluster topics with their replicas here, so turning a single
    /// broker into a cluster keeps its data. A name the cluster already uses for another topic is
    /// an error the operator must resolve: the broker refuses to start rather than delete either.
    public func registerLocalTopics() async throws {
        guard let cluster else { return }
        let me = config.nodeId
        for local in topics.allTopics where local.metadata.hosted == nil && !Self.internalTopics.contains(local.metadata.name) {
            let name = local.metadata.name
            if let existing = cluster.image.topics[name] {
                guard existing.topicId == local.metadata.id else { throw LocalTopicConflict(topic: name, logDir: config.logDir) }
                continue
            }
            let record = TopicRecord(
                name: name, topicId: local.metadata.id, configs: local.metadata.configs,
                partitions: (0..<local.metadata.partitions).map { _ in PartitionState(replicas: [me], isr: [me], leader: me) })
            do {
                try await cluster.member.createTopic(record, byController: false)
                logger.info("registered a local topic with the cluster", metadata: ["topic": "\(name)"])
            } catch ClusterError.topicExists {
                throw LocalTopicConflict(topic: name, logDir: config.logDir)
            }
        }
    }
}

public struct LocalTopicConflict: Error, CustomStringConvertible {
    let topic: String
    let logDir: String
    public var description: String {
        "\(logDir) holds a topic '\(topic)' from before it joined the cluster, and the cluster has another topic of that name; "
            + "move the directory \(logDir)/\(topic)-* away (or delete the cluster's topic) and start again"
    }
}
