/// The transactional workload's checker: each transaction writes unique values to several
/// partitions and commits or aborts; read_committed consumers read during the run (`txn-read`)
/// and everything at the end (`txn-drain`). History per transaction: `txn` invoke (its values in
/// `records`), `txn-end` invoke (EndTxn about to be sent), `txn` completion — ok = committed,
/// fail = aborted (confirmed), info = unknown. Pure, like `QueueChecker`.
public enum TxnChecker {
    public struct Result: Codable, Sendable {
        public var violations: [Violation]
        public var committed = 0
        public var aborted = 0
        public var unknown = 0
        /// Unknown transactions whose records are all visible (they committed).
        public var unknownVisible = 0
        public var drained = 0
        public var complete = true
    }

    struct Transaction {
        var process: Int
        var values: [String]
        var invoke: Int
        var endInvokeNs: Int64?
        var completion: Int?
        var kind: HistoryEvent.Kind?
    }

    public static func check(_ history: [HistoryEvent]) -> Result {
        var txns: [Transaction] = []
        var open: [Int: Int] = [:]
        var byValue: [String: Int] = [:]
        var read = WorkloadReads(readOp: "txn-read", drainOp: "txn-drain")
        for (i, e) in history.enumerated() where !read.take(e, at: i) {
            switch (e.f, e.kind) {
            case ("txn", .invoke):
                open[e.process] = txns.count
                let values = (e.records ?? []).map(\.value)
                for v in values { byValue[v] = txns.count }
                txns.append(Transaction(process: e.process, values: values, invoke: i))
            case ("txn-end", .invoke):
                if let t = open[e.process] { txns[t].endInvokeNs = e.timeNs }
            case ("txn", _):
                guard let t = open.removeValue(forKey: e.process) else { continue }
                txns[t].completion = i
                txns[t].kind = e.kind
            default:
                continue
            }
        }
        let (reads, drained) = (read.reads, read.drained)
        var result = Result(violations: [])
        result.complete = read.sawDrain
        result.drained = drained.count
        (result.committed, result.aborted, result.unknown) = countOutcomes(txns.map(\.kind))
        var violations = ViolationLog(history: history)
        let final = FinalLog(drained, violations: &violations, writer: { byValue[$0].map { txns[$0].invoke } })

        // Nothing read that no transaction wrote, nothing of an aborted one, nothing too early.
        var reported: Set<String> = []
        for (event, r) in reads + drained where !reported.contains(r.value) {
            guard let t = byValue[r.value].map({ txns[$0] }) else {
                reported.insert(r.value)
                violations.report(.phantom, "\(r.value) read at \(LogPosition(r)) was never written", [event])
                continue
            }
            if t.kind == .fail {
                reported.insert(r.value)
                let why = t.completion.flatMap { history[$0].error } ?? ""
                violations.report(.abortedRead, "\(r.value) belongs to an aborted transaction (\(why)) and was read with read_committed", [t.invoke, event])
            } else if history[event].timeNs < (t.endInvokeNs ?? Int64.max) {
                reported.insert(r.value)
                violations.report(.uncommittedRead, "\(r.value) was read with read_committed before its transaction was asked to commit", [t.invoke, event])
            }
        }

        if result.complete {
            final.checkReads(reads, skipping: reported, violations: &violations)
            // Committed transactions whole; unknown ones whole or not at all.
            for t in txns where t.kind != .fail {
                let visible = t.values.filter(final.contains)
                let events = [t.invoke] + (t.completion.map { [$0] } ?? [])
                if t.kind == .ok && visible.count < t.values.count {
                    let missing = t.values.filter { !final.contains($0) }
                    violations.report(.lost, "a committed transaction's \(missing.joined(separator: ", ")) \(missing.count == 1 ? "is" : "are") not in the log", events)
                } else if t.kind != .ok && !visible.isEmpty && visible.count < t.values.count {
                    violations.report(.nonAtomic, "of a transaction with an unknown outcome, \(visible.joined(separator: ", ")) are visible and the rest not", events)
                } else if t.kind != .ok && visible.count == t.values.count && !t.values.isEmpty {
                    result.unknownVisible += 1
                }
            }
        }
        result.violations = violations.finished()
        return result
    }
}
