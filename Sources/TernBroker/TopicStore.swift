import Foundation
import TernProtocol

/// What the broker knows about a topic, persisted so a restart keeps it.
public struct TopicMetadata: Codable, Sendable, Equatable {
    public var name: String
    public var id: String  // 32 hex digits of the topic's UUID
    public var partitions: Int32
    public var configs: [String: String]

    public var topicId: KafkaUUID { KafkaUUID(hex: id) ?? .zero }
}

/// Durable topic metadata: one JSON file in the log directory, replaced atomically
/// (write temp, fsync, rename, fsync directory) on every change.
struct TopicStore {
    struct Contents: Codable {
        var clusterId: String
        var topics: [TopicMetadata]
    }

    let path: String
    let directory: String

    init(directory: String) {
        self.directory = directory
        self.path = directory + "/tern-metadata.json"
    }

    func load() throws -> Contents? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return try JSONDecoder().decode(Contents.self, from: try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    func save(_ contents: Contents) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(contents)
        let tmp = path + ".tmp"
        guard FileManager.default.createFile(atPath: tmp, contents: data) else { throw CocoaError(.fileWriteUnknown) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: tmp))
        try handle.synchronize()
        try handle.close()
        if rename(tmp, path) != 0 { throw CocoaError(.fileWriteUnknown) }
        let dfd = open(directory, O_RDONLY | O_DIRECTORY)
        if dfd >= 0 {
            fsync(dfd)
            close(dfd)
        }
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
}
