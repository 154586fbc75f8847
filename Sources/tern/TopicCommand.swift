import ArgumentParser
import TernClient
import TernProtocol

struct TopicCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topic", abstract: "Create, list, describe, delete and configure topics.",
        subcommands: [Create.self, List.self, Describe.self, Delete.self, AlterConfig.self, ElectLeaders.self, Reassign.self, Reassignments.self])

    struct ElectLeaders: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "elect-leaders",
            abstract: "Move leadership back to preferred replicas, or (--unclean) elect any live replica for partitions without a leader.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "Topics (none: every partition of the cluster).") var topics: [String] = []
        @Option(name: [.short, .long], help: "Only this partition of the topic (one topic).") var partition: Int32?
        @Flag(name: .long, help: "Unclean election: may lose records the chosen replica lacks.") var unclean = false

        mutating func run() async throws {
            guard partition == nil || topics.count == 1 else { throw ValidationError("--partition needs exactly one topic") }
            let (topics, partition, unclean) = (self.topics, self.partition, self.unclean)
            try await withClient(options) { client in
                var wanted: [String: [Int32]]?
                if !topics.isEmpty {
                    var byTopic: [String: [Int32]] = [:]
                    for t in topics {
                        if let partition {
                            byTopic[t] = [partition]
                        } else {
                            byTopic[t] = Array(try await client.topic(t).partitions.keys).sorted()
                        }
                    }
                    wanted = byTopic
                }
                let results = try await client.electLeaders(unclean: unclean, partitions: wanted)
                printTable(["TOPIC", "PARTITION", "RESULT"], results.sorted { ($0.0, $0.1) < ($1.0, $1.1) }.map { t, p, code, message in
                    [t, "\(p)", code == 0 ? "elected" : KafkaErrorNames.name(code) + (message.map { ": \($0)" } ?? "")]
                })
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create topics.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "Topic names.") var topics: [String]
        @Option(name: [.short, .long], help: "Partitions (-1: broker default).") var partitions: Int32 = -1
        @Option(name: [.short, .customLong("replicas")], help: "Replication factor (-1: broker default).") var replicas: Int16 = -1
        @Option(name: [.customShort("c"), .customLong("config")], help: "Topic config key=value; repeatable.") var configs: [String] = []

        mutating func run() async throws {
            let configs = Dictionary(try parsePairs(configs, what: "--config"), uniquingKeysWith: { $1 })
            let (topics, partitions, replicas) = (self.topics, self.partitions, self.replicas)
            try await withClient(options) { client in
                for t in topics {
                    try await client.createTopic(t, partitions: partitions, replicationFactor: replicas, configs: configs)
                    print("created \(t)")
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List topics.")
        @OptionGroup var options: ClientOptions
        @Flag(name: [.short, .customLong("internal")], help: "Include internal topics.") var includeInternal = false

        mutating func run() async throws {
            let showInternal = self.includeInternal
            try await withClient(options) { client in
                let md = try await client.refreshMetadata(topics: nil)
                let rows = md.topics.filter { showInternal || !$0.isInternal }.sorted { ($0.name ?? "") < ($1.name ?? "") }
                    .map { [$0.name ?? "", "\($0.partitions.count)", "\($0.partitions.first?.replicaNodes.count ?? 0)"] }
                printTable(["NAME", "PARTITIONS", "REPLICAS"], rows)
            }
        }
    }

    struct Describe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a topic's partitions and offsets.")
        @OptionGroup var options: ClientOptions
        @Argument var topic: String

        mutating func run() async throws {
            let topic = self.topic
            try await withClient(options) { client in
                let info = try await client.topic(topic)
                print("NAME       \(topic)")
                print("TOPIC ID   \(info.id)")
                print("PARTITIONS \(info.partitions.count)")
                var rows: [[String]] = []
                for p in info.partitions.keys.sorted() {
                    let low = try await client.listOffset(topic: topic, partition: p, timestamp: -2)
                    let high = try await client.listOffset(topic: topic, partition: p, timestamp: -1)
                    rows.append(["\(p)", "\(info.partitions[p]!)", "\(low)", "\(high)"])
                }
                print("")
                printTable(["PARTITION", "LEADER", "LOG-START-OFFSET", "HIGH-WATERMARK"], rows)
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete topics.")
        @OptionGroup var options: ClientOptions
        @Argument var topics: [String]

        mutating func run() async throws {
            let topics = self.topics
            try await withClient(options) { client in
                for t in topics {
                    try await client.deleteTopic(t)
                    print("deleted \(t)")
                }
            }
        }
    }

    struct AlterConfig: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "alter-config", abstract: "Set or delete topic configs.")
        @OptionGroup var options: ClientOptions
        @Argument var topic: String
        @Option(name: .long, help: "key=value to set; repeatable.") var set: [String] = []
        @Option(name: .long, help: "Key to reset to the broker default; repeatable.") var delete: [String] = []

        mutating func run() async throws {
            let sets = try parsePairs(set, what: "--set")
            let (topic, deletes) = (self.topic, self.delete)
            guard !sets.isEmpty || !deletes.isEmpty else { throw ValidationError("nothing to change: use --set or --delete") }
            try await withClient(options) { client in
                try await client.alterTopicConfig(topic, set: sets, delete: deletes)
                print("altered \(topic)")
            }
        }
    }
}
