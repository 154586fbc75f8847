import ArgumentParser
import TernClient

struct GroupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "group", abstract: "List, describe and reset consumer groups.",
        subcommands: [List.self, Describe.self, ResetOffsets.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List groups.")
        @OptionGroup var options: ClientOptions

        mutating func run() async throws {
            try await withClient(options) { client in
                let groups = try await client.listGroups()
                printTable(["GROUP", "STATE", "TYPE"], groups.map { [$0.groupId, $0.groupState, $0.groupType.isEmpty ? $0.protocolType : $0.groupType] })
            }
        }
    }

    struct Describe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a group's members, offsets and lag.")
        @OptionGroup var options: ClientOptions
        @Argument var group: String

        mutating func run() async throws {
            let group = self.group
            try await withClient(options) { client in
                let g = try await client.describeGroup(group)
                print("GROUP     \(group)")
                print("STATE     \(g.groupState)")
                print("PROTOCOL  \(g.protocolData)")
                print("MEMBERS   \(g.members.count)")
                for m in g.members { print("  \(m.memberId) \(m.clientId) \(m.clientHost)") }
                var rows: [[String]] = []
                let committed = try await client.committedOffsets(group: group)
                for topic in committed.keys.sorted() {
                    for (p, o) in committed[topic]!.sorted(by: { $0.key < $1.key }) {
                        let end = try await client.listOffset(topic: topic, partition: p, timestamp: -1)
                        rows.append([topic, "\(p)", "\(o)", "\(end)", "\(max(0, end - o))"])
                    }
                }
                print("")
                printTable(["TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG"], rows)
            }
        }
    }

    struct ResetOffsets: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "reset-offsets", abstract: "Move an inactive group's offsets.")
        @OptionGroup var options: ClientOptions
        @Argument var group: String
        @Option(name: [.short, .long], help: "Topic to reset.") var topic: String
        @Flag(name: .customLong("to-earliest")) var toEarliest = false
        @Flag(name: .customLong("to-latest")) var toLatest = false
        @Option(name: .customLong("to-offset")) var toOffset: Int64?
        @Option(name: .customLong("to-timestamp"), help: "Milliseconds since the epoch.") var toTimestamp: Int64?

        mutating func validate() throws {
            let chosen = [toEarliest, toLatest, toOffset != nil, toTimestamp != nil].filter { $0 }.count
            guard chosen == 1 else { throw ValidationError("choose exactly one of --to-earliest, --to-latest, --to-offset, --to-timestamp") }
        }

        mutating func run() async throws {
            let (group, topic) = (self.group, self.topic)
            let target: Consumer.StartOffset =
                toEarliest ? .earliest : toLatest ? .latest : toOffset.map { .offset($0) } ?? .timestamp(toTimestamp!)
            try await withClient(options) { client in
                let consumer = Consumer(client: client)
                try await consumer.assign(topic: topic, from: target)
                var offsets: [String: [Int32: Int64]] = [:]
                for (tp, o) in consumer.positions { offsets[tp.topic, default: [:]][tp.partition] = o }
                try await client.commitOffsets(group: group, offsets)
                printTable(["TOPIC", "PARTITION", "NEW-OFFSET"], consumer.positions.keys.sorted().map { [$0.topic, "\($0.partition)", "\(consumer.positions[$0]!)"] })
            }
        }
    }
}
