import Foundation

/// What the checker found wrong, with the history events that show it.
public struct Violation: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// Acknowledged, and not in the partition at the end.
        case lost
        /// One value at two offsets (every value is sent once, by an idempotent producer).
        case duplicate
        /// A producer's acknowledged values, within a partition, not in the order it sent them.
        case reordered
        /// One offset holding different values over time, or a value acknowledged at one offset
        /// and found at another.
        case offsetReused = "offset-reused"
        /// A record a consumer read during the run is gone at the end.
        case vanished
        /// A record no producer sent.
        case phantom
        /// A write reported as definitely failed is in the log.
        case failedWriteVisible = "failed-write-visible"
        /// A read_committed consumer saw a record of an aborted transaction.
        case abortedRead = "aborted-read"
        /// A read_committed consumer saw a record before its transaction was even asked to commit.
        case uncommittedRead = "uncommitted-read"
        /// Part of a transaction is visible at the end and part is not.
        case nonAtomic = "non-atomic"
        /// Two members of a consumer group were given one partition in the same generation.
        case splitOwnership = "split-ownership"
        /// A group's committed offset went backwards: read lower than an acknowledged commit, or
        /// a lower commit accepted after a higher one was acknowledged.
        case offsetRegressed = "offset-regressed"
    }

    public var kind: Kind
    public var message: String
    /// Indices into the history.
    public var events: [Int]
    public var timeNs: Int64
    /// Faults in progress around it (from 10 s before to 2 s after).
    public var nemesis: [String] = []
}

/// The queue workload's checker: every value is sent once by an idempotent acks=all producer to
/// an explicit partition; consumers read during the run (`read`) and everything at the end
/// (`drain`). Pure: a function of the history, so it is tested with hand-made histories.
public enum QueueChecker {
    public struct Result: Codable, Sendable {
        public var violations: [Violation]
        public var acknowledged = 0
        public var failed = 0
        public var unknown = 0
        /// Unknown sends found in the log (they happened).
        public var unknownPresent = 0
        public var drained = 0
        /// False when there was no final read: lost writes could not be checked.
        public var complete = true
    }

    struct Send {
        var process: Int
        var value: String
        var invoke: Int
        var completion: Int?
        var kind: HistoryEvent.Kind?
        var partition: Int32?
        var offset: Int64?
    }

    public static func check(_ history: [HistoryEvent]) -> Result {
        // Pair each invocation with its completion by value (values are unique; a worker may have
        // several sends in flight, pipelined), else with its process's last invocation.
        var sends: [Send] = []
        var open: [Int: Int] = [:]  // process → index into sends
        var bySendValue: [String: Int] = [:]
        var read = WorkloadReads(readOp: "read", drainOp: "drain")
        for (i, e) in history.enumerated() where !read.take(e, at: i) {
            switch (e.f, e.kind) {
            case ("send", .invoke):
                guard let value = e.value else { continue }
                open[e.process] = sends.count
                bySendValue[value] = sends.count
                sends.append(Send(process: e.process, value: value, invoke: i, partition: e.partition))
            case ("send", _):
                let byValue = e.value.flatMap { bySendValue[$0] }.flatMap { sends[$0].completion == nil ? $0 : nil }
                guard let s = byValue ?? open[e.process] else { continue }
                if open[e.process] == s { open[e.process] = nil }
                sends[s].completion = i
                sends[s].kind = e.kind
                if let p = e.partition { sends[s].partition = p }
                sends[s].offset = e.offset
            default:
                continue
            }
        }
        let (reads, drained) = (read.reads, read.drained)
        var result = Result(violations: [])
        result.complete = read.sawDrain
        result.drained = drained.count
        (result.acknowledged, result.failed, result.unknown) = countOutcomes(sends.map(\.kind))
        var violations = ViolationLog(history: history)
        let final = FinalLog(drained, violations: &violations, writer: { bySendValue[$0].map { sends[$0].invoke } })

        // Every value read: sent by someone, not reported failed.
        var readValues: Set<String> = []
        for (event, r) in drained + reads where readValues.insert(r.value).inserted {
            guard let s = bySendValue[r.value].map({ sends[$0] }) else {
                violations.report(.phantom, "\(r.value) read at \(LogPosition(r)) was never sent", [event])
                continue
            }
            if s.kind == .fail {
                let why = s.completion.flatMap { history[$0].error } ?? ""
                violations.report(.failedWriteVisible, "\(r.value) was reported failed (\(why)) but is in the log", [s.invoke, event])
            }
            if s.kind == .info || s.kind == nil, final.contains(r.value) { result.unknownPresent += 1 }
        }

        if result.complete {
            final.checkReads(reads, violations: &violations)
            // Every acknowledged write is there, where it was acknowledged.
            for s in sends where s.kind == .ok {
                let events = [s.invoke, s.completion!]
                guard let places = final.places[s.value] else {
                    let at = s.partition.map { p in s.offset.map { " at \(LogPosition(partition: p, offset: $0))" } ?? " to partition \(p)" } ?? ""
                    violations.report(.lost, "\(s.value) was acknowledged\(at) and is not in the log", events)
                    continue
                }
                if let p = s.partition, let o = s.offset, o >= 0, !places.contains(LogPosition(partition: p, offset: o)) {
                    let key = LogPosition(partition: p, offset: o)
                    let holder = final.at[key].map { " (which holds \($0.value))" } ?? ""
                    let found = places.sorted().map(\.description).joined(separator: ", ")
                    violations.report(.offsetReused, "\(s.value) was acknowledged at \(key)\(holder) but is at \(found)", events)
                }
            }
        }

        // A producer's acknowledged values keep their order within a partition.
        var lastInvoke: [Int32: [Int: (invoke: Int, value: String)]] = [:]
        for (_, r) in drained.sorted(by: { LogPosition($0.record) < LogPosition($1.record) }) {
            guard let s = bySendValue[r.value].map({ sends[$0] }), s.kind == .ok, final.places[r.value]?.first == LogPosition(r) else { continue }
            if let previous = lastInvoke[r.partition]?[s.process], previous.invoke > s.invoke {
                violations.report(
                    .reordered, "partition \(r.partition): \(previous.value) is before \(r.value), which process \(s.process) sent first",
                    [s.invoke, previous.invoke])
            }
            lastInvoke[r.partition, default: [:]][s.process] = (s.invoke, r.value)
        }
        result.violations = violations.finished()
        return result
    }
}

/// The nemesis's fault intervals in a history.
public struct FaultWindow: Codable, Sendable, Equatable, CustomStringConvertible {
    public var startNs: Int64
    /// Nil when the run ended before it healed.
    public var endNs: Int64?
    public var detail: String

    public var description: String {
        let s = Double(startNs) / 1e9
        let end = endNs.map { String(format: "%.1f", Double($0) / 1e9) } ?? "end"
        return String(format: "%.1f", s) + "–\(end) s: \(detail)"
    }
}

public enum Faults {
    /// Pairs each fault's start (invoke) with its heal (ok), by detail.
    public static func windows(in history: [HistoryEvent]) -> [FaultWindow] {
        var windows: [FaultWindow] = []
        var open: [String: Int] = [:]
        for e in history where e.process == HistoryEvent.nemesis && e.f == "fault" {
            let detail = e.detail ?? ""
            if e.kind == .invoke {
                open[detail] = windows.count
                windows.append(FaultWindow(startNs: e.timeNs, endNs: nil, detail: detail))
            } else if let i = open.removeValue(forKey: detail) {
                windows[i].endNs = e.timeNs
            }
        }
        return windows
    }
}
