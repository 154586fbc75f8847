import Foundation
import NIOCore
import TernProtocol

extension GroupCoordinator {
    /// KIP-848 ConsumerGroupHeartbeat: join (epoch 0), heartbeat, leave (epoch -1/-2). Each answer
    /// carries the member's assignment when it changed.
    public func consumerGroupHeartbeat(_ req: ConsumerGroupHeartbeatRequest, version: Int16, clientId: String, clientHost: String)
        -> EventLoopFuture<ConsumerGroupHeartbeatResponse>
    {
        loop.submit { [self] in
            func fail(_ e: KafkaError, _ message: String) -> ConsumerGroupHeartbeatResponse {
                ConsumerGroupHeartbeatResponse(errorCode: e.rawValue, errorMessage: message, memberId: req.memberId, memberEpoch: req.memberEpoch)
            }
            guard Self.isValidGroupId(req.groupId) else { return fail(.invalidGroupId, "group id is empty or longer than 32767 bytes") }
            if let classic = groups[req.groupId], !classic.members.isEmpty {
                // KIP-848 online upgrade: a new consumer-protocol member converts a live classic group.
                guard req.memberEpoch == 0, upgradeToConsumerProtocol(classic) == nil else {
                    return fail(.groupIdNotFound, "Group \(req.groupId) is not a consumer group.")
                }
            }
            if let assignor = req.serverAssignor, assignor != "uniform", assignor != "range" {
                return fail(.unsupportedAssignor, "assignor \(assignor) is not supported")
            }
            // Compiled before anything changes: an invalid pattern is refused as Kafka refuses it.
            var topicRegex: TopicRegex?
            if let regex = req.subscribedTopicRegex, !regex.isEmpty {
                do {
                    guard regex.utf8.count <= 65_536 else { throw TopicRegex.Invalid(description: "longer than 64 KiB") }
                    topicRegex = try TopicRegex(regex)
                } catch {
                    return fail(.invalidRegularExpression, "SubscribedTopicRegex `\(regex.prefix(200))` is not a valid regular expression: \(error).")
                }
            }
            loop.preconditionInEventLoop()
            if req.memberEpoch < 0 {
                // -1 leaves; -2 is a static member leaving for a while (treated as leaving here).
                // Leaving a group that does not exist creates nothing.
                if let g = modernGroups[req.groupId], g.members[req.memberId] != nil { removeModernMember(g, req.memberId) }
                return ConsumerGroupHeartbeatResponse(memberId: req.memberId, memberEpoch: req.memberEpoch)
            }
            if req.memberEpoch == 0, let g = modernGroups[req.groupId], g.members.count >= Int(config.consumerMaxSize),
                req.memberId.isEmpty || g.members[req.memberId] == nil
            {
                return fail(.groupMaxSizeReached, "The consumer group has reached its maximum capacity of \(config.consumerMaxSize) members.")
            }
            let g = modernGroups[req.groupId] ?? {
                let g = ConsumerProtocolGroup(groupId: req.groupId)
                modernGroups[req.groupId] = g
                return g
            }()
            var changed = false
            let member: ConsumerProtocolGroup.Member
            if req.memberEpoch == 0 {
                // Join (or rejoin after being fenced): start from nothing owned.
                let id = req.memberId.isEmpty ? UUID().uuidString.lowercased() : req.memberId
                if let existing = g.members[id] {
                    member = existing
                } else {
                    member = ConsumerProtocolGroup.Member(memberId: id, clientId: clientId, clientHost: clientHost)
                    g.members[id] = member
                }
                member.owned = []
                member.sent = []
                member.sentOnce = false
                changed = true
            } else {
                guard let m = g.members[req.memberId] else { return fail(.unknownMemberId, "unknown member") }
                guard req.memberEpoch == m.epoch || req.memberEpoch == m.previousEpoch else {
                    return fail(.fencedMemberEpoch, "member epoch \(req.memberEpoch) is not \(m.epoch)")
                }
                member = m
            }
            if let instance = req.instanceId { member.instanceId = instance }
            if req.rebalanceTimeoutMs > 0 { member.rebalanceTimeoutMs = req.rebalanceTimeoutMs }
            if let assignor = req.serverAssignor { member.assignor = assignor }
            if let names = req.subscribedTopicNames, Set(names) != Set(member.subscribedTopics) || member.subscribedRegex != nil {
                member.subscribedTopics = names.sorted()
                member.subscribedRegex = nil
                changed = true
            }
            if let regex = req.subscribedTopicRegex, let topicRegex {
                member.subscribedRegex = regex
                let matching = topicCatalog.names().filter { topicRegex.matches($0) }.sorted()
                if matching != member.subscribedTopics {
                    member.subscribedTopics = matching
                    changed = true
                }
            }
            if let owned = req.topicPartitions {
                member.owned = Set(owned.flatMap { tp -> [TopicPartitionKey] in
                    guard let name = topicCatalog.name(tp.topicId) else { return [] }
                    return tp.partitions.map { TopicPartitionKey(topic: name, partition: $0) }
                })
            }
            if changed {
                // Wrapping, as Kafka's int does: a member drives it (every join), and the 2^31st must not trap.
                g.groupEpoch &+= 1
                g.computeTarget(partitionCount: { self.topicCatalog.partitions($0) })
            }
            scheduleModernExpiry(g, member)
            return reconcile(g, member)
        }
    }

