import NIOCore
import TernLog
import TernProtocol

/// KIP-848 online migration (`group.consumer.migration.policy`, default `bidirectional`): a live
/// classic group whose protocol type is "consumer" becomes a consumer-protocol group when a
/// ConsumerGroupHeartbeat member joins it; its classic members stay, speaking JoinGroup, SyncGroup
/// and Heartbeat to the server-side assignor; when the last consumer-protocol member leaves, the
/// group turns back into a classic one and rebalances. Kafka's `GroupMetadataManager` is the
/// reference for every rule here.
///
/// A classic member inside a consumer-protocol group sees its own member epoch as its generation.
/// Its JoinGroup is answered at once (no leader, no member list: every classic member syncs as a
/// follower); SyncGroup hands it what it may own now, encoded as a ConsumerProtocolAssignment;
/// Heartbeat answers REBALANCE_IN_PROGRESS while its epoch is behind the group's or partitions it
/// must give up or may take are waiting, so it rejoins.
extension GroupCoordinator {
    // MARK: upgrade

    /// A ConsumerGroupHeartbeat for a group that is classic with members: converts it if the
    /// policy, the protocol type and the group's state allow; otherwise the error to answer.
    func upgradeToConsumerProtocol(_ classic: ConsumerGroup) -> KafkaError? {
        guard config.migrationPolicy.allowsUpgrade, classic.protocolType == "consumer", let protocolName = classic.protocolName,
            classic.members.count <= Int(config.consumerMaxSize)
        else {
            return .groupIdNotFound
        }
        var converted: [(GroupMember, ConsumerProtocolSubscription?, Set<TopicPartitionKey>)] = []
        for m in classic.orderedMembers {
            converted.append((m, Self.subscription(m.metadata(for: protocolName)), Self.partitions(inAssignment: m.assignment)))
        }
        for (m, _, _) in converted {
            m.joinPromise?.succeed(JoinResult(error: .rebalanceInProgress, memberId: m.memberId))
            m.joinPromise = nil
            m.syncPromise?.succeed(SyncResult(error: .rebalanceInProgress))
            m.syncPromise = nil
            m.sessionTimer?.cancel()
        }
        classic.rebalanceTimer?.cancel()
        classic.pendingMembers.values.forEach { $0.cancel() }
        groups[classic.groupId] = nil

        let g = ConsumerProtocolGroup(groupId: classic.groupId)
        g.groupEpoch = classic.generationId
        for (old, subscription, assigned) in converted {
            let m = ConsumerProtocolGroup.Member(memberId: old.memberId, clientId: old.clientId, clientHost: old.clientHost)
            m.instanceId = old.instanceId
            m.epoch = classic.generationId
            m.previousEpoch = classic.generationId
            m.subscribedTopics = (subscription?.topics ?? []).sorted()
            m.rebalanceTimeoutMs = old.rebalanceTimeoutMs
            m.owned = assigned
            m.sent = assigned
            m.sentOnce = true
            m.classic = .init(sessionTimeoutMs: old.sessionTimeoutMs, protocols: old.protocols)
            g.members[m.memberId] = m
            g.target[m.memberId] = assigned
            scheduleModernExpiry(g, m)
        }
        modernGroups[classic.groupId] = g
        logger.info("classic group upgraded to the consumer protocol", metadata: ["group": "\(g.groupId)", "members": "\(g.members.count)"])
        return nil
    }

    // MARK: downgrade

    /// After a consumer-protocol member left: if only classic members remain and the policy allows,
    /// the group becomes classic again (Stable at the current epoch, each member holding its target
    /// assignment) and rebalances so the members agree on a leader-computed assignment.
    func downgradeIfOnlyClassicMembersRemain(_ g: ConsumerProtocolGroup, removedConsumerMember: Bool) {
        guard removedConsumerMember, config.migrationPolicy.allowsDowngrade, !g.members.isEmpty,
            g.members.count <= Int(config.maxSize), g.members.values.allSatisfy({ $0.classic != nil })
        else { return }
        let classic = ConsumerGroup(groupId: g.groupId, now: PartitionLog.nowMs())
        classic.generationId = g.groupEpoch
        classic.protocolType = "consumer"
        for m in g.members.values.sorted(by: { $0.memberId < $1.memberId }) {
            m.sessionTimer?.cancel()
            let info = m.classic!
            let member = GroupMember(
                memberId: m.memberId, instanceId: m.instanceId, clientId: m.clientId, clientHost: m.clientHost,
                sessionTimeoutMs: info.sessionTimeoutMs, rebalanceTimeoutMs: m.rebalanceTimeoutMs, protocolType: "consumer",
                protocols: info.protocols)
            member.assignment = Self.assignment(g.target[m.memberId] ?? [], version: Self.subscriptionVersion(info.protocols.first?.metadata))
            classic.add(member)
        }
        classic.protocolName = classic.selectProtocol()
        classic.leaderId = classic.joinOrder.first
        classic.state = .stable
        modernGroups[g.groupId] = nil
        groups[g.groupId] = classic
        for m in classic.members.values { scheduleSessionExpiry(classic, m) }
        logger.info("consumer-protocol group downgraded to classic", metadata: ["group": "\(g.groupId)", "members": "\(classic.members.count)"])
        prepareRebalance(classic, reason: "downgraded to the classic protocol")
    }

