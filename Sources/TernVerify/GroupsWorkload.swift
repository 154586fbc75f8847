import Foundation
import TernClient

/// The groups workload: members of one classic consumer group on `<topic>-groups`. Each joins,
/// reads the group's committed offsets for its partitions, and for a few seconds commits each
/// partition a little above where it is (one partition per OffsetCommit), heartbeating between
/// rounds and rejoining when the group rebalances. Then it leaves, crashes (stops without
/// leaving: the session times out), or turns zombie — silent past its session, then committing
/// in its old generation, which the coordinator must refuse — and comes back as a new member.
/// Choices come from the run's seed.
enum GroupsWorkload {
    static let sessionTimeoutMs: Int32 = 6_000
    static let rebalanceTimeoutMs: Int32 = 10_000

    /// Commit errors that mean the coordinator refused the commit before writing it: the
    /// generation or member is not current, or the group is rebalancing. Anything else (a timeout,
    /// a coordinator that moved or could not replicate) may have been written.
    static let refusals: Set<Int16> = [22, 25, 27]

    static func member(process: Int, client: KafkaClient, options: VerifyRun.Options, recorder: HistoryRecorder, until deadline: ContinuousClock.Instant) async {
        var random = SeededRandom(seed: options.seed &+ 7_919 &* UInt64(process))
        let topic = options.groupsTopic
        let member = GroupMember(
            client: client, group: options.groupId, topics: [topic], sessionTimeoutMs: sessionTimeoutMs, rebalanceTimeoutMs: rebalanceTimeoutMs)
        while ContinuousClock.now < deadline {
            // One member's life: joined (again after each rebalance) and committing until it ends.
            let lifetime = min(ContinuousClock.now + .milliseconds(Int.random(in: 3_000...12_000, using: &random)), deadline)
            var current: (generation: Int32, positions: [Int32: Int64])?
            while ContinuousClock.now < lifetime {
                if current == nil {
                    guard let (generation, partitions) = await join(member, process: process, recorder: recorder),
                        let positions = await readOffsets(client, options: options, partitions: partitions, process: process, recorder: recorder)
                    else {
                        try? await Task.sleep(for: .milliseconds(500))
                        continue
                    }
                    current = (generation, positions)
                }
                var rebalancing = await commitRound(
                    member, topic: topic, generation: current!.generation, &current!.positions, process: process, recorder: recorder, random: &random)
                if !rebalancing { rebalancing = (try? await member.heartbeat()) == false }
                if rebalancing { current = nil }
                try? await Task.sleep(for: .milliseconds(200))
            }
            guard let generation = current?.generation, var positions = current?.positions, ContinuousClock.now < deadline else {
                await member.abandon()
                continue
            }
            switch Int.random(in: 0..<3, using: &random) {
            case 0:
                await member.leave()
            case 1:
                await member.abandon()
            default:
                // A zombie: silent past its session (a long pause; a commit would count as a sign of
                // life, as in Kafka), then committing in its old generation, which must be refused
                // once the coordinator has expelled it.
                try? await Task.sleep(for: .milliseconds(Int(sessionTimeoutMs) + Int.random(in: 1_000...3_000, using: &random)))
                _ = await commitRound(member, topic: topic, generation: generation, &positions, process: process, recorder: recorder, random: &random)
                await member.abandon()
            }
        }
        await member.leave()
    }

    private static func join(_ member: GroupMember, process: Int, recorder: HistoryRecorder) async -> (Int32, [Int32])? {
        recorder.record { HistoryEvent(process: process, kind: .invoke, f: "join", timeNs: $0, member: member.memberId) }
        do {
            let assigned = try await member.join().map(\.partition)
            recorder.record {
                HistoryEvent(process: process, kind: .ok, f: "join", timeNs: $0, member: member.memberId, generation: member.generation, partitions: assigned)
            }
            return (member.generation, assigned)
        } catch {
            recorder.record { HistoryEvent(process: process, kind: .info, f: "join", timeNs: $0, error: "\(error)") }
            return nil
        }
    }

    /// The group's committed offsets of `partitions` (-1 where none), or nil when unreadable.
    private static func readOffsets(
        _ client: KafkaClient, options: VerifyRun.Options, partitions: [Int32], process: Int, recorder: HistoryRecorder, f: String = "fetch-offsets"
    ) async -> [Int32: Int64]? {
        recorder.record { HistoryEvent(process: process, kind: .invoke, f: f, timeNs: $0) }
        do {
            let committed = try await client.committedOffsets(group: options.groupId)[options.groupsTopic] ?? [:]
            let offsets = Dictionary(uniqueKeysWithValues: partitions.map { ($0, committed[$0] ?? -1) })
            recorder.record {
                HistoryEvent(process: process, kind: .ok, f: f, timeNs: $0, offsets: offsets.sorted { $0.key < $1.key }.map { .init(partition: $0.key, offset: $0.value) })
            }
            return offsets
        } catch {
            recorder.record { HistoryEvent(process: process, kind: .fail, f: f, timeNs: $0, error: "\(error)") }
            return nil
        }
    }

    /// Commits each partition 1–5 above its position; returns whether the group is rebalancing.
    private static func commitRound(
        _ member: GroupMember, topic: String, generation: Int32, _ positions: inout [Int32: Int64], process: Int, recorder: HistoryRecorder,
        random: inout SeededRandom
    ) async -> Bool {
        for partition in positions.keys.sorted().shuffled(using: &random) {
            let offset = max(positions[partition] ?? 0, 0) + Int64.random(in: 1...5, using: &random)
            let written = [PartitionOffset(partition: partition, offset: offset)]
            recorder.record {
                HistoryEvent(process: process, kind: .invoke, f: "commit", timeNs: $0, member: member.memberId, generation: generation, offsets: written)
            }
            do {
                try await member.commit([TopicPartition(topic: topic, partition: partition): offset])
                positions[partition] = offset
                recorder.record { HistoryEvent(process: process, kind: .ok, f: "commit", timeNs: $0) }
            } catch ClientError.kafka(let code, _) where refusals.contains(code) {
                recorder.record { HistoryEvent(process: process, kind: .fail, f: "commit", timeNs: $0, error: KafkaErrorNames.name(code)) }
                return true
            } catch {
                // It may have been written: later commits stay above it.
                positions[partition] = offset
                recorder.record { HistoryEvent(process: process, kind: .info, f: "commit", timeNs: $0, error: "\(error)") }
            }
        }
        return false
    }

    /// The final read of the committed offsets, once members have stopped and the cluster has
    /// settled; retried for up to 120 s.
    static func drain(client: KafkaClient, options: VerifyRun.Options, recorder: HistoryRecorder, log: @Sendable (String) -> Void) async {
        let deadline = ContinuousClock.now + .seconds(120)
        let partitions = Array(0..<options.partitions)
        while ContinuousClock.now < deadline {
            if await readOffsets(client, options: options, partitions: partitions, process: VerifyRun.Process.groupsDrain, recorder: recorder, f: "groups-drain") != nil {
                return
            }
            try? await Task.sleep(for: .milliseconds(500))
        }
        log("the final read of the group's committed offsets did not succeed")
    }
}
