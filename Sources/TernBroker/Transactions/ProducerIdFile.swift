import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOPosix
import TernLog

/// A single broker's producer-id reservations (`ProducerIdBlocks`' source without a cluster): the
/// end of the last block reserved, in `<data dir>/producer-ids`, written durably (fsync, rename)
/// before any id of the block is handed out. A restarted broker continues above it. Counting from
/// the wall clock, as Tern did before, handed an id out twice after the clock was stepped back, or
/// after more than one id per millisecond had been handed out before a quick restart — and a
/// partition that still remembers the id takes the new producer's first batch for a duplicate.
///
/// Sendable: the reservation's end is under a lock, held across the file write (one per block).
final class ProducerIdFile: Sendable {
    struct Damaged: Error, CustomStringConvertible {
        let path: String
        var description: String {
            "\(path) is damaged; remove it to count producer ids from the wall clock and the logs again"
        }
    }

    static let name = "producer-ids"
    let path: String
    private let end: NIOLockedValueBox<Int64>

    /// `floor`: where a directory without the file starts — above every id its logs remember (a
    /// directory from before the file counted from the wall clock).
    init(directory: String, floor: () -> Int64) throws {
        path = directory + "/" + Self.name
        guard FileManager.default.fileExists(atPath: path) else {
            end = NIOLockedValueBox(floor())
            return
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
            let value = Int64(text.trimmingCharacters(in: .whitespacesAndNewlines)), value >= 0
        else {
            // Written by rename, so only damage gets here: guessing could hand an id out twice.
            throw Damaged(path: path)
        }
        end = NIOLockedValueBox(value)
    }

    /// The next `count` ids, durable before they are returned. Blocking I/O: call it off the
    /// event loops.
    func reserve(_ count: Int64) throws -> Range<Int64> {
        precondition(count > 0)
        return try end.withLockedValue { end in
            let block = end..<(end + count)
            try PosixFile.writeAtomically(path, Array("\(block.upperBound)\n".utf8))
            end = block.upperBound
            return block
        }
    }
}

extension ProducerIdBlocks {
    /// A single broker's producer ids: blocks reserved in its data directory, the first one now;
    /// later ones on NIO's blocking-I/O pool.
    static func local(directory: String, topics: TopicRegistry, logger: Logger) throws -> ProducerIdBlocks {
        let file = try ProducerIdFile(directory: directory) {
            let remembered = topics.allTopics.flatMap(\.partitions).flatMap(\.activeProducers).map(\.producerId).max() ?? -1
            return max(PartitionLog.nowMs(), remembered + 1)
        }
        return ProducerIdBlocks(first: try file.reserve(blockSize), logger: logger) { count in
            try await NIOThreadPool.singleton.runIfActive { try file.reserve(count) }
        }
    }
}
