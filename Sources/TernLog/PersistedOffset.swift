import Foundation
import NIOConcurrencyHelpers

/// One offset in a small file of its own (`log-start-offset`, `recovery-point`), replaced
/// atomically (tmp, fsync, rename, fsync directory).
///
/// It only moves forward, and the file is written under this object's own lock — never the log's —
/// so the disk work stays outside the log's critical sections while two threads advancing it (a
/// DeleteRecords request and retention; the appender and the background sync) still leave the
/// larger value on disk.
final class PersistedOffset: Sendable {
    private let path: String
    private let value: NIOLockedValueBox<Int64>

    /// The value in `directory/name`, or nil when the file is missing or unreadable.
    static func read(_ directory: String, _ name: String) -> Int64? {
        guard let text = try? String(contentsOfFile: "\(directory)/\(name)", encoding: .utf8) else { return nil }
        return Int64(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    init(directory: String, name: String) {
        path = "\(directory)/\(name)"
        value = NIOLockedValueBox(Self.read(directory, name) ?? 0)
    }

    var current: Int64 { value.withLockedValue { $0 } }

    /// Writes `offset` if it is beyond the persisted value; returns once it is on disk.
    func advance(to offset: Int64) throws {
        try value.withLockedValue { persisted in
            guard offset > persisted else { return }
            try Self.write(offset, to: path)
            persisted = offset
        }
    }

    /// Replaces the value even when it moves back: only for repairing a damaged file at open.
    func reset(to offset: Int64) throws {
        try value.withLockedValue { persisted in
            try Self.write(offset, to: path)
            persisted = offset
        }
    }

    private static func write(_ offset: Int64, to path: String) throws {
        try PosixFile.writeAtomically(path, Array("\(offset)\n".utf8))
    }
}