    // MARK: classic requests to a consumer-protocol group

    func mixedJoin(_ g: ConsumerProtocolGroup, _ req: JoinGroupRequest, version: Int16, clientId: String, clientHost: String,
                   rebalanceTimeout: Int32) -> JoinResult {
        let protocols = req.protocols.map { (name: $0.name, metadata: $0.metadata) }
        guard req.protocolType == "consumer", Self.supportsCommonProtocol(g, protocols.map(\.name)) else {
            return JoinResult(error: .inconsistentGroupProtocol, memberId: req.memberId)
        }
        var memberId = req.memberId
        if let instance = req.groupInstanceId {
            let current = g.members.values.first { $0.instanceId == instance }
            if !memberId.isEmpty {
                guard let current else { return JoinResult(error: .unknownMemberId, memberId: memberId) }
                guard current.memberId == memberId else { return JoinResult(error: .fencedInstanceId, memberId: memberId) }
            } else {
                // A restarted static member takes over its instance: the old identity goes.
                memberId = Self.newMemberId(clientId: clientId)
                if let current { g.members[current.memberId] = nil; current.sessionTimer?.cancel() }
            }
        } else if memberId.isEmpty {
            memberId = Self.newMemberId(clientId: clientId)
            if version >= 4 { return JoinResult(error: .memberIdRequired, memberId: memberId) }
        }
        if g.members[memberId] == nil && g.members.count >= Int(config.consumerMaxSize) {
            return JoinResult(error: .groupMaxSizeReached, memberId: "")
        }
        let m = g.members[memberId] ?? {
            let created = ConsumerProtocolGroup.Member(memberId: memberId, clientId: clientId, clientHost: clientHost)
            created.instanceId = req.groupInstanceId
            g.members[memberId] = created
            return created
        }()
        let subscription = Self.subscription(protocols.first?.metadata)
        let topics = (subscription?.topics ?? []).sorted()
        let changed = m.classic == nil || topics != m.subscribedTopics
        m.subscribedTopics = topics
        m.rebalanceTimeoutMs = rebalanceTimeout
        m.classic = .init(sessionTimeoutMs: req.sessionTimeoutMs, protocols: protocols)
        // What the member says it still owns (eager members own nothing when they rejoin).
        m.owned = Set((subscription?.ownedPartitions ?? []).flatMap { tp in tp.partitions.map { TopicPartitionKey(topic: tp.topic, partition: $0) } })
        if changed {
            g.groupEpoch &+= 1
            g.computeTarget(partitionCount: { self.topicCatalog.partitions($0) })
        }
        reconcileClassic(g, m)
        scheduleModernExpiry(g, m)
        return JoinResult(
            generationId: m.epoch, protocolType: "consumer", protocolName: protocols.first?.name, leaderId: "", memberId: memberId)
    }

    /// A classic member's next step: while it owns partitions its target no longer has, it keeps its
    /// epoch and only those it may keep (it revokes the rest, then rejoins); otherwise it moves to
    /// the group's epoch with its target minus partitions others still hold.
    private func reconcileClassic(_ g: ConsumerProtocolGroup, _ m: ConsumerProtocolGroup.Member) {
        let target = g.target[m.memberId] ?? []
        if !m.owned.subtracting(target).isEmpty {
            m.sent = m.owned.intersection(target)
            m.classic!.revoking = true
        } else {
            m.sent = target.subtracting(g.busyPartitions(excluding: m.memberId))
            m.classic!.revoking = false
            if g.groupEpoch > m.epoch {
                m.previousEpoch = m.epoch
                m.epoch = g.groupEpoch
            }
        }
        m.sentOnce = true
    }

    func mixedSync(_ g: ConsumerProtocolGroup, _ req: SyncGroupRequest) -> SyncResult {
        if let error = validateClassicMember(g, memberId: req.memberId, instanceId: req.groupInstanceId, generation: req.generationId) {
            return SyncResult(error: error)
        }
        let m = g.members[req.memberId]!
        let firstProtocol = m.classic!.protocols.first?.name
        if let type = req.protocolType, type != "consumer" { return SyncResult(error: .inconsistentGroupProtocol) }
        if let name = req.protocolName, name != firstProtocol { return SyncResult(error: .inconsistentGroupProtocol) }
        if g.groupEpoch > m.epoch && !m.classic!.revoking { return SyncResult(error: .rebalanceInProgress) }
        m.owned = m.sent
        scheduleModernExpiry(g, m)
        let version = Self.subscriptionVersion(m.classic!.protocols.first?.metadata)
        return SyncResult(protocolType: req.protocolType, protocolName: req.protocolName, assignment: Self.assignment(m.sent, version: version))
    }

