/// A partition and offset, as the checkers name records.
struct LogPosition: Hashable, Comparable, CustomStringConvertible {
    let partition: Int32
    let offset: Int64

    init(partition: Int32, offset: Int64) {
        self.partition = partition
        self.offset = offset
    }

    init(_ r: ReadRecord) { self.init(partition: r.partition, offset: r.offset) }

    var description: String { "\(partition)/\(offset)" }
    static func < (a: LogPosition, b: LogPosition) -> Bool { (a.partition, a.offset) < (b.partition, b.offset) }
}

/// The violations a checker finds, stamped with the time of their latest event and, at the end,
/// with the faults around them.
struct ViolationLog {
    let history: [HistoryEvent]
    private var found: [Violation] = []

    init(history: [HistoryEvent]) { self.history = history }

    mutating func report(_ kind: Violation.Kind, _ message: String, _ events: [Int]) {
        found.append(Violation(kind: kind, message: message, events: events.sorted(), timeNs: events.map { history[$0].timeNs }.max() ?? 0))
    }

    /// In time order, each with the faults in progress around it.
    func finished() -> [Violation] {
        let windows = Faults.windows(in: history)
        return found.map { v in
            var v = v
            v.nemesis = windows.filter { w in w.startNs <= v.timeNs + 2_000_000_000 && (w.endNs ?? Int64.max) >= v.timeNs - 10_000_000_000 }
                .map(\.description)
            return v
        }.sorted { ($0.timeNs, $0.kind.rawValue) < ($1.timeNs, $1.kind.rawValue) }
    }
}

/// What the final read found: the value at each offset and the offsets of each value. Building it
/// reports what the end itself shows wrong — an offset read with two values, a value at two
/// offsets (every value is written once).
struct FinalLog {
    private(set) var at: [LogPosition: (value: String, event: Int)] = [:]
    private(set) var places: [String: [LogPosition]] = [:]

    /// `drained`: the final read's records with their history events; `writer` gives the event
    /// that wrote a value, named in a duplicate's report.
    init(_ drained: [(event: Int, record: ReadRecord)], violations: inout ViolationLog, writer: (String) -> Int?) {
        for (event, r) in drained {
            let key = LogPosition(r)
            if let seen = at[key] {
                if seen.value != r.value { violations.report(.offsetReused, "\(key) read as \(seen.value) and as \(r.value) at the end", [seen.event, event]) }
                continue
            }
            at[key] = (r.value, event)
            places[r.value, default: []].append(key)
        }
        for (value, keys) in places where keys.count > 1 {
            let events = keys.compactMap { at[$0]?.event } + (writer(value).map { [$0] } ?? [])
            violations.report(.duplicate, "\(value) is at \(keys.sorted().map(\.description).joined(separator: ", "))", events)
        }
    }

    func contains(_ value: String) -> Bool { places[value] != nil }

    /// What consumers read during the run is still there at the same offset: `vanished` if the
    /// offset is gone, `offset-reused` if it holds another value. Values in `skipping` (already
    /// reported) are left out; each offset is reported once.
    func checkReads(_ reads: [(event: Int, record: ReadRecord)], skipping: Set<String> = [], violations: inout ViolationLog) {
        var reported: Set<LogPosition> = []
        for (event, r) in reads where !skipping.contains(r.value) {
            let key = LogPosition(r)
            guard !reported.contains(key), at[key]?.value != r.value else { continue }
            reported.insert(key)
            if let now = at[key] {
                violations.report(.offsetReused, "\(key) was read as \(r.value) and holds \(now.value) at the end", [event, now.event])
            } else {
                violations.report(.vanished, "\(r.value) was read at \(key) and is gone at the end", [event])
            }
        }
    }
}

/// The records a workload's consumers read during the run (`readOp`) and at the end (`drainOp`).
struct WorkloadReads {
    let readOp: String
    let drainOp: String
    private(set) var reads: [(event: Int, record: ReadRecord)] = []
    private(set) var drained: [(event: Int, record: ReadRecord)] = []
    /// A final read completed (an incomplete one is recorded as `info`).
    private(set) var sawDrain = false

    init(readOp: String, drainOp: String) {
        self.readOp = readOp
        self.drainOp = drainOp
    }

    /// Takes the event at `index` if it is one of these reads' completions.
    mutating func take(_ e: HistoryEvent, at index: Int) -> Bool {
        guard e.kind == .ok, e.f == readOp || e.f == drainOp else { return false }
        let records = (e.records ?? []).map { (event: index, record: $0) }
        if e.f == readOp {
            reads += records
        } else {
            sawDrain = true
            drained += records
        }
        return true
    }
}

/// Operations by outcome: acknowledged (ok), definitely failed, or unknown (info, or never
/// completed).
func countOutcomes(_ kinds: [HistoryEvent.Kind?]) -> (ok: Int, failed: Int, unknown: Int) {
    kinds.reduce(into: (0, 0, 0)) { counts, kind in
        switch kind {
        case .ok?: counts.0 += 1
        case .fail?: counts.1 += 1
        default: counts.2 += 1
        }
    }
}
