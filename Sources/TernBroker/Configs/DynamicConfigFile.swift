import Foundation
import NIOConcurrencyHelpers
import TernLog

/// A single broker's dynamic broker configs, in `<data dir>/tern-broker-configs.json` (written
/// atomically: temporary file, fsync, rename), so they survive restarts as Kafka's survive in its
/// metadata log. A cluster keeps them in etcd instead (`ClusterMember.updateBrokerConfigs`).
///
/// Sendable: the settings are under a lock, held across the file write, so two changes cannot
/// interleave their read-modify-write. Blocking I/O: `update` runs off the event loops.
final class DynamicConfigFile: Sendable {
    struct Damaged: Error, CustomStringConvertible {
        let path: String
        let reason: String
        var description: String {
            "\(path) is unreadable (\(reason)); fix it, or remove it to start with the settings of server.properties alone"
        }
    }

    static let name = "tern-broker-configs.json"
    let path: String
    private let stored: NIOLockedValueBox<DynamicBrokerConfigs>

    init(directory: String) throws {
        path = directory + "/" + Self.name
        guard FileManager.default.fileExists(atPath: path) else {
            stored = NIOLockedValueBox(DynamicBrokerConfigs())
            return
        }
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            stored = NIOLockedValueBox(DynamicBrokerConfigs(try JSONDecoder().decode([String: [String: String]].self, from: data)))
        } catch {
            // Starting without them would silently undo an operator's change (a retention limit,
            // min.insync.replicas): refuse instead.
            throw Damaged(path: path, reason: "\(error)")
        }
    }

    var current: DynamicBrokerConfigs { stored.withLockedValue { $0 } }

    /// Replaces `entity`'s settings with `change(current)`, durably, and hands the whole new set
    /// to `apply` before the next change can start (so changes take effect in the order written).
    func update(
        _ entity: String, _ change: ([String: String]) throws -> [String: String], apply: (DynamicBrokerConfigs) -> Void
    ) throws -> DynamicBrokerConfigs {
        try stored.withLockedValue { configs in
            var next = configs
            next.entities[entity] = try change(configs.settings(of: entity))
            next = DynamicBrokerConfigs(next.entities)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try PosixFile.writeAtomically(path, Array(try encoder.encode(next.entities)))
            configs = next
            apply(next)
            return next
        }
    }
}
