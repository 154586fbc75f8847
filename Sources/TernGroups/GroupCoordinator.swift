import Foundation
import Logging
import NIOCore
import NIOPosix
import TernLog
import TernProtocol

/// The classic group coordinator of a single broker: membership, rebalances and committed offsets.
///
/// Every group's state lives on one event loop of the coordinator's own; requests hop onto it, so
/// the state machine needs no locks. Join and Sync requests that must wait for a rebalance hold a
/// promise that the state machine completes. Offset commits are answered only after their record
/// is durable in `__consumer_offsets` (per the log's flush policy).
public final class GroupCoordinator: @unchecked Sendable {
    let loop: EventLoop
    private let group: MultiThreadedEventLoopGroup
    let config: GroupConfig
    let logger: Logger
    /// `__consumer_offsets`' partitions (index = partition); a group's state is in the one its id
    /// hashes to (`CoordinatorPartition`).
    let offsetsLogs: [PartitionLog]
    let appender: LogAppender
    let topicCatalog: TopicCatalog
    /// Cluster mode: completes once a write to `__consumer_offsets` (partition, end offset) is on
    /// every in-sync replica — true — or could not get there in time — false. Kafka writes
    /// committed offsets with acks=all; nil (a single broker, tests): written is replicated.
    let replicated: (@Sendable (Int, Int64, EventLoop) -> EventLoopFuture<Bool>)?
    // Confined to `loop` (asserted where groups are looked up or change state): that confinement
    // is what makes this class, and the group and member classes it owns, safe to mark
    // @unchecked Sendable — timers and futures on `loop` capture them.
    var groups: [String: ConsumerGroup] = [:]
    var modernGroups: [String: ConsumerProtocolGroup] = [:]
    var store = OffsetStore()
    /// When each coordinated `__consumer_offsets` partition was loaded: the retention clock of a
    /// group known only from its log starts there (`GroupCoordinator+Expiration`).
    var loadedAtMs: [Int: Int64] = [:]

    /// `coordinating`: the partitions whose groups this coordinator serves from the start (all of
    /// them on a single broker; in a cluster, those it leads — `takeOver`/`resign` change it).
    public init(
        config: GroupConfig, offsetsLogs: [PartitionLog], coordinating: Set<Int>? = nil, appender: LogAppender, logger: Logger,
        topics: TopicCatalog, replicated: (@Sendable (Int, Int64, EventLoop) -> EventLoopFuture<Bool>)? = nil
    ) throws {
        precondition(!offsetsLogs.isEmpty, "__consumer_offsets has at least one partition")
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.loop = group.next()
        self.config = config
        self.logger = logger
        self.offsetsLogs = offsetsLogs
        self.appender = appender
        self.topicCatalog = topics
        self.replicated = replicated
        for p in (coordinating ?? Set(offsetsLogs.indices)).sorted() {
            try store.load(from: offsetsLogs[p], logger: logger)
            loadedAtMs[p] = PartitionLog.nowMs()
        }
        scheduleExpiration()
    }

    /// The `__consumer_offsets` partition holding `groupId`'s state.
    public func partition(of groupId: String) -> Int { CoordinatorPartition.of(groupId, partitions: offsetsLogs.count) }

    public func shutdown() {
        try? group.syncShutdownGracefully()
    }

    func group(_ id: String, create: Bool) -> ConsumerGroup? {
        loop.preconditionInEventLoop()
        if let g = groups[id] { return g }
        guard create else { return nil }
        let g = ConsumerGroup(groupId: id, now: PartitionLog.nowMs())
        // Generations continue from the last one written, also after the coordinator moved.
        g.generationId = store.generations[id] ?? 0
        groups[id] = g
        return g
    }

    static func newMemberId(clientId: String) -> String {
        "\(clientId)-\(UUID().uuidString.lowercased())"
    }

    // MARK: rebalance machinery (on `loop`)

    /// Moves the group to PreparingRebalance and arms the timer that completes the join phase.
    func prepareRebalance(_ g: ConsumerGroup, reason: String) {
        loop.preconditionInEventLoop()
        // Already gathering members: keep the running timer (initial delay or rebalance timeout).
        if g.state == .preparingRebalance {
            checkJoinComplete(g)
            return
        }
        if g.state == .completingRebalance {
            for m in g.members.values {
                m.syncPromise?.succeed(SyncResult(error: .rebalanceInProgress))
                m.syncPromise = nil
            }
        }
        g.rebalanceTimer?.cancel()
        let wasEmpty = g.state == .empty
        g.state = .preparingRebalance
        logger.debug("preparing rebalance", metadata: ["group": "\(g.groupId)", "reason": "\(reason)"])
        if wasEmpty && config.initialRebalanceDelayMs > 0 {
            // A new group waits a little so members starting together join one generation.
            g.initialDelayActive = true
            g.rebalanceTimer = loop.scheduleTask(in: .milliseconds(config.initialRebalanceDelayMs)) { [self] in
                g.initialDelayActive = false
                if g.allMembersJoined { completeJoin(g) } else { armRebalanceTimeout(g) }
            }
        } else {
            armRebalanceTimeout(g)
            checkJoinComplete(g)
        }
    }

