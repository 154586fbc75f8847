import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TernClient

/// One `tern verify` run of the queue workload: producers of unique values (idempotent,
/// acks=all, one record at a time, each to an explicit partition), consumers reading everything
/// while the nemesis injects faults, then — faults healed, writes stopped — a final read of every
/// partition to its end, and the checker over the whole history.
public struct VerifyRun {
    public struct Options: Sendable {
        public var bootstrap: String
        public var cluster: LocalCluster?
        public var durationSeconds = 60
        public var nemeses: [NemesisKind] = []
        public var seed: UInt64 = 0
        public var topic = "tern-verify"
        public var partitions: Int32 = 6
        public var producers = 4
        public var consumers = 2
        /// Sends per second over all producers (each producer also waits for its last ack).
        public var rate = 1000
        public var historyPath: String?

        public init(bootstrap: String) { self.bootstrap = bootstrap }
    }

    public struct Outcome: Sendable {
        public var check: QueueChecker.Result
        public var statistics: RunStatistics
        public var history: [HistoryEvent]
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
        let admin = makeClient("tern-verify-admin")
        do {
            try await prepareTopic(admin)
            await admin.close()
        } catch {
            await admin.close()
            throw error
        }
        log("topic \(options.topic): \(options.partitions) partitions; \(options.producers) producers, \(options.consumers) consumers, "
            + "\(options.durationSeconds) s, nemesis \(options.nemeses.map(\.rawValue).joined(separator: ",").nonEmpty ?? "none")")
        let deadline = ContinuousClock.now + .seconds(options.durationSeconds)
        let stopReading = NIOLockedValueBox(false)
        let options = self.options
        let log = self.log
        await withTaskGroup(of: Void.self) { tasks in
            for i in 0..<options.producers {
                tasks.addTask {
                    let client = makeClient("tern-verify-producer-\(i)")
                    await Self.produce(process: i, client: client, options: options, recorder: recorder, until: deadline)
                    await client.close()
                }
            }
            for j in 0..<options.consumers {
                tasks.addTask {
                    let client = makeClient("tern-verify-consumer-\(j)")
                    await Self.consume(process: options.producers + j, client: client, options: options, recorder: recorder, stop: stopReading)
                    await client.close()
                }
            }
            if let cluster = options.cluster, !options.nemeses.isEmpty {
                tasks.addTask {
                    let client = makeClient("tern-verify-nemesis")
                    var nemesis = Nemesis(
                        kinds: options.nemeses, cluster: cluster, client: client, topic: options.topic, recorder: recorder,
                        random: SeededRandom(seed: options.seed), log: log)
                    await nemesis.run(until: deadline)
                    await client.close()
                }
            }
            // Producers and the nemesis end at the deadline; then the consumers.
            try? await Task.sleep(until: deadline + .seconds(1))
            stopReading.withLockedValue { $0 = true }
        }
        log("writes stopped; reading every partition to its end")
        let drainClient = makeClient("tern-verify-drain")
        await Self.drain(process: options.producers + options.consumers, client: drainClient, options: options, recorder: recorder, log: log)
        await drainClient.close()
        let history = recorder.history
        return Outcome(check: QueueChecker.check(history), statistics: RunStatistics(history), history: history)
    }

    private func prepareTopic(_ admin: KafkaClient) async throws {
        let brokers = max(1, try await retrying("reading the cluster's brokers") { try await admin.refreshMetadata(topics: []).brokers.count })
        let factor = Int16(min(3, brokers))
        let configs = ["min.insync.replicas": factor >= 3 ? "2" : "1"]
        do {
            try await admin.createTopic(options.topic, partitions: options.partitions, replicationFactor: factor, configs: configs)
        } catch ClientError.kafka(let code, _) where code == 36 {
            throw VerifyError.setup("topic \(options.topic) exists already: pick another with --topic (the checker needs it empty)")
        }
        let partitions = options.partitions
        let topic = options.topic
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

    static func produce(process: Int, client: KafkaClient, options: Options, recorder: HistoryRecorder, until deadline: ContinuousClock.Instant) async {
        let producer = IdempotentProducer(client: client, deliveryTimeout: .seconds(20), requestTimeout: .seconds(5))
        let interval = Duration.seconds(Double(options.producers) / Double(max(options.rate, 1)))
        var next = ContinuousClock.now
        var n = 0
        while ContinuousClock.now < deadline {
            n += 1
            let value = "p\(process)-\(n)"
            let partition = Int32((n + process) % Int(options.partitions))
            recorder.record { HistoryEvent(process: process, kind: .invoke, f: "send", timeNs: $0, partition: partition, value: value) }
            let outcome = await producer.send(topic: options.topic, partition: partition, value: ByteBuffer(string: value), timestamp: Int64(Date().timeIntervalSince1970 * 1000))
            recorder.record { t in
                switch outcome {
                case .written(let offset): return HistoryEvent(process: process, kind: .ok, f: "send", timeNs: t, partition: partition, offset: offset, value: value)
                case .failed(let why): return HistoryEvent(process: process, kind: .fail, f: "send", timeNs: t, partition: partition, value: value, error: why)
                case .unknown(let why): return HistoryEvent(process: process, kind: .info, f: "send", timeNs: t, partition: partition, value: value, error: why)
                }
            }
            next += interval
            if next > ContinuousClock.now { try? await Task.sleep(until: next) } else { next = ContinuousClock.now }
        }
    }

    static func consume(process: Int, client: KafkaClient, options: Options, recorder: HistoryRecorder, stop: NIOLockedValueBox<Bool>) async {
        var reader = QueueReader(client: client, topic: options.topic, partitions: options.partitions)
        while !stop.withLockedValue({ $0 }) {
            let started = recorder.now
            let (records, errors) = await reader.poll(maxWaitMs: 200)
            if !records.isEmpty {
                recorder.record { _ in HistoryEvent(process: process, kind: .invoke, f: "read", timeNs: started) }
                recorder.record { HistoryEvent(process: process, kind: .ok, f: "read", timeNs: $0, records: records) }
            }
            if !errors.isEmpty { try? await Task.sleep(for: .milliseconds(100)) }
        }
    }

    /// Reads every partition from its start to the high watermark its leader reports now that
    /// writes have stopped — everything acknowledged is below it. Gives up after 120 s (the
    /// result is then marked incomplete: lost writes cannot be told).
    static func drain(process: Int, client: KafkaClient, options: Options, recorder: HistoryRecorder, log: @Sendable (String) -> Void) async {
        var reader = QueueReader(client: client, topic: options.topic, partitions: options.partitions)
        let deadline = ContinuousClock.now + .seconds(120)
        var lastErrors: [String] = []
        recorder.record { HistoryEvent(process: process, kind: .invoke, f: "drain", timeNs: $0) }
        var all: [ReadRecord] = []
        while ContinuousClock.now < deadline {
            let (records, errors) = await reader.poll(maxWaitMs: 100)
            all += records
            lastErrors = errors
            if errors.isEmpty && reader.caughtUp {
                recorder.record { HistoryEvent(process: process, kind: .ok, f: "drain", timeNs: $0, records: all) }
                return
            }
            if !errors.isEmpty { try? await Task.sleep(for: .milliseconds(200)) }
        }
        log("the final read did not reach the end of every partition: \(lastErrors)")
        recorder.record { HistoryEvent(process: process, kind: .info, f: "drain", timeNs: $0, records: all, error: "incomplete: \(lastErrors)") }
    }
}

extension String {
    var nonEmpty: String? { isEmpty ? nil : self }
}