    /// What `member` may own now: its target minus partitions others still hold.
    private func reconcile(_ g: ConsumerProtocolGroup, _ member: ConsumerProtocolGroup.Member) -> ConsumerGroupHeartbeatResponse {
        let desired = g.target[member.memberId] ?? []
        let grant = desired.subtracting(g.busyPartitions(excluding: member.memberId))
        var response = ConsumerGroupHeartbeatResponse(
            memberId: member.memberId, memberEpoch: member.epoch, heartbeatIntervalMs: config.consumerHeartbeatIntervalMs)
        if grant != member.sent || !member.sentOnce {
            member.sent = grant
            member.sentOnce = true
            if g.groupEpoch > member.epoch {
                member.previousEpoch = member.epoch
                member.epoch = g.groupEpoch
            }
            response.memberEpoch = member.epoch
            let byTopic = Dictionary(grouping: grant, by: \.topic)
            response.assignment = .init(topicPartitions: byTopic.keys.sorted().compactMap { topic in
                guard let id = topicCatalog.id(topic) else { return nil }
                return .init(topicId: id, partitions: byTopic[topic]!.map(\.partition).sorted())
            })
        }
        return response
    }

    /// (Re)arms a member's session timer: `group.consumer.session.timeout.ms`, or a classic
    /// member's own session timeout.
    func scheduleModernExpiry(_ g: ConsumerProtocolGroup, _ m: ConsumerProtocolGroup.Member) {
        m.sessionTimer?.cancel()
        let id = m.memberId
        let timeout = m.classic?.sessionTimeoutMs ?? config.consumerSessionTimeoutMs
        m.sessionTimer = loop.scheduleTask(in: .milliseconds(Int64(timeout))) { [self] in
            guard g.members[id] === m else { return }
            logger.info("consumer-protocol member session expired", metadata: ["group": "\(g.groupId)", "member": "\(id)"])
            removeModernMember(g, id)
        }
    }

    func removeModernMember(_ g: ConsumerProtocolGroup, _ memberId: String) {
        let removed = g.members.removeValue(forKey: memberId)
        removed?.sessionTimer?.cancel()
        g.groupEpoch &+= 1
        g.computeTarget(partitionCount: { self.topicCatalog.partitions($0) })
        downgradeIfOnlyClassicMembersRemain(g, removedConsumerMember: removed != nil && removed?.classic == nil)
    }
}
