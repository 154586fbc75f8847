import Foundation
import TernClient

/// The faults `tern verify` can inject into a local cluster.
public enum NemesisKind: String, CaseIterable, Sendable, Codable {
    /// kill -9 a broker, restart it a few seconds later.
    case kill
    /// SIGSTOP a broker for a few seconds (longer than its session timeout at times), then SIGCONT.
    case pause
    /// kill -9 the etcd member, restart it a few seconds later (on its data directory).
    case etcd
    /// Fill a broker's disk (its own small tmpfs; root only) for a few seconds, then free it.
    case diskFull = "disk-full"
    /// Partition a broker (root only: brokers in network namespaces) for a few seconds: cut off
    /// from everything, or — split brain — from its peers and etcd while its clients still reach it.
    case partition
    /// Jump a broker's wall clock 1–30 minutes forward or back for a few seconds, then back (the
    /// clock shim preloaded into brokers; monotonic time is left alone, as an NTP step leaves it).
    case clock
}

/// A deterministic random source (SplitMix64): the seed printed at the start replays a run's
/// fault schedule.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Injects one fault at a time: waits a quiet interval, picks a fault and a victim — the leader of
/// a random partition of the workload's topic, the controller, the coordinator of the group or of
/// one of the transactional ids, or any broker — applies it for a few seconds, heals it, and
/// records both ends in the history (same `detail`, so the checker can pair them). Every choice
/// comes from the seeded generator.
struct Nemesis {
    /// A group or transactional id of the workloads, whose coordinator may be the victim.
    enum Coordinated: Sendable {
        case group(String)
        case transaction(String)
    }

    let kinds: [NemesisKind]
    let cluster: LocalCluster
    let client: KafkaClient
    let topic: String
    let coordinated: [Coordinated]
    let recorder: HistoryRecorder
    var random: SeededRandom
    var log: @Sendable (String) -> Void

    mutating func run(until deadline: ContinuousClock.Instant) async {
        guard !kinds.isEmpty else { return }
        while ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(Int.random(in: 3000...8000, using: &random)))
            guard ContinuousClock.now < deadline, !Task.isCancelled else { return }
            let kind = kinds.randomElement(using: &random)!
            let (victim, role) = await pickVictim()
            let faultMs = Int.random(in: 1000...(kind == .pause ? 6000 : 8000), using: &random)
            let split = kind == .partition && Bool.random(using: &random)
            let jump = kind == .clock ? Int.random(in: 1...30, using: &random) * 60 * (Bool.random(using: &random) ? 1 : -1) : 0
            let name = switch kind {
            case .partition: split ? "split off" : "isolate"
            case .clock: "jump the clock \(jump > 0 ? "+" : "")\(jump / 60) min of"
            default: kind.rawValue
            }
            let detail = kind == .etcd ? "kill etcd for \(faultMs) ms" : "\(name) broker \(victim) (\(role)) for \(faultMs) ms"
            log("nemesis: \(detail)")
            recorder.record { HistoryEvent(process: HistoryEvent.nemesis, kind: .invoke, f: "fault", timeNs: $0, detail: detail) }
            switch kind {
            case .kill: cluster.kill(victim)
            case .pause: cluster.pause(victim)
            case .etcd: cluster.killEtcd()
            case .diskFull: cluster.fill(victim)
            case .partition:
                do { try cluster.partition(victim, split: split) } catch { log("nemesis: partitioning broker \(victim) failed: \(error)") }
            case .clock:
                do { try cluster.setClockOffset(victim, seconds: jump) } catch { log("nemesis: moving broker \(victim)'s clock failed: \(error)") }
            }
            try? await Task.sleep(for: .milliseconds(faultMs))
            await heal(kind, victim)
            recorder.record { HistoryEvent(process: HistoryEvent.nemesis, kind: .ok, f: "fault", timeNs: $0, detail: detail) }
        }
    }

    private func heal(_ kind: NemesisKind, _ victim: Int32) async {
        switch kind {
        case .kill:
            do { try await cluster.start(victim) } catch { log("nemesis: restarting broker \(victim) failed: \(error)") }
        case .pause: cluster.resume(victim)
        case .etcd:
            do { try await cluster.startEtcd() } catch { log("nemesis: restarting etcd failed: \(error)") }
        case .diskFull: cluster.unfill(victim)
        case .partition: cluster.healPartition(victim)
        case .clock: try? cluster.setClockOffset(victim, seconds: 0)
        }
    }

    private mutating func pickVictim() async -> (Int32, String) {
        let md = try? await client.refreshMetadata(topics: [topic])
        let choice = Int.random(in: 0..<4, using: &random)
        if choice == 0, let md, md.controllerId >= 0 { return (md.controllerId, "controller") }
        if choice == 1, let partitions = md?.topics.first?.partitions, !partitions.isEmpty {
            let p = partitions[Int.random(in: 0..<partitions.count, using: &random)]
            if p.leaderId >= 0 { return (p.leaderId, "leader of \(topic)-\(p.partitionIndex)") }
        }
        if choice == 2, let target = coordinated.randomElement(using: &random) {
            switch target {
            case .group(let id):
                if let node = try? await client.coordinatorNode(group: id) { return (node, "coordinator of group \(id)") }
            case .transaction(let id):
                if let node = try? await client.coordinatorNode(transactionalId: id) { return (node, "transaction coordinator of \(id)") }
            }
        }
        return (cluster.members[Int.random(in: 0..<cluster.members.count, using: &random)].nodeId, "random")
    }
}
