import NIOCore
import TernProtocol

extension GroupCoordinator {
    public func describeGroups(_ req: DescribeGroupsRequest, version: Int16) -> EventLoopFuture<DescribeGroupsResponse> {
        loop.submit { [self] in
            DescribeGroupsResponse(groups: req.groups.map { id in
                guard let g = group(id, create: false) else {
                    // A group that only holds offsets (committed from outside any group) is Empty.
                    if store.offsets[id] != nil { return .init(errorCode: 0, groupId: id, groupState: GroupState.empty.rawValue) }
                    // Kafka describes an unknown group as Dead (v6+ adds GROUP_ID_NOT_FOUND, KIP-1043).
                    guard version >= 6 else { return .init(errorCode: 0, groupId: id, groupState: GroupState.dead.rawValue) }
                    return .init(errorCode: KafkaError.groupIdNotFound.rawValue, errorMessage: "Group \(id) not found.", groupId: id,
                                 groupState: GroupState.dead.rawValue)
                }
                let showMembers = g.state == .stable || g.state == .completingRebalance || g.state == .preparingRebalance
                var described = DescribeGroupsResponse.DescribedGroup(
                    groupId: id, groupState: g.state.rawValue, protocolType: g.protocolType ?? "",
                    protocolData: g.state == .stable ? (g.protocolName ?? "") : "",
                    members: showMembers ? g.orderedMembers.map { m in
                        .init(memberId: m.memberId, groupInstanceId: m.instanceId, clientId: m.clientId, clientHost: m.clientHost,
                              memberMetadata: m.metadata(for: g.protocolName ?? ""), memberAssignment: m.assignment)
                    } : [])
                // v3+: what the caller may do with the group (everything: there is no authorizer).
                if version >= 3 && req.includeAuthorizedOperations { described.authorizedOperations = AuthorizedOperations.group }
                return described
            })
        }
    }

    /// ConsumerGroupDescribe (KIP-848): a consumer-protocol group's epochs, members, their current
    /// and target assignments. A classic group or an unknown id is GROUP_ID_NOT_FOUND, as in Kafka.
    public func consumerGroupDescribe(_ req: ConsumerGroupDescribeRequest, version: Int16) -> EventLoopFuture<ConsumerGroupDescribeResponse> {
        loop.submit { [self] in
            func assignment(_ partitions: Set<TopicPartitionKey>) -> ConsumerGroupDescribeResponse.Assignment {
                let byTopic = Dictionary(grouping: partitions, by: \.topic)
                return .init(topicPartitions: byTopic.keys.sorted().map { topic in
                    .init(topicId: topicCatalog.id(topic) ?? .zero, topicName: topic, partitions: byTopic[topic]!.map(\.partition).sorted())
                })
            }
            return ConsumerGroupDescribeResponse(groups: req.groupIds.map { id in
                guard let g = modernGroups[id] else {
                    let message = groups[id] == nil ? "Group \(id) not found." : "Group \(id) is not a consumer group."
                    return .init(errorCode: KafkaError.groupIdNotFound.rawValue, errorMessage: message, groupId: id)
                }
                return .init(
                    errorCode: 0, errorMessage: nil, groupId: id, groupState: g.state, groupEpoch: g.groupEpoch, assignmentEpoch: g.groupEpoch,
                    assignorName: g.members.values.contains { $0.assignor == "range" } ? "range" : "uniform",
                    members: g.members.keys.sorted().map { memberId in
                        let m = g.members[memberId]!
                        return .init(
                            memberId: memberId, instanceId: m.instanceId, rackId: nil, memberEpoch: m.epoch, clientId: m.clientId,
                            clientHost: m.clientHost, subscribedTopicNames: m.subscribedTopics, subscribedTopicRegex: m.subscribedRegex,
                            assignment: assignment(m.sent), targetAssignment: assignment(g.target[memberId] ?? []),
                            // v1: a classic member inside a consumer group (KIP-848 migration) is 0.
                            memberType: m.classic != nil ? 0 : 1)
                    },
                    authorizedOperations: req.includeAuthorizedOperations ? AuthorizedOperations.group : AuthorizedOperations.notRequested)
            })
        }
    }

    public func listGroups(_ req: ListGroupsRequest, version: Int16) -> EventLoopFuture<ListGroupsResponse> {
        loop.submit { [self] in
            // Groups that only hold offsets are listed too (Empty), as Kafka does.
            var ids = Set(groups.keys)
            ids.formUnion(store.offsets.keys)
            ids.formUnion(modernGroups.filter { !$0.value.members.isEmpty }.keys)
            let states = Set(req.statesFilter.map { $0.lowercased() })
            let types = Set(req.typesFilter.map { $0.lowercased() })
            let listed: [ListGroupsResponse.ListedGroup] = ids.sorted().compactMap { id in
                if let modern = modernGroups[id], !modern.members.isEmpty {
                    guard states.isEmpty || states.contains(modern.state.lowercased()) else { return nil }
                    guard types.isEmpty || types.contains("consumer") else { return nil }
                    return .init(groupId: id, protocolType: "consumer", groupState: modern.state, groupType: "consumer")
                }
                let g = groups[id]
                let state = g?.state ?? .empty
                guard states.isEmpty || states.contains(state.rawValue.lowercased()) else { return nil }
                guard types.isEmpty || types.contains("classic") else { return nil }
                return .init(groupId: id, protocolType: g?.protocolType ?? "", groupState: state.rawValue, groupType: "classic")
            }
            return ListGroupsResponse(groups: listed)
        }
    }

    public func deleteGroups(_ req: DeleteGroupsRequest, version: Int16) -> EventLoopFuture<DeleteGroupsResponse> {
        loop.flatSubmit { [self] in
            var results: [EventLoopFuture<DeleteGroupsResponse.DeletableGroupResult>] = []
            for id in req.groupsNames {
                let g = groups[id]
                if g == nil && store.offsets[id] == nil {
                    results.append(loop.makeSucceededFuture(.init(groupId: id, errorCode: KafkaError.groupIdNotFound.rawValue)))
                } else if let g, !g.members.isEmpty {
                    results.append(loop.makeSucceededFuture(.init(groupId: id, errorCode: KafkaError.nonEmptyGroup.rawValue)))
                } else {
                    let tombstones = (store.offsets[id] ?? [:]).keys.map { ($0, CommittedOffset?.none) }
                    results.append(persist(group: id, tombstones).flatMap { [self] ok in
                        guard ok, store.generations[id] != nil else { return loop.makeSucceededFuture(ok) }
                        return forgetGeneration(id)
                    }.map { [self] ok in
                        if ok { groups[id] = nil }
                        return .init(groupId: id, errorCode: (ok ? KafkaError.none : .coordinatorNotAvailable).rawValue)
                    })
                }
            }
            return EventLoopFuture.whenAllSucceed(results, on: loop).map { DeleteGroupsResponse(results: $0) }
        }
    }
}

extension GroupCoordinator {
    /// Calls back with the number of groups (classic and consumer protocol) with members or offsets.
    public func groupCount(_ report: @escaping @Sendable (Int) -> Void) {
        loop.execute { [self] in
            var ids = Set(groups.keys)
            ids.formUnion(store.offsets.keys)
            ids.formUnion(modernGroups.filter { !$0.value.members.isEmpty }.keys)
            report(ids.count)
        }
    }
}
