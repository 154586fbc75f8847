/// The groups workload's checker. Members of one consumer group join (`join`: ok with member,
/// generation and partitions), read the group's committed offsets (`fetch-offsets`), commit
/// offsets above what they read (`commit`, one partition each), and leave, crash or linger as
/// zombies; at the end the committed offsets are read once more (`groups-drain`). Because every
/// member only ever commits above what it read after joining, a broker that fences old
/// generations and keeps what it acknowledged shows a committed offset that never goes down.
/// Pure, like the other checkers.
public enum GroupsChecker {
    public struct Result: Codable, Sendable {
        public var violations: [Violation]
        public var joins = 0
        public var generations = 0
        public var commitsAcknowledged = 0
        public var commitsRefused = 0
        public var commitsUnknown = 0
        public var offsetReads = 0
        /// False when the final read of the committed offsets did not happen.
        public var complete = true
    }

    struct Commit {
        var event: Int
        var invokeNs: Int64
        var okNs: Int64
        var okEvent: Int
        var offset: Int64
    }

    public static func check(_ history: [HistoryEvent]) -> Result {
        var result = Result(violations: [])
        var violations = ViolationLog(history: history)
        var invoked: [Int: Int] = [:]
        // generation → partition → (member, join event)
        var owners: [Int32: [Int32: (String, Int)]] = [:]
        var acknowledged: [Int32: [Commit]] = [:]
        var reads: [(invokeNs: Int64, event: Int, offsets: [PartitionOffset])] = []
        var commitOutcomes: [HistoryEvent.Kind?] = []
        for (i, e) in history.enumerated() where ["join", "fetch-offsets", "commit", "groups-drain"].contains(e.f) {
            if e.kind == .invoke {
                invoked[e.process] = i
                continue
            }
            let start = invoked.removeValue(forKey: e.process)
            switch e.f {
            case "join" where e.kind == .ok:
                result.joins += 1
                guard let generation = e.generation, let member = e.member else { continue }
                for p in e.partitions ?? [] {
                    if let (other, otherEvent) = owners[generation]?[p], other != member {
                        violations.report(
                            .splitOwnership, "partition \(p) was assigned to \(other) and to \(member) in generation \(generation)", [otherEvent, i])
                    }
                    owners[generation, default: [:]][p] = (member, i)
                }
            case "commit":
                commitOutcomes.append(e.kind)
                guard e.kind == .ok, let start, let written = history[start].offsets else { continue }
                for o in written {
                    acknowledged[o.partition, default: []].append(
                        Commit(event: start, invokeNs: history[start].timeNs, okNs: e.timeNs, okEvent: i, offset: o.offset))
                }
            case "fetch-offsets", "groups-drain":
                guard e.kind == .ok, let start else { continue }
                reads.append((history[start].timeNs, i, e.offsets ?? []))
            default:
                continue
            }
        }
        result.complete = history.contains { $0.f == "groups-drain" && $0.kind == .ok }
        result.generations = owners.count
        result.offsetReads = reads.count
        (result.commitsAcknowledged, result.commitsRefused, result.commitsUnknown) = countOutcomes(commitOutcomes)

        for (partition, commits) in acknowledged {
            let byAck = commits.sorted { $0.okNs < $1.okNs }
            // highestSoFar[i]: the highest of byAck[0...i].
            var highestSoFar: [Commit] = []
            for c in byAck { highestSoFar.append(highestSoFar.last.map { $0.offset >= c.offset ? $0 : c } ?? c) }
            /// The highest commit acknowledged before `t`, if any.
            func highest(before t: Int64) -> Commit? {
                var (low, high) = (0, byAck.count)
                while low < high {
                    let mid = (low + high) / 2
                    if byAck[mid].okNs < t { low = mid + 1 } else { high = mid }
                }
                return low == 0 ? nil : highestSoFar[low - 1]
            }
            // A commit from an older generation accepted, lower, after a newer generation's commit
            // was acknowledged: the old generation was not fenced.
            for c in commits {
                guard let earlier = highest(before: c.invokeNs), c.offset < earlier.offset,
                    let older = history[c.event].generation, let newer = history[earlier.event].generation, older < newer
                else { continue }
                violations.report(
                    .offsetRegressed,
                    "partition \(partition): a commit of \(c.offset) from generation \(older) was accepted after one of \(earlier.offset) "
                        + "from generation \(newer) had been acknowledged",
                    [earlier.okEvent, c.event, c.okEvent])
            }
            // A read of the committed offset below one acknowledged before the read.
            for r in reads {
                // A member reads its own partitions; the final read, all of them.
                guard let earlier = highest(before: r.invokeNs), let seen = r.offsets.first(where: { $0.partition == partition })?.offset else {
                    continue
                }
                if seen < earlier.offset {
                    violations.report(
                        .offsetRegressed,
                        "partition \(partition): the committed offset was read as \(seen) after a commit of \(earlier.offset) had been acknowledged",
                        [earlier.okEvent, r.event])
                }
            }
        }
        result.violations = violations.finished()
        return result
    }
}
