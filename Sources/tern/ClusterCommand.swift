import ArgumentParser
import TernClient

struct ClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cluster", abstract: "Cluster information.", subcommands: [Info.self])

    struct Info: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Brokers, controller and topic count.")
        @OptionGroup var options: ClientOptions

        mutating func run() async throws {
            try await withClient(options) { client in
                let md = try await client.refreshMetadata(topics: nil)
                print("CLUSTER     \(md.clusterId ?? "")")
                print("CONTROLLER  \(md.controllerId)")
                print("TOPICS      \(md.topics.filter { !$0.isInternal }.count)")
                print("")
                printTable(["ID", "HOST", "PORT"], md.brokers.map { ["\($0.nodeId)\($0.nodeId == md.controllerId ? "*" : "")", $0.host, "\($0.port)"] })
            }
        }
    }
}
