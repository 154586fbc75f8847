import Foundation
import NIOConcurrencyHelpers
import NIOCore
import TernCluster
import TernLog
import TernProtocol

/// The leader's side of one replicated partition: where each follower's log ends (learnt from its
/// fetches), which replicas are in sync, the high watermark that follows — the smallest log end
/// among the ISR — and the produce requests (acks=all) waiting for it to pass their records.
///
/// Concurrency: all state is under `lock`, taken briefly by follower fetches and produce requests
/// (event loops), leader appends (the appender's thread) and the ISR checks (the manager's
/// thread). Lock order: this lock, then the log's; the log never calls back. Waiting requests'
/// promises are completed after the lock is released.
///
/// Invariants: high watermark <= the leader's log end; it never moves back while this broker
/// leads; the leader is always in the ISR it reports.
public final class PartitionLeadership: @unchecked Sendable {
    public let topic: String
    public let partition: Int32
    public let log: PartitionLog
    public let nodeId: Int32

    /// Times are `MonotonicClock` milliseconds: a wall clock stepped forward while a follower
    /// fetched would keep it "caught up" for the length of the step after it stopped.
    private struct Follower {
        /// Where the follower's log ends, as its last fetch said (-1 until it fetches from this leader).
        var logEnd: Int64 = -1
        /// The last time its log reached the leader's end as of its previous fetch (Kafka's rule).
        var lastCaughtUpMs: Int64
        var lastFetchMs: Int64 = 0
        var leaderEndAtLastFetch: Int64 = -1
    }

    private struct Waiter {
        let id: UInt64
        let requiredOffset: Int64
        let minInsync: Int
        let promise: EventLoopPromise<KafkaError>
        let timeout: Scheduled<Void>?
    }

    private let lock = NIOLock()
    private var state: PartitionState
    /// The first offset written in this leadership's epoch: a follower is caught up only past it.
    private let epochStartOffset: Int64
    private var followers: [Int32: Follower] = [:]
    private var waiters: [Waiter] = []
    private var nextWaiterId: UInt64 = 0
    /// An ISR change sent to the cluster and not yet seen back in the image.
    private var pendingIsr: [Int32]?
    private var resigned = false

    public init(topic: String, partition: Int32, log: PartitionLog, nodeId: Int32, state: PartitionState, monotonicMs nowMs: Int64) {
        precondition(state.leader == nodeId, "a leadership is made only for the partition's leader")
        self.topic = topic
        self.partition = partition
        self.log = log
        self.nodeId = nodeId
        self.state = state
        self.epochStartOffset = log.logEndOffset
        for replica in state.replicas where replica != nodeId {
            followers[replica] = Follower(lastCaughtUpMs: nowMs)
        }
        log.trackHighWatermark()
        log.lead(inEpoch: state.leaderEpoch)
        // A lone in-sync leader's high watermark is its log end from the start (a single broker's
        // data joining a cluster, say): nothing to wait for.
        _ = lock.withLock { advanceLocked() }
    }

    public var leaderEpoch: Int32 { lock.withLock { state.leaderEpoch } }
    public var partitionState: PartitionState { lock.withLock { state } }
    public var inSyncReplicas: [Int32] { lock.withLock { state.isr } }

    /// A newer image for the same leadership (same leader epoch): the ISR or replicas changed.
    /// Returns whether the high watermark moved (a smaller ISR may let it).
    @discardableResult
    public func update(_ next: PartitionState, monotonicMs nowMs: Int64) -> Bool {
        let (done, advanced) = lock.withLock { () -> ([(EventLoopPromise<KafkaError>, KafkaError)], Bool) in
            precondition(next.leaderEpoch == state.leaderEpoch && next.leader == nodeId, "a new leader epoch makes a new leadership")
            state = next
            if pendingIsr == next.isr { pendingIsr = nil }
            for replica in next.replicas where replica != nodeId && followers[replica] == nil {
                followers[replica] = Follower(lastCaughtUpMs: nowMs)
            }
            for replica in followers.keys where !next.replicas.contains(replica) { followers[replica] = nil }
            return advanceLocked()
        }
        complete(done)
        return advanced
    }

    /// A follower fetched from `fetchOffset`: its log ends there. Returns true when the high
    /// watermark moved (consumers waiting on the log can be woken). False for a broker that is not
    /// a replica of this partition.
    @discardableResult
    public func followerFetched(_ replica: Int32, fetchOffset: Int64, monotonicMs nowMs: Int64) -> (isReplica: Bool, advanced: Bool) {
        let (isReplica, done, advanced) = lock.withLock { () -> (Bool, [(EventLoopPromise<KafkaError>, KafkaError)], Bool) in
            guard var f = followers[replica] else { return (false, [], false) }
            let leaderEnd = log.logEndOffset
            // Kafka's rule: caught up as of the previous fetch if it has now reached what the leader
            // had then; caught up now if it has everything.
            if fetchOffset >= leaderEnd {
                f.lastCaughtUpMs = nowMs
            } else if f.leaderEndAtLastFetch >= 0 && fetchOffset >= f.leaderEndAtLastFetch {
                f.lastCaughtUpMs = max(f.lastCaughtUpMs, f.lastFetchMs)
            }
            f.logEnd = fetchOffset
            f.leaderEndAtLastFetch = leaderEnd
            f.lastFetchMs = nowMs
            followers[replica] = f
            let (done, advanced) = advanceLocked()
            return (true, done, advanced)
        }
        complete(done)
        return (isReplica, advanced)
    }

