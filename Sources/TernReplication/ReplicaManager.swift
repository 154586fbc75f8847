import Foundation
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TernCluster
import TernLog
import TernProtocol

/// Cluster mode: makes this broker the leader or a follower of each partition it has a replica
/// of, as the metadata image says (Kafka's ReplicaManager). Leaders get a `PartitionLeadership`
/// (followers' progress, ISR, high watermark, acks=all waits); followers are handed to one
/// `ReplicaFetcher` per leader broker. A maintenance thread asks for ISR changes and checkpoints
/// high watermarks.
///
/// Concurrency: `apply` has one caller at a time — the broker's start, then the cluster's apply
/// thread. The leaderships map is under a lock, read by request handlers on the event loops; the
/// fetchers' table under another (apply, shutdown, the maintenance thread's checkpoints). ISR
/// requests run as tasks that write etcd.
public final class ReplicaManager: Sendable {
    public typealias IsrWriter = @Sendable (_ key: ReplicaKey, _ leaderEpoch: Int32, _ partitionEpoch: Int32, _ isr: [Int32]) async -> Bool

    private let nodeId: Int32
    private let config: ReplicationConfig
    private let appender: LogAppender
    private let group: MultiThreadedEventLoopGroup
    private let logger: Logger
    private let logs: @Sendable (ReplicaKey) -> PartitionLog?
    private let writeIsr: IsrWriter
    private let leaders = NIOLockedValueBox<[ReplicaKey: PartitionLeadership]>([:])
    /// Touched only by `apply` and `shutdown` (the apply thread has stopped by then).
    private let fetchers = NIOLockedValueBox<[Int32: ReplicaFetcher]>([:])
    /// The ISR and high-watermark checkpoint thread (`maintain`, every 250 ms); set once in init.
    private let maintenance = NIOLockedValueBox<PeriodicThread?>(nil)
    private let lastCheckpointMs = NIOLockedValueBox(MonotonicClock.nowMs())
    private let isrShrinks = Counter(label: "tern_replication_isr_shrinks_total")
    private let isrExpands = Counter(label: "tern_replication_isr_expands_total")

    /// `logs` finds the local log of a partition; `writeIsr` asks the cluster for an ISR change and
    /// says whether it was made.
    public init(
        nodeId: Int32, config: ReplicationConfig, appender: LogAppender, logger: Logger,
        logs: @escaping @Sendable (ReplicaKey) -> PartitionLog?, writeIsr: @escaping IsrWriter
    ) {
        self.nodeId = nodeId
        self.config = config
        self.appender = appender
        // Followers' connections to leaders: network waits only, one thread is plenty.
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.logger = logger
        self.logs = logs
        self.writeIsr = writeIsr
        maintenance.withLockedValue { $0 = PeriodicThread(name: "tern-replica-maintenance", intervalMs: 250) { [self] in maintain() } }
    }

    /// The leadership of a partition this broker leads now, or nil.
    public func leadership(_ key: ReplicaKey) -> PartitionLeadership? { leaders.withLockedValue { $0[key] } }

    public var leaderships: [PartitionLeadership] { leaders.withLockedValue { Array($0.values) } }

    /// Partitions followed from other brokers.
    public var followedPartitions: Set<ReplicaKey> {
        fetchers.withLockedValue { $0.values.reduce(into: Set()) { $0.formUnion($1.followedKeys) } }
    }

    /// Stops following and leading every partition `image` no longer places on this broker (a
    /// reassignment moved it away, or its topic was deleted), so that no fetch or produce writes
    /// to a log about to be deleted. Called before local storage is made to match the image.
    public func release(_ image: MetadataImage) {
        let me = nodeId
        let placed = { (key: ReplicaKey) -> Bool in
            guard let partitions = image.topics[key.topic]?.partitions, key.partition >= 0, Int(key.partition) < partitions.count else { return false }
            return partitions[Int(key.partition)].replicas.contains(me)
        }
        // Waits for writes in progress: outside the fetchers' lock, which no wait may hold.
        let leaving = fetchers.withLockedValue { fetchers in fetchers.values.map { f in (f, f.followedKeys.filter { !placed($0) }) } }
        for (fetcher, keys) in leaving { keys.forEach(fetcher.unfollow) }
        let released = leaders.withLockedValue { map -> [PartitionLeadership] in
            let gone = map.filter { !placed($0.key) }
            for key in gone.keys { map[key] = nil }
            return Array(gone.values)
        }
        for leadership in released {
            leadership.resign()
            logger.info("no longer a replica of a partition it led", metadata: ["partition": "\(leadership.topic)-\(leadership.partition)"])
        }
    }

