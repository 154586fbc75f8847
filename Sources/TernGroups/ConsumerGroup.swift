import NIOCore
import TernProtocol

/// Kafka's classic group states.
enum GroupState: String {
    case empty = "Empty"
    case preparingRebalance = "PreparingRebalance"
    case completingRebalance = "CompletingRebalance"
    case stable = "Stable"
    case dead = "Dead"
}

/// One member of a classic group. Confined to the coordinator's event loop (hence the unchecked
/// Sendable: timers scheduled on that loop capture it).
final class GroupMember: @unchecked Sendable {
    var memberId: String
    let instanceId: String?
    let clientId: String
    let clientHost: String
    var sessionTimeoutMs: Int32
    var rebalanceTimeoutMs: Int32
    var protocolType: String
    /// (assignor name, subscription metadata) in the member's order of preference.
    var protocols: [(name: String, metadata: ByteBuffer)]
    var assignment = ByteBuffer()
    var joinPromise: EventLoopPromise<JoinResult>?
    var syncPromise: EventLoopPromise<SyncResult>?
    var sessionTimer: Scheduled<Void>?

    init(memberId: String, instanceId: String?, clientId: String, clientHost: String, sessionTimeoutMs: Int32,
         rebalanceTimeoutMs: Int32, protocolType: String, protocols: [(name: String, metadata: ByteBuffer)]) {
        self.memberId = memberId
        self.instanceId = instanceId
        self.clientId = clientId
        self.clientHost = clientHost
        self.sessionTimeoutMs = sessionTimeoutMs
        self.rebalanceTimeoutMs = rebalanceTimeoutMs
        self.protocolType = protocolType
        self.protocols = protocols
    }

    func metadata(for protocolName: String) -> ByteBuffer {
        protocols.first { $0.name == protocolName }?.metadata ?? ByteBuffer()
    }

    func sameProtocols(as other: [(name: String, metadata: ByteBuffer)]) -> Bool {
        protocols.count == other.count && zip(protocols, other).allSatisfy { $0.name == $1.name && $0.metadata == $1.metadata }
    }
}

/// What a JoinGroup waiting in a rebalance eventually gets.
struct JoinResult {
    var error: KafkaError = .none
    var generationId: Int32 = -1
    var protocolType: String?
    var protocolName: String?
    var leaderId: String = ""
    var memberId: String = ""
    var members: [(memberId: String, instanceId: String?, metadata: ByteBuffer)] = []
    /// JoinGroup v9+: the leader already has an assignment and must not compute one (a static
    /// leader that restarted into a stable group).
    var skipAssignment = false
}

struct SyncResult {
    var error: KafkaError = .none
    var protocolType: String?
    var protocolName: String?
    var assignment = ByteBuffer()
}

/// A classic consumer group: members, generation, chosen protocol. Confined to the coordinator's
/// event loop, like its members.
///
/// Invariants: every member in `members` appears once in `joinOrder`; `staticMembers` maps each
/// static member's instance id to its current member id; `leaderId` is a member whenever the
/// group is CompletingRebalance or Stable. Confined to the coordinator's event loop (hence the
/// unchecked Sendable: timers scheduled on that loop capture it).
final class ConsumerGroup: @unchecked Sendable {
    let groupId: String
    var state: GroupState = .empty
    var generationId: Int32 = 0
    var protocolType: String?
    var protocolName: String?
    var leaderId: String?
    var members: [String: GroupMember] = [:]
    var joinOrder: [String] = []
    var staticMembers: [String: String] = [:]
    /// Member ids handed out with MEMBER_ID_REQUIRED, expected to rejoin with them.
    var pendingMembers: [String: Scheduled<Void>] = [:]
    var rebalanceTimer: Scheduled<Void>?
    var initialDelayActive = false
    /// When the group last became Empty (or was created): its committed offsets expire
    /// `offsets.retention.minutes` after this, as Kafka's `currentStateTimestamp` of an Empty group.
    var emptySince: Int64

    init(groupId: String, now: Int64) {
        self.groupId = groupId
        self.emptySince = now
    }

    /// No members, none about to join (pending ids, a running rebalance): the group may be deleted.
    var isIdle: Bool { state == .empty && members.isEmpty && pendingMembers.isEmpty }

    func becomeEmpty(now: Int64) {
        state = .empty
        protocolName = nil
        leaderId = nil
        emptySince = now
    }

    func add(_ member: GroupMember) {
        members[member.memberId] = member
        joinOrder.append(member.memberId)
        if let instance = member.instanceId { staticMembers[instance] = member.memberId }
    }

    func remove(_ memberId: String) {
        guard let member = members.removeValue(forKey: memberId) else { return }
        joinOrder.removeAll { $0 == memberId }
        member.sessionTimer?.cancel()
        if let instance = member.instanceId, staticMembers[instance] == memberId { staticMembers[instance] = nil }
        if leaderId == memberId { leaderId = joinOrder.first }
    }

    var orderedMembers: [GroupMember] { joinOrder.compactMap { members[$0] } }

    /// Assignors every member supports, in no particular order.
    var commonProtocols: Set<String> {
        var common: Set<String>?
        for m in members.values {
            let names = Set(m.protocols.map(\.name))
            common = common.map { $0.intersection(names) } ?? names
        }
        return common ?? []
    }

    /// Kafka's vote: each member votes for its most preferred protocol that all support.
    func selectProtocol() -> String? {
        let candidates = commonProtocols
        var votes: [String: Int] = [:]
        for m in orderedMembers {
            if let choice = m.protocols.first(where: { candidates.contains($0.name) })?.name { votes[choice, default: 0] += 1 }
        }
        // Ties go to the protocol the first member prefers, so the choice is deterministic.
        let preferred = orderedMembers.first?.protocols.map(\.name) ?? []
        return votes.max { a, b in
            a.value != b.value ? a.value < b.value : (preferred.firstIndex(of: a.key) ?? .max) > (preferred.firstIndex(of: b.key) ?? .max)
        }?.key
    }

    var allMembersJoined: Bool { pendingMembers.isEmpty && members.values.allSatisfy { $0.joinPromise != nil } }
}