    func mixedHeartbeat(_ g: ConsumerProtocolGroup, _ req: HeartbeatRequest) -> KafkaError {
        if let error = validateClassicMember(g, memberId: req.memberId, instanceId: req.groupInstanceId, generation: req.generationId) {
            return error
        }
        let m = g.members[req.memberId]!
        scheduleModernExpiry(g, m)
        let target = g.target[m.memberId] ?? []
        let mayTakeMore = m.sent != target && !target.subtracting(g.busyPartitions(excluding: m.memberId)).isSubset(of: m.sent)
        return m.epoch < g.groupEpoch || m.classic!.revoking || mayTakeMore ? .rebalanceInProgress : .none
    }

    /// LeaveGroup from classic members of a consumer-protocol group: each is removed (static ones
    /// too); the group epoch moves once. Never a downgrade.
    func mixedLeave(_ g: ConsumerProtocolGroup, _ leaving: [LeaveGroupRequest.MemberIdentity]) -> [LeaveGroupResponse.MemberResponse] {
        var removed = false
        let results: [LeaveGroupResponse.MemberResponse] = leaving.map { who in
            var error = KafkaError.none
            var target = who.memberId
            if let instance = who.groupInstanceId {
                if let current = g.members.values.first(where: { $0.instanceId == instance }) {
                    if !who.memberId.isEmpty && who.memberId != current.memberId { error = .fencedInstanceId } else { target = current.memberId }
                } else {
                    error = .unknownMemberId
                }
            }
            if error == .none {
                if let m = g.members[target], m.classic != nil {
                    g.members[target] = nil
                    m.sessionTimer?.cancel()
                    removed = true
                } else {
                    error = .unknownMemberId
                }
            }
            return .init(memberId: who.memberId, groupInstanceId: who.groupInstanceId, errorCode: error.rawValue)
        }
        if removed {
            g.groupEpoch &+= 1
            g.computeTarget(partitionCount: { self.topicCatalog.partitions($0) })
        }
        return results
    }

    /// Kafka's checks for SyncGroup/Heartbeat from a classic member of a consumer-protocol group:
    /// instance id before member id, a classic member, its own epoch as the generation.
    private func validateClassicMember(_ g: ConsumerProtocolGroup, memberId: String, instanceId: String?, generation: Int32) -> KafkaError? {
        if let instance = instanceId {
            guard let current = g.members.values.first(where: { $0.instanceId == instance }) else { return .unknownMemberId }
            if current.memberId != memberId { return .fencedInstanceId }
        }
        guard let m = g.members[memberId], m.classic != nil else { return .unknownMemberId }
        return generation == m.epoch ? nil : .illegalGeneration
    }

    /// Some protocol name that every classic member (and this joiner) supports.
    private static func supportsCommonProtocol(_ g: ConsumerProtocolGroup, _ names: [String]) -> Bool {
        var common = Set(names)
        for m in g.members.values { if let info = m.classic { common.formIntersection(info.protocols.map(\.name)) } }
        return !common.isEmpty
    }

    // MARK: the "consumer" protocol's embedded bytes

    static func subscriptionVersion(_ metadata: ByteBuffer?) -> Int16 {
        min(max(metadata?.getInteger(at: metadata!.readerIndex, as: Int16.self) ?? 0, 0), 3)
    }

    static func subscription(_ metadata: ByteBuffer?) -> ConsumerProtocolSubscription? {
        guard var bytes = metadata, let version = bytes.readInteger(as: Int16.self), version >= 0 else { return nil }
        return try? ConsumerProtocolSubscription(from: &bytes, version: min(version, 3))
    }

    static func partitions(inAssignment bytes: ByteBuffer) -> Set<TopicPartitionKey> {
        var bytes = bytes
        guard let version = bytes.readInteger(as: Int16.self), version >= 0,
            let decoded = try? ConsumerProtocolAssignment(from: &bytes, version: min(version, 3))
        else { return [] }
        return Set(decoded.assignedPartitions.flatMap { tp in tp.partitions.map { TopicPartitionKey(topic: tp.topic, partition: $0) } })
    }

    static func assignment(_ partitions: Set<TopicPartitionKey>, version: Int16) -> ByteBuffer {
        let byTopic = Dictionary(grouping: partitions, by: \.topic)
        var out = ByteBuffer()
        out.writeInteger(version)
        ConsumerProtocolAssignment(assignedPartitions: byTopic.keys.sorted().map {
            .init(topic: $0, partitions: byTopic[$0]!.map(\.partition).sorted())
        }).encode(to: &out, version: version)
        return out
    }
}
