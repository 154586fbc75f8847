import NIOCore
import TernLog
import TernProtocol

/// Kafka's bound on what clients leave behind in the coordinator (`cleanupGroupMetadata`): every
/// `offsets.retention.check.interval.ms`, committed offsets past `offsets.retention.minutes` are
/// deleted (tombstones in `__consumer_offsets`), and a group with no members and no offsets left
/// is deleted too — its generation record tombstoned and its object dropped. Members themselves
/// are bounded by their session timeouts and `group.max.size` / `group.consumer.max.size`.
///
/// When an offset has expired, by Kafka's `offsetExpirationCondition`:
/// - a classic group with a protocol that is Empty: retention counted from the moment it became
///   Empty. Tern does not store members, so a group loaded from the log (coordinator start or
///   move) counts from the load — a restart can only keep offsets longer, never drop them early;
/// - a classic "consumer" group that is Stable, and a KIP-848 group: from each offset's commit,
///   only for topics no member subscribes to;
/// - offsets committed outside any group (standalone consumers, admin clients): from each commit.
/// A group with a transaction's offsets still pending is left alone until its marker.
extension GroupCoordinator {
    /// Records per tombstone batch: far below any message size limit, and one cycle over many
    /// groups becomes several appends rather than one huge one.
    static let tombstonesPerBatch = 500

    func scheduleExpiration() {
        let interval = TimeAmount.milliseconds(config.offsetsRetentionCheckIntervalMs)
        loop.scheduleRepeatedAsyncTask(initialDelay: interval, delay: interval) { [self] _ in
            expireOffsetsAndGroups().map { _ in }
        }
    }

    /// One expiry cycle; completes with the number of offsets and groups deleted (written).
    @discardableResult
    func expireOffsetsAndGroups(now: Int64 = PartitionLog.nowMs()) -> EventLoopFuture<(offsets: Int, groups: Int)> {
        loop.preconditionInEventLoop()
        var ids = Set(store.offsets.keys)
        ids.formUnion(groups.keys)
        ids.formUnion(modernGroups.keys)
        let pendingTransactions = Set(store.pendingTransactional.values.flatMap(\.keys))
        // Per partition: offset tombstones, then the groups whose generation record goes too.
        var offsetTombstones: [Int: [(String, TopicPartitionKey)]] = [:]
        var groupTombstones: [Int: [String]] = [:]
        var deletedInMemory = 0
        for id in ids.sorted() where !pendingTransactions.contains(id) {
            let committed = store.offsets[id] ?? [:]
            let rule = expiryRule(group: id, now: now)
            let expired = committed.filter { tp, c in rule(tp, c) }.keys
            let partition = partition(of: id)
            offsetTombstones[partition, default: []].append(contentsOf: expired.map { (id, $0) })
            guard expired.count == committed.count, isIdle(id) else { continue }
            // Known only from its generation record: members may still be on their way back.
            if groups[id] == nil && modernGroups[id] == nil && store.generations[id] != nil
                && now &- (loadedAtMs[partition] ?? now) < config.offsetsRetentionMs
            {
                continue
            }
            // Nothing left and nobody in it: the group goes. Its objects go now (a member joining
            // meanwhile starts a fresh one); the generation record once the tombstones are written.
            groups.removeValue(forKey: id)?.rebalanceTimer?.cancel()
            modernGroups[id] = nil
            deletedInMemory += 1
            if store.generations[id] != nil { groupTombstones[partition, default: []].append(id) }
        }
        var writes: [EventLoopFuture<(offsets: Int, groups: Int)>] = []
        for partition in Set(offsetTombstones.keys).union(groupTombstones.keys).sorted() {
            writes += writeTombstones(partition: partition, offsets: offsetTombstones[partition] ?? [], groups: groupTombstones[partition] ?? [], now: now)
        }
        let deleted = deletedInMemory
        return EventLoopFuture.whenAllSucceed(writes, on: loop).map { [self] results in
            let offsets = results.reduce(0) { $0 + $1.offsets }
            if offsets > 0 || deleted > 0 {
                logger.info("expired committed offsets and empty groups", metadata: ["offsets": "\(offsets)", "groups": "\(deleted)"])
            }
            return (offsets, deleted)
        }
    }

    private func isIdle(_ id: String) -> Bool {
        if let g = groups[id], !g.isIdle { return false }
        if let g = modernGroups[id], !g.members.isEmpty { return false }
        return true
    }

    /// The group's rule for when one of its offsets has expired, decided once per group (a
    /// stable group's subscriptions are parsed from its members' metadata).
    private func expiryRule(group id: String, now: Int64) -> (TopicPartitionKey, CommittedOffset) -> Bool {
        let retention = config.offsetsRetentionMs
        let since = { (base: Int64) in now &- base >= retention }
        let never = { (_: TopicPartitionKey, _: CommittedOffset) in false }
        if let modern = modernGroups[id], !modern.members.isEmpty {
            let subscribed = Set(modern.members.values.flatMap(\.subscribedTopics))
            return { tp, c in !subscribed.contains(tp.topic) && since(c.commitTimestamp) }
        }
        if let g = groups[id] {
            if g.isIdle && g.protocolType != nil {
                let emptied = since(g.emptySince)
                return { _, _ in emptied }
            }
            if g.state == .stable && g.protocolType == "consumer" {
                let subscribed = subscribedTopics(g)
                return { tp, c in !subscribed.contains(tp.topic) && since(c.commitTimestamp) }
            }
            if !g.isIdle { return never }
            return { _, c in since(c.commitTimestamp) }
        }
        // A classic group known only from its generation record: its members may still be on
        // their way back to this coordinator.
        if store.generations[id] != nil {
            let loaded = loadedAtMs[partition(of: id)] ?? now
            return { _, c in since(max(c.commitTimestamp, loaded)) }
        }
        return { _, c in since(c.commitTimestamp) }
    }

    /// Appends the tombstones of one `__consumer_offsets` partition in batches; the store forgets
    /// each batch's offsets and generations once it is written (and replicated).
    private func writeTombstones(partition: Int, offsets: [(String, TopicPartitionKey)], groups deleted: [String], now: Int64)
        -> [EventLoopFuture<(offsets: Int, groups: Int)>]
    {
        enum Key { case offset(String, TopicPartitionKey), group(String) }
        let keys = offsets.map { Key.offset($0.0, $0.1) } + deleted.map { Key.group($0) }
        return stride(from: 0, to: keys.count, by: Self.tombstonesPerBatch).map { start in
            let chunk = Array(keys[start..<min(start + Self.tombstonesPerBatch, keys.count)])
            let records = chunk.map { key -> Record in
                switch key {
                case .offset(let group, let tp): return Record(timestamp: now, key: OffsetStore.key(group: group, tp), value: nil)
                case .group(let group): return Record(timestamp: now, key: OffsetStore.groupKey(group), value: nil)
                }
            }
            var batch = ByteBuffer()
            do { try RecordBatch(records: records).encode(to: &batch) } catch { return loop.makeSucceededFuture((0, 0)) }
            let about = "\(chunk.count) expired offsets and groups"
            return appendOffsets(batch, partition: partition, about: about, origin: .leader()) { [self] in
                for key in chunk {
                    switch key {
                    case .offset(let group, let tp): store.apply(group: group, [(tp, nil)])
                    case .group(let group): store.forgetGeneration(group)
                    }
                }
            }.map { written in
                guard written else { return (0, 0) }
                return chunk.reduce(into: (offsets: 0, groups: 0)) { counts, key in
                    if case .offset = key { counts.offsets += 1 } else { counts.groups += 1 }
                }
            }
        }
    }
}
