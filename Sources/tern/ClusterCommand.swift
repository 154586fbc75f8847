import ArgumentParser
import TernClient

struct ClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cluster", abstract: "Cluster information.", subcommands: [Info.self])

    struct Info: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Brokers, the controller, and every partition's leader, replicas and in-sync replicas.")
        @OptionGroup var options: ClientOptions
        @Option(name: .long, help: "Only this topic's partitions.") var topic: String?
        @Flag(name: .customLong("internal"), help: "Include the internal topics.") var includeInternal = false

        mutating func run() async throws {
            let only = topic
            let withInternal = includeInternal
            try await withClient(options) { client in
                let md = try await client.refreshMetadata(topics: only.map { [$0] })
                let live = Set(md.brokers.map(\.nodeId))
                print("CLUSTER     \(md.clusterId ?? "")")
                print("CONTROLLER  \(md.controllerId)")
                print("TOPICS      \(md.topics.filter { !$0.isInternal }.count)")
                print("")
                printTable(["ID", "HOST", "PORT", "RACK"], md.brokers.sorted { $0.nodeId < $1.nodeId }.map {
                    ["\($0.nodeId)\($0.nodeId == md.controllerId ? "*" : "")", $0.host, "\($0.port)", $0.rack ?? "-"]
                })
                let replicaIds = Set(md.topics.flatMap { $0.partitions.flatMap(\.replicaNodes) })
                let gone = replicaIds.subtracting(live).sorted()
                if !gone.isEmpty { print("not registered (dead or fenced): \(gone.map(String.init).joined(separator: ","))") }
                print("")
                var rows: [[String]] = []
                for t in md.topics.sorted(by: { ($0.name ?? "") < ($1.name ?? "") }) where withInternal || !t.isInternal || only != nil {
                    for p in t.partitions.sorted(by: { $0.partitionIndex < $1.partitionIndex }) {
                        let list = { (ids: [Int32]) in ids.map(String.init).joined(separator: ",") }
                        rows.append([
                            t.name ?? "", "\(p.partitionIndex)", p.leaderId < 0 ? "none" : "\(p.leaderId)", "\(p.leaderEpoch)",
                            list(p.replicaNodes), list(p.isrNodes), p.offlineReplicas.isEmpty ? "-" : list(p.offlineReplicas),
                        ])
                    }
                }
                printTable(["TOPIC", "PARTITION", "LEADER", "EPOCH", "REPLICAS", "ISR", "OFFLINE"], rows)
            }
        }
    }
}