    /// The leader appended: with a lone ISR member the high watermark follows at once.
    @discardableResult
    public func leaderAppended() -> Bool {
        let (done, advanced) = lock.withLock { advanceLocked() }
        complete(done)
        return advanced
    }

    /// acks=all: succeeds once the high watermark reaches `offset` (every in-sync replica has the
    /// records before it) — NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR is then smaller than
    /// `minInsync` — or REQUEST_TIMED_OUT after `timeoutMs`, NOT_LEADER_OR_FOLLOWER if the
    /// leadership ends first. The waiters are bounded by the produce requests in flight, which the
    /// server's request memory pool bounds.
    public func waitForReplication(of offset: Int64, minInsync: Int, timeoutMs: Int64, on eventLoop: EventLoop) -> EventLoopFuture<KafkaError> {
        let promise = eventLoop.makePromise(of: KafkaError.self)
        let immediate = lock.withLock { () -> KafkaError? in
            if resigned { return .notLeaderOrFollower }
            if log.highWatermark >= offset { return state.isr.count < minInsync ? .notEnoughReplicasAfterAppend : KafkaError.none }
            let id = nextWaiterId
            nextWaiterId += 1
            let timeout = eventLoop.scheduleTask(in: .milliseconds(max(timeoutMs, 0))) { [weak self] () -> Void in
                self?.expire(id)
            }
            waiters.append(Waiter(id: id, requiredOffset: offset, minInsync: minInsync, promise: promise, timeout: timeout))
            return nil
        }
        if let immediate { promise.succeed(immediate) }
        return promise.futureResult
    }

    public var waitingProduceRequests: Int { lock.withLock { waiters.count } }

    /// The leadership ended (another broker leads, or the partition left this broker): waiting
    /// requests learn that their records' fate is no longer known here.
    public func resign() {
        let pending = lock.withLock { () -> [Waiter] in
            resigned = true
            defer { waiters = [] }
            return waiters
        }
        for w in pending {
            w.timeout?.cancel()
            w.promise.succeed(.notLeaderOrFollower)
        }
    }

    /// The ISR this leader should ask for now, or nil: followers that have not caught up for
    /// `lagMaxMs` leave; replicas whose log reached the high watermark (and this epoch's start)
    /// join. Nothing while an earlier request is still on its way.
    public func proposedIsr(monotonicMs nowMs: Int64, lagMaxMs: Int64) -> (isr: [Int32], leaderEpoch: Int32, partitionEpoch: Int32)? {
        lock.withLock {
            guard !resigned, pendingIsr == nil else { return nil }
            let hw = log.highWatermark
            var isr = Set(state.isr)
            isr.insert(nodeId)
            for (replica, f) in followers {
                if isr.contains(replica) {
                    if nowMs - f.lastCaughtUpMs > lagMaxMs { isr.remove(replica) }
                } else if f.logEnd >= 0 && f.logEnd >= hw && f.logEnd >= epochStartOffset && nowMs - f.lastFetchMs <= lagMaxMs {
                    isr.insert(replica)
                }
            }
            let ordered = state.replicas.filter(isr.contains)
            guard ordered != state.isr else { return nil }
            pendingIsr = ordered
            return (ordered, state.leaderEpoch, state.partitionEpoch)
        }
    }

    /// The ISR request did not go through (lost a race, or etcd was away): the next check may ask again.
    public func isrRequestFinished() {
        lock.withLock { pendingIsr = nil }
    }

    /// Follower log ends for metrics and tests: replica → log end (-1 while unknown).
    public var followerLogEnds: [Int32: Int64] { lock.withLock { followers.mapValues(\.logEnd) } }

    /// Records each follower lacks (one that has not fetched yet counts from 0).
    public var followerLags: [Int32: Int64] {
        let end = log.logEndOffset
        return lock.withLock { followers.mapValues { max(end - max($0.logEnd, 0), 0) } }
    }

    /// Records the furthest-behind follower lacks.
    public var maxFollowerLag: Int64 { followerLags.values.max() ?? 0 }

    /// Fewer in-sync replicas than assigned ones.
    public var isUnderReplicated: Bool { lock.withLock { state.isr.count < state.replicas.count } }

    // MARK: lock held

    /// Moves the high watermark to the smallest log end in the ISR; returns the waiters it
    /// satisfied (to complete after the lock) and whether it moved.
    private func advanceLocked() -> ([(EventLoopPromise<KafkaError>, KafkaError)], Bool) {
        guard !resigned else { return ([], false) }
        var candidate = log.logEndOffset
        for replica in state.isr where replica != nodeId {
            // An in-sync follower that has not fetched from this leader yet holds it back.
            candidate = min(candidate, followers[replica]?.logEnd ?? -1)
        }
        guard candidate >= 0, log.advanceHighWatermark(to: candidate) else { return ([], false) }
        let hw = log.highWatermark
        var done: [(EventLoopPromise<KafkaError>, KafkaError)] = []
        waiters.removeAll { w in
            guard w.requiredOffset <= hw else { return false }
            w.timeout?.cancel()
            done.append((w.promise, state.isr.count < w.minInsync ? .notEnoughReplicasAfterAppend : .none))
            return true
        }
        return (done, true)
    }

    private func expire(_ id: UInt64) {
        let expired = lock.withLock { () -> Waiter? in
            guard let i = waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return waiters.remove(at: i)
        }
        expired?.promise.succeed(.requestTimedOut)
    }

    private func complete(_ done: [(EventLoopPromise<KafkaError>, KafkaError)]) {
        for (promise, result) in done { promise.succeed(result) }
    }
}
