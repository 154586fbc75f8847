import Foundation

/// What a run found, for machines (`--json`) and people (`--report`, one self-contained HTML
/// page: a timeline of throughput and latency per second with the faults shaded and violations
/// marked, then the tables).
public struct VerifyReport: Codable, Sendable {
    public var seed: UInt64
    public var nemeses: [NemesisKind]
    public var durationSeconds: Int
    public var brokers: String
    /// The queue workload's result, if it ran.
    public var check: QueueChecker.Result?
    /// The transactional workload's result, if it ran.
    public var txn: TxnChecker.Result?
    /// The groups workload's result, if it ran.
    public var groups: GroupsChecker.Result?
    /// A local cluster's replicas that differ at the end.
    public var replicas: [Violation]
    public var statistics: RunStatistics

    public init(
        seed: UInt64, nemeses: [NemesisKind], durationSeconds: Int, brokers: String, check: QueueChecker.Result?, txn: TxnChecker.Result? = nil,
        groups: GroupsChecker.Result? = nil, replicas: [Violation] = [], statistics: RunStatistics
    ) {
        self.groups = groups
        self.replicas = replicas
        self.seed = seed
        self.nemeses = nemeses
        self.durationSeconds = durationSeconds
        self.brokers = brokers
        self.check = check
        self.txn = txn
        self.statistics = statistics
    }

