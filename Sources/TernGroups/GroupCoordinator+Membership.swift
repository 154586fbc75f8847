import NIOCore
import TernProtocol

extension GroupCoordinator {
    public func joinGroup(_ req: JoinGroupRequest, version: Int16, clientId: String, clientHost: String) -> EventLoopFuture<JoinGroupResponse> {
        loop.flatSubmit { [self] in
            join(req, version: version, clientId: clientId, clientHost: clientHost).map { r in
                JoinGroupResponse(
                    errorCode: r.error.rawValue, generationId: r.generationId, protocolType: r.protocolType,
                    protocolName: r.protocolName, leader: r.leaderId, skipAssignment: r.skipAssignment, memberId: r.memberId,
                    members: r.members.map { .init(memberId: $0.memberId, groupInstanceId: $0.instanceId, metadata: $0.metadata) })
            }
        }
    }

    private func join(_ req: JoinGroupRequest, version: Int16, clientId: String, clientHost: String) -> EventLoopFuture<JoinResult> {
        func fail(_ e: KafkaError, memberId: String? = nil) -> EventLoopFuture<JoinResult> {
            loop.makeSucceededFuture(JoinResult(error: e, memberId: memberId ?? req.memberId))
        }
        guard Self.isValidGroupId(req.groupId) else { return fail(.invalidGroupId) }
        guard req.sessionTimeoutMs >= config.minSessionTimeoutMs, req.sessionTimeoutMs <= config.maxSessionTimeoutMs else {
            return fail(.invalidSessionTimeout)
        }
        guard !req.protocolType.isEmpty, !req.protocols.isEmpty else { return fail(.inconsistentGroupProtocol) }
        // v0 has no rebalance timeout: it equals the session timeout.
        let rebalanceTimeout = version == 0 || req.rebalanceTimeoutMs <= 0 ? req.sessionTimeoutMs : req.rebalanceTimeoutMs
        if let modern = modernGroups[req.groupId], !modern.members.isEmpty {
            return loop.makeSucceededFuture(mixedJoin(modern, req, version: version, clientId: clientId, clientHost: clientHost,
                                                      rebalanceTimeout: rebalanceTimeout))
        }
        let g = group(req.groupId, create: true)!
        guard acceptsJoiningMember(g, req.memberId) else {
            // As Kafka: a member turned away is out of the group, and told so with no member id.
            if g.members[req.memberId] != nil { removeMember(g, req.memberId, reason: "group.max.size reached") }
            return fail(.groupMaxSizeReached, memberId: "")
        }
        let protocols = req.protocols.map { (name: $0.name, metadata: $0.metadata) }
        // A member must speak the group's protocol type and share an assignor with everyone.
        if !g.members.isEmpty {
            let names = Set(protocols.map(\.name))
            if g.protocolType.map({ $0 != req.protocolType }) ?? false || g.commonProtocols.isDisjoint(with: names) {
                return fail(.inconsistentGroupProtocol)
            }
        }
        if req.memberId.isEmpty {
            let newId = Self.newMemberId(clientId: clientId)
            if let instance = req.groupInstanceId, let oldId = g.staticMembers[instance], let old = g.members[oldId] {
                return rejoinStatic(g, old: old, newId: newId, protocols: protocols, sessionTimeout: req.sessionTimeoutMs,
                                    rebalanceTimeout: rebalanceTimeout, version: version)
            }
            if req.groupInstanceId == nil && version >= 4 {
                // KIP-394: hand out the id first; the member rejoins with it.
                let memberId = newId
                g.pendingMembers[memberId] = loop.scheduleTask(in: .milliseconds(Int64(req.sessionTimeoutMs))) { [self] in
                    g.pendingMembers[memberId] = nil
                    checkJoinComplete(g)
                }
                return fail(.memberIdRequired, memberId: memberId)
            }
            let member = GroupMember(
                memberId: newId, instanceId: req.groupInstanceId, clientId: clientId, clientHost: clientHost,
                sessionTimeoutMs: req.sessionTimeoutMs, rebalanceTimeoutMs: rebalanceTimeout,
                protocolType: req.protocolType, protocols: protocols)
            g.add(member)
            let promise = loop.makePromise(of: JoinResult.self)
            member.joinPromise = promise
            prepareRebalance(g, reason: "new member \(newId)")
            return promise.futureResult
        }

        if let pending = g.pendingMembers.removeValue(forKey: req.memberId) {
            pending.cancel()
            let member = GroupMember(
                memberId: req.memberId, instanceId: req.groupInstanceId, clientId: clientId, clientHost: clientHost,
                sessionTimeoutMs: req.sessionTimeoutMs, rebalanceTimeoutMs: rebalanceTimeout,
                protocolType: req.protocolType, protocols: protocols)
            g.add(member)
            let promise = loop.makePromise(of: JoinResult.self)
            member.joinPromise = promise
            if g.state == .preparingRebalance { checkJoinComplete(g) } else { prepareRebalance(g, reason: "new member \(req.memberId)") }
            return promise.futureResult
        }

        if let error = validateMember(g, memberId: req.memberId, instanceId: req.groupInstanceId) { return fail(error) }
        let member = g.members[req.memberId]!
        let changed = !member.sameProtocols(as: protocols)
        member.protocols = protocols
        member.sessionTimeoutMs = req.sessionTimeoutMs
        member.rebalanceTimeoutMs = rebalanceTimeout
        switch g.state {
        case .preparingRebalance:
            member.joinPromise?.succeed(JoinResult(error: .unknownMemberId, memberId: member.memberId))
            let promise = loop.makePromise(of: JoinResult.self)
            member.joinPromise = promise
            member.sessionTimer?.cancel()
            checkJoinComplete(g)
            return promise.futureResult
        case .completingRebalance, .stable:
            // Kafka's rules: a changed subscription always rebalances; the leader rejoining a
            // stable group does too (it may have seen topic metadata change); a member that
            // rejoins unchanged while the group awaits SyncGroup only missed its JoinGroup
            // answer, and gets it again — rebalancing there can loop forever with clients that
            // rejoin on a stale heartbeat answer.
            if changed || (member.memberId == g.leaderId && g.state == .stable) {
                let promise = loop.makePromise(of: JoinResult.self)
                member.joinPromise = promise
                member.sessionTimer?.cancel()
                prepareRebalance(g, reason: "member \(member.memberId) rejoined")
                return promise.futureResult
            }
            scheduleSessionExpiry(g, member)
            return loop.makeSucceededFuture(currentJoinResult(g, for: member.memberId))
        case .empty, .dead:
            return fail(.unknownMemberId)
        }
    }

