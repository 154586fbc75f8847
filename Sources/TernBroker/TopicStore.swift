#if canImport(Glibc)
    import Glibc
#endif
import Foundation
import TernLog
import TernProtocol

/// What the broker knows about a topic, persisted so a restart keeps it.
public struct TopicMetadata: Codable, Sendable, Equatable {
    public var name: String
    public var id: String  // 32 hex digits of the topic's UUID
    public var partitions: Int32
    public var configs: [String: String]
    /// Partitions with a replica on this broker (cluster mode); nil: all of them (a single broker).
    public var hosted: [Int32]?

    public var topicId: KafkaUUID { KafkaUUID(hex: id) ?? .zero }

    public init(name: String, id: String, partitions: Int32, configs: [String: String], hosted: [Int32]? = nil) {
        self.name = name
        self.id = id
        self.partitions = partitions
        self.configs = configs
        self.hosted = hosted
    }

    public func hosts(_ partition: Int32) -> Bool { hosted?.contains(partition) ?? true }
}

/// Durable topic metadata: one JSON file in the log directory, replaced atomically on every
/// change, with the previous version kept beside it (`.bak`). A damaged file falls back to the
/// backup with a loud warning (at worst the last change is lost) instead of stopping the broker.
struct TopicStore {
    struct Contents: Codable {
        var clusterId: String
        var topics: [TopicMetadata]
    }

    enum LoadError: Error, CustomStringConvertible {
        case unreadable(path: String, reason: String)
        var description: String {
            switch self {
            case .unreadable(let path, let reason):
                return "\(path) and its backup are unreadable (\(reason)); restore one of them or move them away to start with no topics"
            }
        }
    }

    let path: String
    let directory: String
    var backupPath: String { path + ".bak" }

    init(directory: String) {
        self.directory = directory
        self.path = directory + "/tern-metadata.json"
    }

    /// The stored contents, nil for a fresh directory; `warn` hears about a fallback to the backup.
    func load(warn: (String) -> Void = { _ in }) throws -> Contents? {
        guard FileManager.default.fileExists(atPath: path) || FileManager.default.fileExists(atPath: backupPath) else { return nil }
        do {
            return try decode(path)
        } catch {
            warn("\(path) is unreadable (\(error)); using the previous version from \(backupPath)")
            do {
                return try decode(backupPath)
            } catch let backupError {
                throw LoadError.unreadable(path: path, reason: "\(error); backup: \(backupError)")
            }
        }
    }

    private func decode(_ file: String) throws -> Contents {
        try JSONDecoder().decode(Contents.self, from: try Data(contentsOf: URL(fileURLWithPath: file)))
    }

    func save(_ contents: Contents) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(contents)
        // The current version becomes the backup (a rename: O(1) however many topics there are);
        // a crash before the new file lands leaves only the backup, which `load` falls back to.
        if FileManager.default.fileExists(atPath: path) && rename(path, backupPath) != 0 {
            throw LogError.io("rename \(path)", errno)
        }
        try PosixFile.writeAtomically(path, Array(data))
    }
}

enum TopicName {
    /// Kafka's rule: 1-249 characters of [a-zA-Z0-9._-], and not "." or "..".
    static func isValid(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 249, name != ".", name != ".." else { return false }
        return name.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2E || c == 0x5F || c == 0x2D
        }
    }

    /// The existing topic `name` collides with, if any: Kafka refuses names that differ only in
    /// '.' versus '_', whose metric names would be the same.
    static func collision(of name: String, among existing: some Sequence<String>) -> String? {
        guard name.contains(where: { $0 == "." || $0 == "_" }) else { return nil }
        let folded = name.replacingOccurrences(of: ".", with: "_")
        return existing.first { $0 != name && $0.replacingOccurrences(of: ".", with: "_") == folded }
    }
}