    public var violations: [Violation] {
        ((check?.violations ?? []) + (txn?.violations ?? []) + (groups?.violations ?? []) + replicas).sorted { $0.timeNs < $1.timeNs }
    }
    public var complete: Bool { (check?.complete ?? true) && (txn?.complete ?? true) && (groups?.complete ?? true) }
    public var passed: Bool { violations.isEmpty && complete }
    var workloads: [String] { (check == nil ? [] : ["queue"]) + (txn == nil ? [] : ["txn"]) + (groups == nil ? [] : ["groups"]) }

    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }

    public func html() -> String {
        let verdict = passed ? "no violations" : complete ? "\(violations.count) violation(s)" : "incomplete: the final read did not finish"
        var out = """
            <!doctype html><html><head><meta charset="utf-8"><title>tern verify: \(esc(verdict))</title>
            <style>body{font:14px system-ui,sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin:1em 0}
            td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}.pass{color:#070}.fail{color:#b00}
            svg text{font-size:11px}</style></head><body>
            <h1>tern verify — <span class="\(passed ? "pass" : "fail")">\(esc(verdict))</span></h1>
            <p>Workload \(workloads.map { "<b>\($0)</b>" }.joined(separator: " and ")) for \(durationSeconds) s against \(esc(brokers)); nemesis \
            <b>\(nemeses.isEmpty ? "none" : nemeses.map(\.rawValue).joined(separator: ", "))</b>; seed <code>\(seed)</code> \
            (<code>--seed \(seed)</code> replays the fault schedule).</p><table>
            """
        if let check {
            out += """
                <tr><th>queue: acknowledged writes</th><td>\(check.acknowledged)</td></tr>
                <tr><th>queue: failed writes (definite)</th><td>\(check.failed)</td></tr>
                <tr><th>queue: unknown outcome (found in the log)</th><td>\(check.unknown) (\(check.unknownPresent))</td></tr>
                <tr><th>queue: records read at the end</th><td>\(check.drained)</td></tr>
                """
        }
        if let txn {
            out += """
                <tr><th>txn: committed transactions</th><td>\(txn.committed)</td></tr>
                <tr><th>txn: aborted transactions</th><td>\(txn.aborted)</td></tr>
                <tr><th>txn: unknown outcome (wholly visible)</th><td>\(txn.unknown) (\(txn.unknownVisible))</td></tr>
                <tr><th>txn: records read at the end (read_committed)</th><td>\(txn.drained)</td></tr>
                """
        }
        if let groups {
            out += """
                <tr><th>groups: joins (generations)</th><td>\(groups.joins) (\(groups.generations))</td></tr>
                <tr><th>groups: commits acknowledged / refused / unknown</th><td>\(groups.commitsAcknowledged) / \(groups.commitsRefused) / \(groups.commitsUnknown)</td></tr>
                <tr><th>groups: committed-offset reads</th><td>\(groups.offsetReads)</td></tr>
                """
        }
        out += """
            <tr><th>faults injected</th><td>\(statistics.faults.count)</td></tr>
            <tr><th>violations</th><td>\(violationCounts())</td></tr></table>
            """
        out += timeline()
        if !statistics.unavailability.isEmpty {
            out += "<h2>Unavailability after each fault</h2><table><tr><th>fault</th><th>longest time without an acknowledged write</th></tr>"
            for u in statistics.unavailability {
                out += "<tr><td>\(esc(u.fault.description))</td><td>\(String(format: "%.2f", u.seconds)) s</td></tr>"
            }
            out += "</table>"
        }
        if !violations.isEmpty {
            out += "<h2>Violations</h2><table><tr><th>kind</th><th>at</th><th>what</th><th>faults around it</th><th>history events</th></tr>"
            for v in violations.prefix(500) {
                out += "<tr><td>\(v.kind.rawValue)</td><td>\(String(format: "%.2f", Double(v.timeNs) / 1e9)) s</td><td>\(esc(v.message))</td>"
                out += "<td>\(esc(v.nemesis.joined(separator: "; ")))</td><td>\(v.events.map(String.init).joined(separator: ", "))</td></tr>"
            }
            if violations.count > 500 { out += "<tr><td colspan=5>… and \(violations.count - 500) more (see --json)</td></tr>" }
            out += "</table>"
        }
        return out + "</body></html>\n"
    }

    private func violationCounts() -> String {
        guard !violations.isEmpty else { return "0" }
        let counts = Dictionary(grouping: violations, by: \.kind).mapValues(\.count)
        return Violation.Kind.allCases.compactMap { k in counts[k].map { "\(k.rawValue): \($0)" } }.joined(separator: ", ")
    }

    /// Acknowledged writes per second (bars), p99 latency (line), faults (shaded), violations (red).
    private func timeline() -> String {
        let seconds = statistics.seconds
        guard !seconds.isEmpty else { return "" }
        let width = 1000.0, height = 240.0, left = 50.0, right = 50.0, top = 10.0, bottom = 30.0
        let plotW = width - left - right, plotH = height - top - bottom
        let span = Double(max(seconds.count, 1))
        let maxOk = Double(max(seconds.map(\.ok).max() ?? 1, 1))
        let maxP99 = max(seconds.compactMap(\.p99Ms).max() ?? 1, 1)
        func x(_ s: Double) -> Double { left + s / span * plotW }
        var svg = "<h2>Timeline</h2><svg width=\"\(Int(width))\" height=\"\(Int(height))\" xmlns=\"http://www.w3.org/2000/svg\">"
        for f in statistics.faults {
            let start = Double(f.startNs) / 1e9, end = Double(f.endNs ?? Int64(span * 1e9)) / 1e9
            svg += "<rect x=\"\(fmt(x(start)))\" y=\"\(fmt(top))\" width=\"\(fmt(max(x(end) - x(start), 1)))\" height=\"\(fmt(plotH))\" fill=\"#f3d9a4\"><title>\(esc(f.description))</title></rect>"
        }
        let barW = max(plotW / span - 1, 1)
        for s in seconds {
            let h = Double(s.ok) / maxOk * plotH
            svg += "<rect x=\"\(fmt(x(Double(s.second))))\" y=\"\(fmt(top + plotH - h))\" width=\"\(fmt(barW))\" height=\"\(fmt(h))\" fill=\"#6a9fd8\"><title>\(s.second) s: \(s.ok) acknowledged, \(s.failed) failed, \(s.unknown) unknown</title></rect>"
            if s.failed + s.unknown > 0 {
                svg += "<rect x=\"\(fmt(x(Double(s.second))))\" y=\"\(fmt(top + plotH - 4))\" width=\"\(fmt(barW))\" height=\"4\" fill=\"#d88a2a\"/>"
            }
        }
        let points = seconds.compactMap { s in s.p99Ms.map { "\(fmt(x(Double(s.second) + 0.5))),\(fmt(top + plotH - $0 / maxP99 * plotH))" } }
        if !points.isEmpty { svg += "<polyline points=\"\(points.joined(separator: " "))\" fill=\"none\" stroke=\"#333\" stroke-width=\"1.5\"/>" }
        for v in violations.prefix(500) {
            let vx = x(Double(v.timeNs) / 1e9)
            svg += "<line x1=\"\(fmt(vx))\" x2=\"\(fmt(vx))\" y1=\"\(fmt(top))\" y2=\"\(fmt(top + plotH))\" stroke=\"#c00\" stroke-width=\"1.5\"><title>\(esc(v.kind.rawValue + ": " + v.message))</title></line>"
        }
        svg += "<line x1=\"\(fmt(left))\" x2=\"\(fmt(left + plotW))\" y1=\"\(fmt(top + plotH))\" y2=\"\(fmt(top + plotH))\" stroke=\"#000\"/>"
        svg += "<text x=\"\(fmt(left - 4))\" y=\"\(fmt(top + 10))\" text-anchor=\"end\">\(Int(maxOk))/s</text>"
        svg += "<text x=\"\(fmt(left + plotW + 4))\" y=\"\(fmt(top + 10))\">\(fmt(maxP99)) ms</text>"
        for tick in stride(from: 0, through: Int(span), by: max(Int(span) / 10, 1)) {
            svg += "<text x=\"\(fmt(x(Double(tick))))\" y=\"\(fmt(height - 10))\" text-anchor=\"middle\">\(tick) s</text>"
        }
        svg += "</svg><p>Bars: acknowledged writes per second (orange foot: failed or unknown ones). Line: p99 write latency. "
        svg += "Shaded: faults. Red lines: violations.</p>"
        return svg
    }

    private func fmt(_ v: Double) -> String { String(format: "%.1f", v) }

    private func esc(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\"", with: "&quot;")
    }
}
