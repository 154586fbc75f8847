import Foundation
import TernLog
import TernProtocol

/// A data directory's own id (`<log.dirs>/tern-directory-id`, written once): in a registration it
/// tells a broker restarting on the same directory — whose previous process died moments ago and
/// whose lease has not yet run out — from a different broker started with the same node id. The
/// first takes the stale registration over; the second is refused (Kafka tells them apart the same
/// way, with the log directory's id in meta.properties and an incarnation id).
enum DirectoryIdentity {
    static func load(logDir: String) throws -> String {
        try FileManager.default.createDirectory(atPath: logDir, withIntermediateDirectories: true)
        let path = logDir + "/tern-directory-id"
        if let existing = try? String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines),
            !existing.isEmpty
        {
            return existing
        }
        let id = KafkaUUID.random().description
        try PosixFile.writeAtomically(path, Array((id + "\n").utf8))
        return id
    }
}