    /// Makes roles match `image`. Called after local storage was made to match it.
    public func apply(_ image: MetadataImage) {
        let nowMs = MonotonicClock.nowMs()
        let alive = image.brokers[nodeId] != nil
        var led: [(ReplicaKey, PartitionLog, PartitionState)] = []
        var following: [Int32: [(ReplicaKey, PartitionLog, Int32)]] = [:]
        for record in image.topics.values {
            for (index, p) in record.partitions.enumerated() where p.replicas.contains(nodeId) {
                let key = ReplicaKey(record.name, Int32(index))
                guard let log = logs(key) else { continue }
                log.trackHighWatermark()
                if p.leader == nodeId && alive {
                    led.append((key, log, p))
                    continue
                }
                // Not led here (any more): leader writes still queued are refused from now on,
                // before a fetcher copies anything into the log.
                log.follow()
                if p.leader != LeaderElection.noLeader && p.leader != nodeId, image.brokers[p.leader] != nil {
                    following[p.leader, default: []].append((key, log, p.leaderEpoch))
                }
            }
        }
        // Fetchers stop writing what this broker now leads before its leadership starts.
        updateFetchers(following, image: image)
        let current = leaders.withLockedValue { $0 }
        var leading: [ReplicaKey: PartitionLeadership] = [:]
        for (key, log, p) in led {
            if let existing = current[key], existing.log === log, existing.leaderEpoch == p.leaderEpoch {
                existing.update(p, monotonicMs: nowMs)
                log.lead(inEpoch: p.leaderEpoch)
                leading[key] = existing
            } else {
                leading[key] = PartitionLeadership(topic: key.topic, partition: key.partition, log: log, nodeId: nodeId, state: p, monotonicMs: nowMs)
            }
        }
        let replaced = leaders.withLockedValue { map -> [PartitionLeadership] in
            defer { map = leading }
            return map.filter { leading[$0.key] !== $0.value }.map(\.value)
        }
        for old in replaced { old.resign() }
        for (key, l) in leading where current[key] !== l {
            logger.info("leading partition", metadata: ["partition": "\(key)", "leaderEpoch": "\(l.leaderEpoch)", "isr": "\(l.inSyncReplicas)"])
        }
    }

    /// On the apply thread only, so two updates never interleave. What stops being fetched is
    /// unfollowed — its writes in progress waited for, outside the fetchers' lock — before anything
    /// is followed anew: a partition moving from one leader's fetcher to another's never has two
    /// writers.
    private func updateFetchers(_ following: [Int32: [(ReplicaKey, PartitionLog, Int32)]], image: MetadataImage) {
        let (stopped, leaving) = fetchers.withLockedValue { fetchers -> ([ReplicaFetcher], [(ReplicaFetcher, [ReplicaKey])]) in
            var stopped: [ReplicaFetcher] = []
            var leaving: [(ReplicaFetcher, [ReplicaKey])] = []
            for (leaderId, fetcher) in fetchers {
                let wanted = Set((following[leaderId] ?? []).map(\.0))
                // A leader that re-registered elsewhere gets a new connection.
                let moved = image.brokers[leaderId].map { $0.host != fetcher.leader.host || $0.port != fetcher.leader.port } ?? true
                if wanted.isEmpty || moved {
                    stopped.append(fetcher)
                    fetchers[leaderId] = nil
                    continue
                }
                leaving.append((fetcher, fetcher.followedKeys.filter { !wanted.contains($0) }))
            }
            return (stopped, leaving)
        }
        stopped.forEach { $0.stop() }
        for (fetcher, keys) in leaving { keys.forEach(fetcher.unfollow) }
        fetchers.withLockedValue { fetchers in
            for (leaderId, partitions) in following {
                guard let registration = image.brokers[leaderId] else { continue }
                let fetcher = fetchers[leaderId] ?? {
                    let made = ReplicaFetcher(leader: registration, nodeId: nodeId, config: config, appender: appender, group: group, logger: logger)
                    made.start()
                    fetchers[leaderId] = made
                    return made
                }()
                for (key, log, epoch) in partitions { fetcher.follow(key, log: log, leaderEpoch: epoch) }
            }
        }
    }

    /// Stops fetching and resigns every leadership (waiting produce requests are answered).
    public func shutdown() {
        maintenance.withLockedValue { $0 }?.stop()
        let all = fetchers.withLockedValue { f in defer { f = [:] }; return Array(f.values) }
        all.forEach { $0.stop() }
        let led = leaders.withLockedValue { m in defer { m = [:] }; return Array(m.values) }
        led.forEach { $0.resign() }
        for l in led { try? l.log.checkpointHighWatermark() }
        try? group.syncShutdownGracefully()
    }

    // MARK: maintenance

    /// One maintenance pass: ISR changes proposed by each leadership, and the high-watermark
    /// checkpoint when due.
    private func maintain() {
        let nowMs = MonotonicClock.nowMs()
        for leadership in leaderships {
            guard let (isr, leaderEpoch, partitionEpoch) = leadership.proposedIsr(monotonicMs: nowMs, lagMaxMs: config.lagTimeMaxMs) else { continue }
            let key = ReplicaKey(leadership.topic, leadership.partition)
            let was = leadership.inSyncReplicas
            logger.info("asking for an ISR change", metadata: ["partition": "\(key)", "isr": "\(isr)", "was": "\(was)"])
            Task { [writeIsr, isrShrinks, isrExpands] in
                guard await writeIsr(key, leaderEpoch, partitionEpoch, isr) else {
                    leadership.isrRequestFinished()
                    return
                }
                if isr.contains(where: { !was.contains($0) }) { isrExpands.increment() }
                if was.contains(where: { !isr.contains($0) }) { isrShrinks.increment() }
            }
        }
        let due = lastCheckpointMs.withLockedValue { last in
            guard nowMs - last >= config.highWatermarkCheckpointIntervalMs else { return false }
            last = nowMs
            return true
        }
        if due { checkpointHighWatermarks() }
    }

    private func checkpointHighWatermarks() {
        var replicated = leaderships.map(\.log)
        replicated += followedPartitions.compactMap(logs)
        for log in replicated {
            do { try log.checkpointHighWatermark() } catch {
                logger.warning("writing a high-watermark checkpoint failed", metadata: ["log": "\(log.directory)", "error": "\(error)"])
            }
        }
    }
}
