import Foundation

/// One line of a run's history, Jepsen-style: an operation's invocation, its completion (`ok`,
/// `fail` — definitely did not happen — or `info` — may or may not have happened), or a nemesis
/// event. Times are nanoseconds since the run started. Written as JSON Lines, one event per line,
/// so a run can be checked again later (`tern verify --check history.jsonl`).
public struct HistoryEvent: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case invoke, ok, fail, info
    }

    /// The worker's id; `HistoryEvent.nemesis` for fault injection, `HistoryEvent.harness` for the
    /// run itself (`stop`: the workloads were told to stop writing).
    public var process: Int
    public var kind: Kind
    /// The operation: `send`, `read`, or for the nemesis `fault` (kind invoke = start, ok = healed).
    public var f: String
    public var timeNs: Int64
    public var partition: Int32?
    public var offset: Int64?
    public var value: String?
    /// A read's records, in the order it returned them.
    public var records: [ReadRecord]?
    public var error: String?
    /// The nemesis: what was done to which broker.
    public var detail: String?
    /// The groups workload: the member and generation of a join or commit, the partitions a join
    /// was assigned, the offsets a commit wrote or an offset fetch returned (-1: none committed).
    public var member: String?
    public var generation: Int32?
    public var partitions: [Int32]?
    public var offsets: [PartitionOffset]?

    public static let nemesis = -1
    public static let harness = -2

    public init(
        process: Int, kind: Kind, f: String, timeNs: Int64, partition: Int32? = nil, offset: Int64? = nil, value: String? = nil,
        records: [ReadRecord]? = nil, error: String? = nil, detail: String? = nil, member: String? = nil, generation: Int32? = nil,
        partitions: [Int32]? = nil, offsets: [PartitionOffset]? = nil
    ) {
        self.process = process
        self.kind = kind
        self.f = f
        self.timeNs = timeNs
        self.partition = partition
        self.offset = offset
        self.value = value
        self.records = records
        self.error = error
        self.detail = detail
        self.member = member
        self.generation = generation
        self.partitions = partitions
        self.offsets = offsets
    }
}

public struct PartitionOffset: Codable, Sendable, Equatable, Hashable {
    public var partition: Int32
    public var offset: Int64

    public init(partition: Int32, offset: Int64) {
        self.partition = partition
        self.offset = offset
    }
}

public struct ReadRecord: Codable, Sendable, Equatable, Hashable {
    public var partition: Int32
    public var offset: Int64
    public var value: String

    public init(partition: Int32, offset: Int64, value: String) {
        self.partition = partition
        self.offset = offset
        self.value = value
    }
}

/// The history being recorded: events in the order they happened (under a lock, from every
/// worker), mirrored to a JSON Lines file when one is given. Memory grows with the run — a run is
/// bounded by its duration, and reads record only what they return.
public final class HistoryRecorder: @unchecked Sendable {
    // Sendable: `events`, `file` and `encoder` are touched only under `lock`.
    private let lock = NSLock()
    private var events: [HistoryEvent] = []
    private let file: FileHandle?
    private let encoder = JSONEncoder()
    private let start = ContinuousClock.now

    public init(path: String?) throws {
        if let path {
            guard FileManager.default.createFile(atPath: path, contents: nil) else { throw VerifyError.cannotWrite(path) }
            file = FileHandle(forWritingAtPath: path)
        } else {
            file = nil
        }
        encoder.outputFormatting = [.sortedKeys]
    }

    /// Nanoseconds since the run started.
    public var now: Int64 {
        let d = ContinuousClock.now - start
        return d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000
    }

    /// Records an event stamped now; returns its index.
    @discardableResult
    public func record(_ make: (Int64) -> HistoryEvent) -> Int {
        lock.lock()
        defer { lock.unlock() }
        let event = make(now)
        events.append(event)
        if let file, var line = try? encoder.encode(event) {
            line.append(0x0A)
            file.write(line)
        }
        return events.count - 1
    }

    public var history: [HistoryEvent] {
        lock.lock()
        defer { lock.unlock() }
        return events
    }

    public func close() { try? file?.close() }

    /// Reads a history written by a recorder.
    public static func load(path: String) throws -> [HistoryEvent] {
        guard let data = FileManager.default.contents(atPath: path) else { throw VerifyError.cannotRead(path) }
        let decoder = JSONDecoder()
        return try data.split(separator: 0x0A).map { try decoder.decode(HistoryEvent.self, from: Data($0)) }
    }
}

public enum VerifyError: Error, CustomStringConvertible {
    case cannotWrite(String)
    case cannotRead(String)
    case setup(String)

    public var description: String {
        switch self {
        case .cannotWrite(let p): return "cannot write \(p)"
        case .cannotRead(let p): return "cannot read \(p)"
        case .setup(let m): return m
        }
    }
}
