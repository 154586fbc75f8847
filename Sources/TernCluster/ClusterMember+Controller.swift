import Foundation

/// The controller's duties, run by whichever member holds the controller key: keep every
/// partition led by an eligible in-sync replica (`LeaderElection`), write topic changes, hand out
/// producer-id blocks. Every controller write is one etcd transaction that also compares the
/// controller key's create revision with the election revision this broker won: a controller that
/// lost its lease (and so its key) cannot write after another was elected.
extension ClusterMember {
    /// Re-checks leadership every second, so a write that failed while etcd was away is retried
    /// even when no new change arrives to prompt it.
    func controllerLoop() async {
        var lastBalance = ContinuousClock.now
        while !stopped && !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            guard isController else { continue }
            let balance = preferredLeaderBalancing && ContinuousClock.now - lastBalance >= preferredLeaderCheckInterval
            if balance { lastBalance = .now }
            await actAsController(balancePreferredLeaders: balance)
        }
    }

    /// Runs the controller's rules off the watch loop (a controller write waits for the watch to
    /// show it, so the watch loop must not wait for the write); requests during a pass coalesce
    /// into one more pass.
    func requestControllerPass() {
        if controllerPassRunning {
            controllerPassAgain = true
            return
        }
        controllerPassRunning = true
        Task {
            await self.runControllerPasses()
        }
    }

    private func runControllerPasses() async {
        repeat {
            controllerPassAgain = false
            if isController { await actAsController() }
        } while controllerPassAgain && !stopped
        controllerPassRunning = false
    }

    /// Writes the partition changes the current image calls for. A write that loses a race (the
    /// topic changed meanwhile) is dropped: the change that beat it arrives through the watch and
    /// the rules run again on it.
    func actAsController(balancePreferredLeaders: Bool = false) async {
        // Each record is written with the revision of the image it was computed from (the image
        // moves on while a write is awaited): a topic changed meanwhile fails the compare.
        let snapshot = image
        for record in LeaderElection.changes(in: snapshot, preferred: balancePreferredLeaders) {
            guard let revision = snapshot.topicRevisions[record.name] else { continue }
            do {
                let key = image.topicKey(record.name)
                let written = try await controllerTransaction(
                    if: [.modRevision(of: key, is: revision)], then: [.put(key, try Self.encode(record))])
                if written {
                    logger.info("partition leadership changed", metadata: ["topic": "\(record.name)", "leaders": "\(record.partitions.map(\.leader))"])
                }
            } catch {
                logger.warning("controller write failed", metadata: ["topic": "\(record.name)", "error": "\(error)"])
                return
            }
        }
    }

    /// A transaction that succeeds only while this broker is still the controller it was elected
    /// as. False when a comparison failed (including the election's).
    func controllerTransaction(if compare: [EtcdCompare], then operations: [EtcdOperation]) async throws -> Bool {
        guard isController, let election = image.controller?.electionRevision else { throw ClusterError.notController }
        let (ok, revision) = try await client.transaction(if: compare + [.createRevision(of: image.controllerKey, is: election)], then: operations)
        // Either way, let this broker's image show the outcome before the caller reads it again.
        await catchUp(to: revision)
        return ok
    }

    /// An unfenced compare-and-swap (writes any broker may make), then the same catch-up.
    func brokerTransaction(if compare: [EtcdCompare], then operations: [EtcdOperation]) async throws -> Bool {
        guard !isFenced else { throw ClusterError.fenced }
        let (ok, revision) = try await client.transaction(if: compare, then: operations)
        await catchUp(to: revision)
        return ok
    }

    /// Waits (up to 2 s) until the watch has applied every change up to `revision`, so that a
    /// retry after a lost compare-and-swap computes from the write that won. The image is only ever
    /// advanced by the watch, which keeps it in revision order.
    func catchUp(to revision: Int64) async {
        let deadline = ContinuousClock.now + .seconds(2)
        while image.revision < revision && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    static func encode<T: Encodable>(_ value: T) throws -> [UInt8] { Array(try JSONEncoder().encode(value)) }

    // MARK: topics

    /// Creates a topic. The controller's writes are fenced by its election; `byController: false`
    /// is auto-creation by any broker (as Kafka brokers auto-created topics in ZooKeeper), which
    /// only needs the name to be free.
    public func createTopic(_ record: TopicRecord, byController: Bool) async throws {
        guard !isFenced else { throw ClusterError.fenced }
        guard image.topics[record.name] == nil else { throw ClusterError.topicExists(record.name) }
        let key = image.topicKey(record.name)
        let operations: [EtcdOperation] = [.put(key, try Self.encode(record))]
        let created: Bool
        if byController {
            created = try await controllerTransaction(if: [.absent(key)], then: operations)
        } else {
            created = try await brokerTransaction(if: [.absent(key)], then: operations)
        }
        guard created else {
            if try await client.get(key) != nil { throw ClusterError.topicExists(record.name) }
            throw ClusterError.notController
        }
        logger.info("created topic", metadata: ["topic": "\(record.name)", "partitions": "\(record.partitions.count)"])
    }

    /// Replaces a topic's record (more partitions, new configs) if it is still the one `update`
    /// was computed from; `update` sees the current record. Retries a lost race a few times.
    /// `byController: false` is for changes any broker may make (topic configs, as Kafka brokers
    /// wrote them to ZooKeeper), which only need the record not to have changed meanwhile.
    public func updateTopic(_ name: String, byController: Bool = true, _ update: @Sendable (TopicRecord) throws -> TopicRecord) async throws {
        for _ in 0..<5 {
            guard let current = image.topics[name], let revision = image.topicRevisions[name] else { throw ClusterError.unknownTopic(name) }
            let key = image.topicKey(name)
            let compare: [EtcdCompare] = [.modRevision(of: key, is: revision)]
            let operations: [EtcdOperation] = [.put(key, try Self.encode(try update(current)))]
            if byController ? try await controllerTransaction(if: compare, then: operations) : try await brokerTransaction(if: compare, then: operations) {
                return
            }
        }
        throw ClusterError.conflict(name)
    }

    /// Deletes a topic; every broker deletes its replicas when the deletion reaches its image.
    public func deleteTopic(_ name: String) async throws {
        for _ in 0..<5 {
            guard let revision = image.topicRevisions[name] else { throw ClusterError.unknownTopic(name) }
            let key = image.topicKey(name)
            if try await controllerTransaction(if: [.modRevision(of: key, is: revision)], then: [.delete(key)]) {
                logger.info("deleted topic", metadata: ["topic": "\(name)"])
                return
            }
        }
        throw ClusterError.conflict(name)
    }

    // MARK: elections

    /// ElectLeaders on the controller: `partitions` nil means every partition. Each topic's
    /// changes are one fenced write; outcomes are per partition (a partition the image does not
    /// have is absent from the result).
    public func electLeaders(unclean: Bool, partitions: [String: [Int32]]?) async throws -> [String: [Int32: LeaderElection.Outcome]] {
        guard isController else { throw ClusterError.notController }
        // One image for every decision; each topic's write compares against it.
        let snapshot = image
        let eligible = { (id: Int32) in snapshot.brokers[id].map { $0.shuttingDown != true } ?? false }
        let wanted = partitions ?? snapshot.topics.mapValues { Array(0..<Int32($0.partitions.count)) }
        var outcomes: [String: [Int32: LeaderElection.Outcome]] = [:]
        for (name, indexes) in wanted.sorted(by: { $0.key < $1.key }) {
            guard let record = snapshot.topics[name], let revision = snapshot.topicRevisions[name] else { continue }
            var next = record
            var results: [Int32: LeaderElection.Outcome] = [:]
            for i in indexes where i >= 0 && Int(i) < record.partitions.count {
                let outcome = LeaderElection.elect(record.partitions[Int(i)], unclean: unclean, eligible: eligible)
                if case .elected(let state) = outcome { next.partitions[Int(i)] = state }
                results[i] = outcome
            }
            if next != record {
                let key = snapshot.topicKey(name)
                guard try await controllerTransaction(if: [.modRevision(of: key, is: revision)], then: [.put(key, try Self.encode(next))]) else {
                    throw ClusterError.conflict(name)
                }
                logger.info("leaders elected", metadata: ["topic": "\(name)", "unclean": "\(unclean)", "leaders": "\(next.partitions.map(\.leader))"])
            }
            outcomes[name] = results
        }
        return outcomes
    }

    // MARK: producer ids

    /// Reserves `count` producer ids for this broker: a compare-and-swap on one counter key, so ids
    /// never repeat across brokers or restarts.
    public func allocateProducerIds(count: Int64) async throws -> Range<Int64> {
        precondition(count > 0)
        let key = image.prefix + "producer-ids"
        for _ in 0..<20 {
            let current = try await client.get(key)
            let next = current.flatMap { Int64($0.string) } ?? 0
            let guardCompare: EtcdCompare = current.map { .modRevision(of: key, is: $0.modRevision) } ?? .absent(key)
            let (ok, _) = try await client.transaction(if: [guardCompare], then: [.put(key, Array("\(next + count)".utf8))])
            if ok { return next..<(next + count) }
        }
        throw ClusterError.conflict(key)
    }

    // MARK: controlled shutdown

    /// Kafka's controlled shutdown: marks this broker as shutting down so the controller (possibly
    /// this broker) moves every leadership it holds to another in-sync replica, and waits for that
    /// — at most `timeout` — before the caller stops serving and `stop()` revokes the lease.
    public func controlledShutdown(timeout: Duration) async {
        var updated = image.brokers[registration.nodeId] ?? registration
        updated.shuttingDown = true
        updated.epoch = 0
        guard (try? await republish(updated)) == true else { return }
        let me = registration.nodeId
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if image.brokers[me]?.shuttingDown == true && !image.replicas(on: me).contains(where: { $0.leader }) {
                logger.info("controlled shutdown: no partition led here any more", metadata: ["node": "\(me)"])
                return
            }
            if isController { await actAsController() }
            try? await Task.sleep(for: .milliseconds(100))
        }
        logger.warning("controlled shutdown timed out; leaving with leaderships", metadata: ["node": "\(me)"])
    }
}