    /// Kafka's `acceptJoiningMember` (`group.max.size`): an empty group takes anyone; while members
    /// gather, a member already waiting to join is kept and others are counted against those
    /// waiting (the group may be over a lowered limit, and the last to rejoin are the ones turned
    /// away); otherwise members stay and newcomers fill what is left. Pending member ids
    /// (MEMBER_ID_REQUIRED) do not count: they expire with their session timeout.
    private func acceptsJoiningMember(_ g: ConsumerGroup, _ memberId: String) -> Bool {
        let limit = Int(config.maxSize)
        switch g.state {
        case .empty, .dead:
            return true
        case .preparingRebalance:
            // Those waiting are among the members: counting them (a walk) only matters at the limit.
            if g.members.count < limit { return true }
            if let m = g.members[memberId], m.joinPromise != nil { return true }
            return g.members.values.filter { $0.joinPromise != nil }.count < limit
        case .completingRebalance, .stable:
            return g.members[memberId] != nil || g.members.count < limit
        }
    }

    /// KIP-345: a static member restarting (empty member id, known instance id) takes over its
    /// old identity. The old member id is fenced. In a stable group, if the member still supports
    /// the protocol the group chose, nothing is rebalanced — leader or follower, as Kafka does: the
    /// member gets the current generation back (a leader on JoinGroup v9+ with the member list and
    /// `skip_assignment`; before v9 it is told the old leader id, so it syncs as a follower and
    /// receives the assignment it had).
    private func rejoinStatic(_ g: ConsumerGroup, old: GroupMember, newId: String, protocols: [(name: String, metadata: ByteBuffer)],
                              sessionTimeout: Int32, rebalanceTimeout: Int32, version: Int16) -> EventLoopFuture<JoinResult> {
        let oldId = old.memberId
        old.joinPromise?.succeed(JoinResult(error: .fencedInstanceId, memberId: oldId))
        old.joinPromise = nil
        old.syncPromise?.succeed(SyncResult(error: .fencedInstanceId))
        old.syncPromise = nil
        old.sessionTimer?.cancel()
        // As Kafka does: the rejoin needs no rebalance if the member still supports the protocol
        // the group chose (its metadata bytes may differ: clients put generation and owned
        // partitions in there).
        let unchanged = g.protocolName.map { name in protocols.contains { $0.name == name } } ?? false
        let leaderBefore = g.leaderId ?? ""
        g.members[oldId] = nil
        old.memberId = newId
        old.protocols = protocols
        old.sessionTimeoutMs = sessionTimeout
        old.rebalanceTimeoutMs = rebalanceTimeout
        g.members[newId] = old
        if let i = g.joinOrder.firstIndex(of: oldId) { g.joinOrder[i] = newId }
        if let instance = old.instanceId { g.staticMembers[instance] = newId }
        let wasLeader = leaderBefore == oldId
        if wasLeader { g.leaderId = newId }
        logger.info("static member rejoined", metadata: ["group": "\(g.groupId)", "instance": "\(old.instanceId ?? "")", "leader": "\(wasLeader)"])
        if g.state == .stable && unchanged {
            scheduleSessionExpiry(g, old)
            var result = currentJoinResult(g, for: newId)
            if !wasLeader || version < 9 {
                result.members = []
                result.leaderId = wasLeader ? leaderBefore : result.leaderId
            } else {
                result.skipAssignment = true
            }
            return loop.makeSucceededFuture(result)
        }
        let promise = loop.makePromise(of: JoinResult.self)
        old.joinPromise = promise
        if g.state == .preparingRebalance { checkJoinComplete(g) } else { prepareRebalance(g, reason: "static member \(newId) rejoined") }
        return promise.futureResult
    }

