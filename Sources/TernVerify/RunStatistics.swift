/// Throughput, latency and availability of a run, per second and per fault, from its history.
public struct RunStatistics: Codable, Sendable {
    public struct Second: Codable, Sendable {
        public var second: Int
        /// Writes (sends, transactions, offset commits) completed in this second, by outcome.
        public var ok = 0
        public var failed = 0
        public var unknown = 0
        /// Latency of the acknowledged ones, in milliseconds.
        public var p50Ms: Double?
        public var p99Ms: Double?
    }

    public struct Unavailability: Codable, Sendable {
        public var fault: FaultWindow
        /// The longest time without an acknowledged write, from the fault's start until 30 s after
        /// it healed (or writing ended, or the next fault began).
        public var seconds: Double
    }

    public var seconds: [Second]
    public var faults: [FaultWindow]
    public var unavailability: [Unavailability]
    public var durationSeconds: Double

    public init(_ history: [HistoryEvent]) {
        var invokedAt: [Int: Int64] = [:]
        var lastInvoke: Int64?
        var completions: [(timeNs: Int64, kind: HistoryEvent.Kind, latencyNs: Int64)] = []
        // Writes: the queue's sends, the transactional workload's transactions, the groups'
        // offset commits.
        for e in history where e.f == "send" || e.f == "txn" || e.f == "commit" {
            if e.kind == .invoke {
                invokedAt[e.process] = e.timeNs
                lastInvoke = max(lastInvoke ?? e.timeNs, e.timeNs)
            } else if let start = invokedAt.removeValue(forKey: e.process) {
                completions.append((e.timeNs, e.kind, e.timeNs - start))
            }
        }
        let end = history.map(\.timeNs).max() ?? 0
        durationSeconds = Double(end) / 1e9
        var perSecond = (0...Int(end / 1_000_000_000)).map { Second(second: $0) }
        var latencies: [[Int64]] = perSecond.map { _ in [] }
        for c in completions {
            let s = Int(c.timeNs / 1_000_000_000)
            switch c.kind {
            case .ok:
                perSecond[s].ok += 1
                latencies[s].append(c.latencyNs)
            case .fail: perSecond[s].failed += 1
            default: perSecond[s].unknown += 1
            }
        }
        for i in perSecond.indices where !latencies[i].isEmpty {
            let sorted = latencies[i].sorted()
            perSecond[i].p50Ms = Double(sorted[sorted.count / 2]) / 1e6
            perSecond[i].p99Ms = Double(sorted[min(sorted.count - 1, sorted.count * 99 / 100)]) / 1e6
        }
        seconds = perSecond
        faults = Faults.windows(in: history)
        let acknowledged = completions.filter { $0.kind == .ok }.map(\.timeNs).sorted()
        // Gaps are measured up to when the workloads were told to stop (or the last write sent, in
        // a history without that mark): the last writes may complete — or fail — long after.
        let stopped = history.first { $0.process == HistoryEvent.harness && $0.f == "stop" }?.timeNs
        let writingEnded = min(lastInvoke ?? 0, stopped ?? .max)
        let starts = faults.map(\.startNs)
        unavailability = faults.filter { $0.startNs < writingEnded }.map { fault in
            // Up to 30 s after it healed, but not into the next fault: each gap is this one's.
            let nextFault = starts.first { $0 > fault.startNs } ?? Int64.max
            let until = min((fault.endNs ?? writingEnded) + 30_000_000_000, writingEnded, nextFault)
            var longest: Int64 = 0
            var previous = fault.startNs
            for t in acknowledged where t > fault.startNs && t <= until {
                longest = max(longest, t - previous)
                previous = t
            }
            longest = max(longest, until - previous)
            return Unavailability(fault: fault, seconds: Double(longest) / 1e9)
        }
    }
}
