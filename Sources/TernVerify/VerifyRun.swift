import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TernClient

/// The workloads `tern verify` runs (several at once, on topics of their own).
public enum Workload: String, CaseIterable, Sendable, Codable {
    /// Idempotent acks=all producers of unique values; read_uncommitted consumers.
    case queue
    /// Transactions over several partitions, committed or aborted; read_committed consumers.
    case txn
    /// Members of a consumer group joining, leaving, crashing and lingering while committing.
    case groups
}

/// One `tern verify` run: the workloads' producers and consumers while the nemesis injects
/// faults, then — faults healed, writes stopped — a final read of every partition to its end, and
/// each workload's checker over the whole history.
public struct VerifyRun {
    public struct Options: Sendable {
        public var bootstrap: String
        public var cluster: LocalCluster?
        public var workloads: [Workload] = [.queue]
        public var durationSeconds = 60
        public var nemeses: [NemesisKind] = []
        public var seed: UInt64 = 0
        /// The queue workload's topic; the transactional one uses `<topic>-txn`.
        public var topic = "tern-verify"
        public var partitions: Int32 = 6
        /// Workers per workload.
        public var producers = 4
        public var consumers = 2
        /// Records per second over all producers of each workload.
        public var rate = 1000
        /// The queue workload's records per partition written back to back before their answers
        /// are read (librdkafka keeps up to five batches per partition in flight): a failed
        /// write then fails those behind it too, a path one-at-a-time sends never reach.
        public var pipeline = 4
        public var historyPath: String?

        public init(bootstrap: String) { self.bootstrap = bootstrap }

        var txnTopic: String { topic + "-txn" }
        var groupsTopic: String { topic + "-groups" }
        var groupId: String { "\(topic)-group-\(seed)" }
        func transactionalId(_ process: Int) -> String { "tern-verify-\(seed)-\(process)" }

        /// What the workloads need coordinators for: the nemesis aims at their coordinators too.
        var coordinated: [Nemesis.Coordinated] {
            workloads.flatMap { workload -> [Nemesis.Coordinated] in
                switch workload {
                case .queue: []
                case .txn: (0..<producers).map { .transaction(transactionalId(Process.txnProducer + $0)) }
                case .groups: [.group(groupId)]
                }
            }
        }

        func topic(of workload: Workload) -> String {
            switch workload {
            case .queue: topic
            case .txn: txnTopic
            case .groups: groupsTopic
            }
        }
    }

    public struct Outcome: Sendable {
        public var queue: QueueChecker.Result?
        public var txn: TxnChecker.Result?
        public var groups: GroupsChecker.Result?
        /// Replicas of a local cluster that are not identical at the end.
        public var replicas: [Violation]
        public var statistics: RunStatistics
        public var history: [HistoryEvent]
    }

    /// Process ids in the history, per role (a worker's id is its base plus its index).
    enum Process {
        static let queueProducer = 0
        static let queueConsumer = 100
        static let txnProducer = 200
        static let txnConsumer = 300
        static let groupMember = 400
        static let queueDrain = 900
        static let txnDrain = 901
        static let groupsDrain = 902
    }

    let options: Options
    let log: @Sendable (String) -> Void

    public init(options: Options, log: @escaping @Sendable (String) -> Void) {
        self.options = options
        self.log = log
    }