    /// Kafka's `validateMember`: the instance id is checked first, so a member replaced by a newer
    /// instance of the same static member is told it is fenced (and stops) rather than unknown
    /// (and rejoins, fencing the newer one in turn).
    func validateMember(_ g: ConsumerGroup, memberId: String, instanceId: String?) -> KafkaError? {
        if let instance = instanceId {
            guard let current = g.staticMembers[instance] else { return .unknownMemberId }
            if current != memberId { return .fencedInstanceId }
        }
        return g.members[memberId] == nil ? .unknownMemberId : nil
    }

    private func currentJoinResult(_ g: ConsumerGroup, for memberId: String) -> JoinResult {
        let protocolName = g.protocolName ?? ""
        return JoinResult(
            generationId: g.generationId, protocolType: g.protocolType, protocolName: g.protocolName,
            leaderId: g.leaderId ?? "", memberId: memberId,
            members: memberId == g.leaderId ? g.orderedMembers.map { ($0.memberId, $0.instanceId, $0.metadata(for: protocolName)) } : [])
    }

    public func syncGroup(_ req: SyncGroupRequest, version: Int16) -> EventLoopFuture<SyncGroupResponse> {
        loop.flatSubmit { [self] in
            sync(req).map { r in
                SyncGroupResponse(errorCode: r.error.rawValue, protocolType: r.protocolType, protocolName: r.protocolName, assignment: r.assignment)
            }
        }
    }

