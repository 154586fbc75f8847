import ArgumentParser
import Foundation
import TernVerify

struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check that no acknowledged record is lost, duplicated or reordered while faults are injected.",
        discussion: """
            Runs workloads — queue: idempotent acks=all producers of unique values and consumers reading \
            everything; txn: transactions over several partitions, committed or aborted, and read_committed \
            consumers; groups: consumer-group members joining, leaving, crashing and lingering as zombies \
            while committing offsets — against --brokers (any Kafka-compatible cluster) or a cluster it starts itself \
            (--local-cluster N: etcd and N Tern brokers on loopback), injecting faults into the latter \
            (--nemesis kill,pause,etcd,disk-full,partition,clock; disk-full and partition need root, clock \
            libTernClockShim.so beside tern). Afterwards every partition is read to its end and the history is \
            checked: lost acknowledged writes, duplicates, reordering, offsets reused for other values, \
            records that vanished after a consumer read them, records nobody sent, aborted or not yet \
            committed transactional records read with read_committed, transactions partly visible, two \
            members given one partition in a generation, committed offsets going backwards. Exit status: 0 when \
            nothing was found, 1 on a violation, 2 when the run could not be checked.
            """)

    @Option(name: [.customShort("b"), .long], help: "Comma-separated host:port list of a running cluster.")
    var brokers: String?
    @Option(name: .customLong("local-cluster"), help: "Start etcd and this many Tern brokers on loopback instead.")
    var localCluster: Int?
    @Option(name: .long, help: "Seconds of workload (faults included).") var duration = 60
    @Option(name: .long, help: "Workloads: queue, txn, groups (comma-separated).") var workload = "queue"
    @Option(name: .long, help: "Faults to inject into a local cluster: kill, pause, etcd, disk-full, partition, clock (comma-separated).") var nemesis = ""
    @Option(name: .long, help: "Seed of the fault schedule (default: random, printed).") var seed: UInt64?
    @Option(name: .long, help: "Write an HTML report here.") var report: String?
    @Option(name: .long, help: "Write the JSON report here.") var json: String?
    @Option(name: .long, help: "Write the history (JSON Lines) here.") var history: String?
    @Option(name: .long, help: "Only check a history written by --history before.") var check: String?
    @Option(name: .long, help: "Topic to create for the run.") var topic = "tern-verify"
    @Option(name: .long, help: "Partitions of the topic.") var partitions: Int32 = 6
    @Option(name: .long, help: "Producer workers.") var producers = 4
    @Option(name: .long, help: "Consumer workers reading during the run.") var consumers = 2
    @Option(name: .long, help: "Sends per second over all producers.") var rate = 1000
    @Option(name: .long, help: "Queue records per partition sent back to back before their answers are read (1: one at a time).")
    var pipeline = 4
    @Option(name: .customLong("broker-set"), help: "A broker setting for the local cluster, key=value; repeatable.")
    var brokerSettings: [String] = []
    @Option(name: .customLong("work-dir"), help: "Where the local cluster keeps its data and logs (default: a new temporary directory, removed after a clean run).")
    var workDir: String?

    func validate() throws {
        if check == nil && (brokers == nil) == (localCluster == nil) { throw ValidationError("give --brokers or --local-cluster N") }
        if let n = localCluster, !(1...9).contains(n) { throw ValidationError("--local-cluster takes 1 to 9 brokers") }
        _ = try workloads()
        _ = try nemeses()
        if !nemesis.isEmpty && localCluster == nil { throw ValidationError("--nemesis needs --local-cluster (faults are injected into brokers it runs)") }
        guard duration >= 1, partitions >= 1, producers >= 1, consumers >= 0, rate >= 1, (1...64).contains(pipeline) else { throw ValidationError("sizes must be positive") }
    }

    func workloads() throws -> [Workload] {
        try workload.split(separator: ",").map { name in
            guard let w = Workload(rawValue: String(name)) else {
                throw ValidationError("unknown workload '\(name)' (available: \(Workload.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            return w
        }
    }

    func nemeses() throws -> [NemesisKind] {
        try nemesis.split(separator: ",").map { name in
            guard let kind = NemesisKind(rawValue: String(name)) else {
                throw ValidationError("unknown nemesis '\(name)' (available: \(NemesisKind.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            return kind
        }
    }

    mutating func run() async throws {
        let log: @Sendable (String) -> Void = { FileHandle.standardError.write(Data("[verify] \($0)\n".utf8)) }
        let chosenSeed = seed ?? UInt64.random(in: 0...UInt64(UInt32.max))
        let kinds = try nemeses()
        if let check {
            let events = try HistoryRecorder.load(path: check)
            let ran = Set(events.map(\.f))
            let result = VerifyReport(
                seed: chosenSeed, nemeses: kinds, durationSeconds: duration, brokers: "(history \(check))",
                check: ran.contains("send") ? QueueChecker.check(events) : nil, txn: ran.contains("txn") ? TxnChecker.check(events) : nil,
                groups: ran.contains("join") ? GroupsChecker.check(events) : nil, statistics: RunStatistics(events))
            try finish(result, log: log)
        }
        log("seed \(chosenSeed)")
        var cluster: LocalCluster?
        let root = workDir ?? NSTemporaryDirectory() + "tern-verify-\(getpid())"
        if let n = localCluster {
            let made = try LocalCluster(
                size: n, root: root, ternBinary: Self.ownExecutable(), brokerSettings: brokerSettings, smallDisks: kinds.contains(.diskFull),
                network: kinds.contains(.partition), clockJumps: kinds.contains(.clock))
            log("starting etcd and \(n) brokers under \(root)")
            do { try await made.start() } catch {
                made.stop()
                throw error
            }
            cluster = made
        }
        var options = VerifyRun.Options(bootstrap: brokers ?? cluster!.bootstrap)
        options.cluster = cluster
        options.durationSeconds = duration
        options.workloads = try workloads()
        options.nemeses = kinds
        options.seed = chosenSeed
        options.topic = topic
        options.partitions = partitions
        options.producers = producers
        options.consumers = consumers
        options.rate = rate
        options.pipeline = pipeline
        options.historyPath = history
        let outcome: VerifyRun.Outcome
        do {
            outcome = try await VerifyRun(options: options, log: log).run()
        } catch {
            cluster?.stop()
            log("could not run: \(error)")
            throw ExitCode(2)
        }
        let result = VerifyReport(
            seed: chosenSeed, nemeses: kinds, durationSeconds: duration, brokers: options.bootstrap, check: outcome.queue, txn: outcome.txn,
            groups: outcome.groups, replicas: outcome.replicas, statistics: outcome.statistics)
        cluster?.stop(keepingData: !result.passed)
        if result.passed, cluster != nil, workDir == nil { try? FileManager.default.removeItem(atPath: root) }
        if !result.passed, cluster != nil { log("broker logs and data kept in \(root)") }
        try finish(result, log: log)
    }

    private func finish(_ result: VerifyReport, log: @Sendable (String) -> Void) throws -> Never {
        if let report { try result.html().write(toFile: report, atomically: true, encoding: .utf8) }
        if let json { try result.json().write(to: URL(fileURLWithPath: json)) }
        if let c = result.check {
            print("queue: acknowledged \(c.acknowledged), failed \(c.failed), unknown \(c.unknown) (\(c.unknownPresent) in the log), read at the end \(c.drained)")
        }
        if let t = result.txn {
            print("txn: committed \(t.committed), aborted \(t.aborted), unknown \(t.unknown) (\(t.unknownVisible) visible), read at the end \(t.drained)")
        }
        if let g = result.groups {
            print("groups: \(g.joins) joins over \(g.generations) generations; commits acknowledged \(g.commitsAcknowledged), refused \(g.commitsRefused), "
                + "unknown \(g.commitsUnknown); committed offsets read \(g.offsetReads) times")
        }
        for u in result.statistics.unavailability {
            print(String(format: "  %.2f s without an acknowledged write after: ", u.seconds) + u.fault.description)
        }
        let violations = result.violations
        for v in violations.prefix(20) {
            print(String(format: "VIOLATION %@ at %.2f s: %@", v.kind.rawValue, Double(v.timeNs) / 1e9, v.message)
                + (v.nemesis.isEmpty ? "" : " [faults: \(v.nemesis.joined(separator: "; "))]"))
        }
        if violations.count > 20 { print("… \(violations.count - 20) more violations") }
        if !result.complete {
            print("INCOMPLETE: the final read did not reach the end of every partition; lost writes could not be checked")
            Foundation.exit(2)
        }
        print(result.passed ? "no violations" : "\(violations.count) violation(s)")
        Foundation.exit(result.passed ? 0 : 1)
    }

    /// This executable, to start the local cluster's brokers with.
    static func ownExecutable() throws -> String {
        let path = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        return path
    }
}