    public func run() async throws -> Outcome {
        let recorder = try HistoryRecorder(path: options.historyPath)
        defer { recorder.close() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        do {
            let outcome = try await run(recorder: recorder, group: group)
            try? await group.shutdownGracefully()
            return outcome
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    private func run(recorder: HistoryRecorder, group: EventLoopGroup) async throws -> Outcome {
        let servers = options.bootstrap.split(separator: ",").map(String.init)
        let makeClient = { @Sendable (name: String) in KafkaClient(bootstrap: servers, clientId: name, group: group, requestTimeout: .seconds(5)) }
        let options = self.options
        let log = self.log
        let topics = options.workloads.map(options.topic(of:))
        let admin = makeClient("tern-verify-admin")
        do {
            for topic in topics { try await prepareTopic(topic, admin) }
            await admin.close()
        } catch {
            await admin.close()
            throw error
        }
        log("workloads \(options.workloads.map(\.rawValue).joined(separator: ",")) on \(topics.joined(separator: ", ")) (\(options.partitions) partitions each); "
            + "\(options.producers) producers (group members) and \(options.consumers) consumers each; \(options.durationSeconds) s; nemesis "
            + (options.nemeses.map(\.rawValue).joined(separator: ",").nonEmpty ?? "none"))
        let deadline = ContinuousClock.now + .seconds(options.durationSeconds)
        let stopReading = NIOLockedValueBox(false)
        await withTaskGroup(of: Void.self) { tasks in
            for workload in options.workloads {
                for i in 0..<options.producers {
                    tasks.addTask {
                        let client = makeClient("tern-verify-\(workload.rawValue)-producer-\(i)")
                        switch workload {
                        case .queue:
                            await QueueWorkload.produce(process: Process.queueProducer + i, client: client, options: options, recorder: recorder, until: deadline)
                        case .txn:
                            await TxnWorkload.transact(process: Process.txnProducer + i, client: client, options: options, recorder: recorder, until: deadline)
                        case .groups:
                            await GroupsWorkload.member(process: Process.groupMember + i, client: client, options: options, recorder: recorder, until: deadline)
                        }
                        await client.close()
                    }
                }
                for j in 0..<(workload == .groups ? 0 : options.consumers) {
                    tasks.addTask {
                        let client = makeClient("tern-verify-\(workload.rawValue)-consumer-\(j)")
                        let process = (workload == .queue ? Process.queueConsumer : Process.txnConsumer) + j
                        await Self.consume(workload, process: process, client: client, options: options, recorder: recorder, stop: stopReading)
                        await client.close()
                    }
                }
            }
            if let cluster = options.cluster, !options.nemeses.isEmpty {
                tasks.addTask {
                    let client = makeClient("tern-verify-nemesis")
                    var nemesis = Nemesis(
                        kinds: options.nemeses, cluster: cluster, client: client, topic: topics[0], coordinated: options.coordinated, recorder: recorder,
                        random: SeededRandom(seed: options.seed), log: log)
                    await nemesis.run(until: deadline)
                    await client.close()
                }
            }
            // Producers and the nemesis end at the deadline; then the consumers.
            try? await Task.sleep(until: deadline)
            recorder.record { HistoryEvent(process: HistoryEvent.harness, kind: .ok, f: "stop", timeNs: $0) }
            try? await Task.sleep(until: deadline + .seconds(1))
            stopReading.withLockedValue { $0 = true }
        }
        log("writes stopped; reading every partition to its end")
        for workload in options.workloads {
            let client = makeClient("tern-verify-\(workload.rawValue)-drain")
            if workload == .groups {
                await GroupsWorkload.drain(client: client, options: options, recorder: recorder, log: log)
            } else {
                await Self.drain(workload, client: client, options: options, recorder: recorder, log: log)
            }
            await client.close()
        }
        // A local cluster's replicas, compared file by file: consumers read only leaders.
        var replicaViolations: [Violation] = []
        if let cluster = options.cluster {
            let now = recorder.now
            for topic in topics {
                for difference in cluster.replicaDifferences(topic: topic, partitions: options.partitions) {
                    log("replicas differ: \(difference)")
                    replicaViolations.append(Violation(kind: .offsetReused, message: difference, events: [], timeNs: now))
                }
            }
        }
        let history = recorder.history
        return Outcome(
            queue: options.workloads.contains(.queue) ? QueueChecker.check(history) : nil,
            txn: options.workloads.contains(.txn) ? TxnChecker.check(history) : nil,
            groups: options.workloads.contains(.groups) ? GroupsChecker.check(history) : nil,
            replicas: replicaViolations, statistics: RunStatistics(history), history: history)
    }

    /// A consumer during the run: every poll that returned records is one `read` (`txn-read`).
    static func consume(
        _ workload: Workload, process: Int, client: KafkaClient, options: Options, recorder: HistoryRecorder, stop: NIOLockedValueBox<Bool>
    ) async {
        let f = workload == .queue ? "read" : "txn-read"
        var reader = QueueReader(
            client: client, topic: workload == .queue ? options.topic : options.txnTopic, partitions: options.partitions,
            readCommitted: workload == .txn)
        while !stop.withLockedValue({ $0 }) {
            let started = recorder.now
            let (records, errors) = await reader.poll(maxWaitMs: 200)
            if !records.isEmpty {
                recorder.record { _ in HistoryEvent(process: process, kind: .invoke, f: f, timeNs: started) }
                recorder.record { HistoryEvent(process: process, kind: .ok, f: f, timeNs: $0, records: records) }
            }
            if !errors.isEmpty { try? await Task.sleep(for: .milliseconds(100)) }
        }
    }

    /// Reads every partition from its start to its end now that writes have stopped and the
    /// faults are healed. The end is only known once the cluster has settled — every replica back
    /// in the ISR, so a leader's high watermark is its log end (a new leader's may trail until its
    /// followers fetch) — and, read_committed, every transaction has ended (the last stable offset
    /// is the high watermark: markers may still be being retried). Gives up after 120 s: the result
    /// is then marked incomplete, and lost writes cannot be told.
    static func drain(_ workload: Workload, client: KafkaClient, options: Options, recorder: HistoryRecorder, log: @Sendable (String) -> Void) async {
        let f = workload == .queue ? "drain" : "txn-drain"
        let process = workload == .queue ? Process.queueDrain : Process.txnDrain
        let topic = workload == .queue ? options.topic : options.txnTopic
        var reader = QueueReader(client: client, topic: topic, partitions: options.partitions, readCommitted: workload == .txn)
        let deadline = ContinuousClock.now + .seconds(120)
        var lastErrors: [String] = []
        recorder.record { HistoryEvent(process: process, kind: .invoke, f: f, timeNs: $0) }
        var all: [ReadRecord] = []
        var settled = false
        var confirmed = false
        while ContinuousClock.now < deadline {
            if !settled {
                settled = await Self.isSettled(topic, client: client)
                if !settled {
                    lastErrors = ["\(topic) has partitions whose replicas are not all in sync yet"]
                    try? await Task.sleep(for: .milliseconds(500))
                    continue
                }
            }
            let (records, errors) = await reader.poll(maxWaitMs: 100)
            all += records
            lastErrors = errors
            if errors.isEmpty && reader.caughtUp && reader.transactionsEnded {
                // Once more half a second later, to nothing new: a high watermark still catching
                // up with its log end would show more.
                if confirmed && records.isEmpty {
                    recorder.record { HistoryEvent(process: process, kind: .ok, f: f, timeNs: $0, records: all) }
                    return
                }
                confirmed = true
                try? await Task.sleep(for: .milliseconds(500))
                continue
            }
            confirmed = false
            if !errors.isEmpty { try? await Task.sleep(for: .milliseconds(200)) }
        }
        log("the final read of the \(workload.rawValue) workload did not reach the end of every partition: \(lastErrors)")
        recorder.record { HistoryEvent(process: process, kind: .info, f: f, timeNs: $0, records: all, error: "incomplete: \(lastErrors)") }
    }

    /// Every partition of `topic` has a leader and all its replicas in the ISR.
    static func isSettled(_ topic: String, client: KafkaClient) async -> Bool {
        guard let md = try? await client.refreshMetadata(topics: [topic]), let t = md.topics.first, !t.partitions.isEmpty else { return false }
        return t.partitions.allSatisfy { $0.leaderId >= 0 && Set($0.isrNodes) == Set($0.replicaNodes) }
    }

    private func prepareTopic(_ topic: String, _ admin: KafkaClient) async throws {
        let brokers = max(1, try await retrying("reading the cluster's brokers") { try await admin.refreshMetadata(topics: []).brokers.count })
        let factor = Int16(min(3, brokers))
        let configs = ["min.insync.replicas": factor >= 3 ? "2" : "1"]
        do {
            try await admin.createTopic(topic, partitions: options.partitions, replicationFactor: factor, configs: configs)
        } catch ClientError.kafka(let code, _) where code == 36 {
            throw VerifyError.setup("topic \(topic) exists already: pick another with --topic (the checker needs it empty)")
        }
        let partitions = options.partitions
        _ = try await retrying("waiting for a leader of every partition") {
            let md = try await admin.refreshMetadata(topics: [topic])
            guard let t = md.topics.first, t.partitions.count == Int(partitions), t.partitions.allSatisfy({ $0.leaderId >= 0 }) else {
                throw VerifyError.setup("partitions without a leader")
            }
            return true
        }
    }

    private func retrying<T>(_ what: String, _ body: () async throws -> T) async throws -> T {
        let deadline = ContinuousClock.now + .seconds(60)
        var last: Error = VerifyError.setup(what)
        while ContinuousClock.now < deadline {
            do { return try await body() } catch { last = error }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw VerifyError.setup("\(what): \(last)")
    }
}

extension String {
    var nonEmpty: String? { isEmpty ? nil : self }
}