    private func armRebalanceTimeout(_ g: ConsumerGroup) {
        let timeout = Int64(g.members.values.map(\.rebalanceTimeoutMs).max() ?? 0)
        g.rebalanceTimer?.cancel()
        g.rebalanceTimer = loop.scheduleTask(in: .milliseconds(max(timeout, 0))) { [self] in
            if g.state == .preparingRebalance { completeJoin(g) }
        }
    }

    func checkJoinComplete(_ g: ConsumerGroup) {
        if g.state == .preparingRebalance && !g.initialDelayActive && g.allMembersJoined { completeJoin(g) }
    }

    /// Ends the join phase: members that did not rejoin are dropped, a new generation starts, the
    /// leader receives every member's subscription, and everyone waits for the leader's SyncGroup.
    func completeJoin(_ g: ConsumerGroup) {
        g.rebalanceTimer?.cancel()
        for m in g.orderedMembers where m.joinPromise == nil {
            logger.info("member did not rejoin in time", metadata: ["group": "\(g.groupId)", "member": "\(m.memberId)"])
            g.remove(m.memberId)
        }
        // Wrapping, as Kafka's int does: clients drive it (every rebalance), and the 2^31st must not trap.
        g.generationId &+= 1
        guard !g.members.isEmpty else {
            g.becomeEmpty(now: PartitionLog.nowMs())
            return
        }
        g.protocolName = g.selectProtocol()
        g.protocolType = g.orderedMembers.first?.protocolType
        if g.leaderId == nil || g.members[g.leaderId!] == nil { g.leaderId = g.joinOrder.first }
        g.state = .completingRebalance
        let protocolName = g.protocolName ?? ""
        let all = g.orderedMembers.map { ($0.memberId, $0.instanceId, $0.metadata(for: protocolName)) }
        for m in g.orderedMembers {
            m.assignment = ByteBuffer()
            let result = JoinResult(
                generationId: g.generationId, protocolType: g.protocolType, protocolName: g.protocolName,
                leaderId: g.leaderId ?? "", memberId: m.memberId, members: m.memberId == g.leaderId ? all : [])
            m.joinPromise?.succeed(result)
            m.joinPromise = nil
            scheduleSessionExpiry(g, m)
        }
        logger.info(
            "group rebalanced",
            metadata: ["group": "\(g.groupId)", "generation": "\(g.generationId)", "members": "\(g.members.count)",
                       "protocol": "\(protocolName)"])
        // If the leader never sends its assignment, start over rather than wait forever.
        let timeout = Int64(g.members.values.map(\.rebalanceTimeoutMs).max() ?? 0)
        let generation = g.generationId
        g.rebalanceTimer = loop.scheduleTask(in: .milliseconds(timeout)) { [self] in
            if g.state == .completingRebalance && g.generationId == generation {
                prepareRebalance(g, reason: "leader did not sync in time")
            }
        }
    }

    /// (Re)arms a member's session timeout; when it fires the member is removed.
    func scheduleSessionExpiry(_ g: ConsumerGroup, _ m: GroupMember) {
        m.sessionTimer?.cancel()
        let memberId = m.memberId
        m.sessionTimer = loop.scheduleTask(in: .milliseconds(Int64(m.sessionTimeoutMs))) { [self] in
            guard let current = g.members[memberId], current === m, current.joinPromise == nil else { return }
            logger.info("member session expired", metadata: ["group": "\(g.groupId)", "member": "\(memberId)"])
            removeMember(g, memberId, reason: "session timeout")
        }
    }

    /// Removes a member (leave, expiry, fencing) and rebalances whoever is left.
    func removeMember(_ g: ConsumerGroup, _ memberId: String, reason: String) {
        guard let m = g.members[memberId] else { return }
        m.joinPromise?.succeed(JoinResult(error: .unknownMemberId, memberId: memberId))
        m.joinPromise = nil
        m.syncPromise?.succeed(SyncResult(error: .unknownMemberId))
        m.syncPromise = nil
        g.remove(memberId)
        switch g.state {
        case .preparingRebalance:
            if g.members.isEmpty { completeJoin(g) } else { checkJoinComplete(g) }
        case .completingRebalance, .stable:
            if g.members.isEmpty {
                g.rebalanceTimer?.cancel()
                g.generationId &+= 1
                g.becomeEmpty(now: PartitionLog.nowMs())
            } else {
                prepareRebalance(g, reason: reason)
            }
        case .empty, .dead:
            break
        }
    }
}