    private func sync(_ req: SyncGroupRequest) -> EventLoopFuture<SyncResult> {
        func fail(_ e: KafkaError) -> EventLoopFuture<SyncResult> { loop.makeSucceededFuture(SyncResult(error: e)) }
        if groups[req.groupId] == nil, let modern = modernGroups[req.groupId], !modern.members.isEmpty {
            return loop.makeSucceededFuture(mixedSync(modern, req))
        }
        guard let g = group(req.groupId, create: false) else { return fail(.unknownMemberId) }
        if let error = validateMember(g, memberId: req.memberId, instanceId: req.groupInstanceId) { return fail(error) }
        let member = g.members[req.memberId]!
        guard req.generationId == g.generationId else { return fail(.illegalGeneration) }
        if let type = req.protocolType, type != g.protocolType { return fail(.inconsistentGroupProtocol) }
        if let name = req.protocolName, name != g.protocolName { return fail(.inconsistentGroupProtocol) }
        switch g.state {
        case .preparingRebalance:
            return fail(.rebalanceInProgress)
        case .completingRebalance:
            let promise = loop.makePromise(of: SyncResult.self)
            member.syncPromise?.succeed(SyncResult(error: .rebalanceInProgress))
            member.syncPromise = promise
            scheduleSessionExpiry(g, member)
            if member.memberId == g.leaderId {
                for a in req.assignments { g.members[a.memberId]?.assignment = a.assignment }
                // Stable — members answered — only once the generation is durable (Kafka stores
                // the group then too): a coordinator taking over must not hand it out again.
                let generation = g.generationId
                persistGeneration(g).whenSuccess { [self] written in
                    guard groups[g.groupId] === g, g.state == .completingRebalance, g.generationId == generation else { return }
                    guard written else {
                        // As Kafka: the members get the write's error, then the group rebalances.
                        // Answered REBALANCE_IN_PROGRESS they would rejoin at once and, the write
                        // failing again, make thousands of generations a second; this error
                        // sends them to look the coordinator up again first.
                        for m in g.members.values {
                            m.syncPromise?.succeed(SyncResult(error: .coordinatorNotAvailable))
                            m.syncPromise = nil
                        }
                        return prepareRebalance(g, reason: "the group's generation could not be written")
                    }
                    g.state = .stable
                    g.rebalanceTimer?.cancel()
                    for m in g.members.values {
                        m.syncPromise?.succeed(SyncResult(protocolType: g.protocolType, protocolName: g.protocolName, assignment: m.assignment))
                        m.syncPromise = nil
                    }
                }
            }
            return promise.futureResult
        case .stable:
            scheduleSessionExpiry(g, member)
            return loop.makeSucceededFuture(SyncResult(protocolType: g.protocolType, protocolName: g.protocolName, assignment: member.assignment))
        case .empty, .dead:
            return fail(.unknownMemberId)
        }
    }

    public func heartbeat(_ req: HeartbeatRequest, version: Int16) -> EventLoopFuture<HeartbeatResponse> {
        loop.submit { [self] in
            let error: KafkaError
            if groups[req.groupId] == nil, let modern = modernGroups[req.groupId], !modern.members.isEmpty {
                error = mixedHeartbeat(modern, req)
            } else if let g = group(req.groupId, create: false) {
                if let invalid = validateMember(g, memberId: req.memberId, instanceId: req.groupInstanceId) {
                    error = invalid
                } else if req.generationId != g.generationId {
                    error = .illegalGeneration
                } else {
                    scheduleSessionExpiry(g, g.members[req.memberId]!)
                    // A rebalance tells members to rejoin through their heartbeats.
                    error = g.state == .preparingRebalance ? .rebalanceInProgress : .none
                }
            } else {
                error = .unknownMemberId
            }
            return HeartbeatResponse(errorCode: error.rawValue)
        }
    }

    public func leaveGroup(_ req: LeaveGroupRequest, version: Int16) -> EventLoopFuture<LeaveGroupResponse> {
        loop.submit { [self] in
            // v0-2 name one member; v3+ a batch, each by member id and/or instance id.
            let leaving = version < 3 ? [LeaveGroupRequest.MemberIdentity(memberId: req.memberId)] : req.members
            if groups[req.groupId] == nil, let modern = modernGroups[req.groupId], !modern.members.isEmpty {
                let results = mixedLeave(modern, leaving)
                if version < 3 { return LeaveGroupResponse(errorCode: results.first?.errorCode ?? 0) }
                return LeaveGroupResponse(errorCode: 0, members: results)
            }
            guard let g = group(req.groupId, create: false) else {
                return LeaveGroupResponse(
                    errorCode: KafkaError.unknownMemberId.rawValue,
                    members: version < 3 ? [] : leaving.map { .init(memberId: $0.memberId, groupInstanceId: $0.groupInstanceId, errorCode: KafkaError.unknownMemberId.rawValue) })
            }
            var results: [LeaveGroupResponse.MemberResponse] = []
            for who in leaving {
                var error = KafkaError.none
                var target: String? = who.memberId.isEmpty ? nil : who.memberId
                if let instance = who.groupInstanceId {
                    let current = g.staticMembers[instance]
                    if let t = target, current != t { error = .fencedInstanceId } else { target = current }
                }
                if error == .none {
                    if let t = target, g.members[t] != nil {
                        removeMember(g, t, reason: "member left")
                    } else {
                        error = .unknownMemberId
                    }
                }
                results.append(.init(memberId: who.memberId, groupInstanceId: who.groupInstanceId, errorCode: error.rawValue))
            }
            if version < 3 { return LeaveGroupResponse(errorCode: results.first?.errorCode ?? 0) }
            return LeaveGroupResponse(errorCode: 0, members: results)
        }
    }
}
