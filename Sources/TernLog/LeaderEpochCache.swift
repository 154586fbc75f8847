import Foundation
import NIOConcurrencyHelpers

/// KIP-101/279: the first offset written in each leader epoch, the log's history of leaders. A
/// follower asks the leader where its last epoch ended (Fetch's `last_fetched_epoch` or
/// OffsetForLeaderEpoch) and truncates anything it has past that point: a tail the new leader
/// never had.
///
/// Invariants: epochs strictly increase and so do start offsets. Not Sendable on its own: the
/// owning `PartitionLog` changes and reads it under its lock.
public struct LeaderEpochCache: Equatable, Sendable {
    public struct Entry: Equatable, Sendable {
        public let epoch: Int32
        public let startOffset: Int64
    }

    public private(set) var entries: [Entry] = []
    /// Bumped on every change, so a file write made from an older copy never replaces a newer one.
    private(set) var generation: UInt64 = 0

    public init(entries: [Entry] = []) {
        self.entries = entries
    }

    public var latestEpoch: Int32 { entries.last?.epoch ?? -1 }

    /// A batch of `epoch` was appended at `offset`: records the epoch if it is new. Older epochs are
    /// ignored (a leader's log never goes back in epochs; a follower copies the leader's order).
    mutating func observe(epoch: Int32, at offset: Int64) {
        guard epoch >= 0, epoch > latestEpoch else { return }
        assert(entries.last.map { $0.startOffset <= offset } ?? true, "epoch start offsets increase")
        entries.append(Entry(epoch: epoch, startOffset: offset))
        generation &+= 1
    }

    /// Kafka's `endOffsetFor`: the largest epoch <= `requested` this log has and the offset where it
    /// ended (the next epoch's start, or the log end for the latest); (-1, -1) when unknown.
    public func endOffset(for requested: Int32, logEnd: Int64) -> (epoch: Int32, endOffset: Int64) {
        if requested < 0 { return (-1, -1) }
        if requested == latestEpoch { return (requested, logEnd) }
        guard let higher = entries.first(where: { $0.epoch > requested }) else { return (-1, -1) }
        guard let floor = entries.last(where: { $0.epoch <= requested }) else { return (requested, higher.startOffset) }
        return (floor.epoch, higher.startOffset)
    }

    /// The log lost everything from `offset` on: epochs that started there or later go.
    mutating func truncate(fromEnd offset: Int64) {
        let kept = entries.filter { $0.startOffset < offset }
        if kept.count != entries.count {
            entries = kept
            generation &+= 1
        }
    }

    mutating func clear() {
        entries = []
        generation &+= 1
    }

    // MARK: the checkpoint file (Kafka's `leader-epoch-checkpoint` layout)

    static let fileName = "leader-epoch-checkpoint"

    /// Version 0, the entry count, then "epoch startOffset" lines.
    var fileContents: [UInt8] {
        var text = "0\n\(entries.count)\n"
        for e in entries { text += "\(e.epoch) \(e.startOffset)\n" }
        return Array(text.utf8)
    }

    /// The cache in `directory`, or nil when the file is missing or not well formed.
    static func load(_ directory: String) -> LeaderEpochCache? {
        guard let text = try? String(contentsOfFile: "\(directory)/\(fileName)", encoding: .utf8) else { return nil }
        let lines = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        guard lines.count >= 2, lines[0] == "0", let count = Int(lines[1]), count == lines.count - 2 else { return nil }
        var cache = LeaderEpochCache()
        for line in lines.dropFirst(2) {
            let parts = line.split(separator: " ")
            guard parts.count == 2, let epoch = Int32(parts[0]), let start = Int64(parts[1]) else { return nil }
            guard epoch > cache.latestEpoch, start >= (cache.entries.last?.startOffset ?? Int64.min) else { return nil }
            cache.entries.append(Entry(epoch: epoch, startOffset: start))
        }
        return cache
    }
}

/// Writes the leader-epoch checkpoint outside the log's lock; a copy older than the last one
/// written is skipped, so concurrent writers leave the newest on disk.
final class LeaderEpochFile: Sendable {
    private let path: String
    private let written = NIOLockedValueBox<UInt64?>(nil)

    init(directory: String) { path = "\(directory)/\(LeaderEpochCache.fileName)" }

    func write(_ cache: LeaderEpochCache) throws {
        try written.withLockedValue { last in
            if let last, last >= cache.generation { return }
            try PosixFile.writeAtomically(path, cache.fileContents)
            last = cache.generation
        }
    }
}
