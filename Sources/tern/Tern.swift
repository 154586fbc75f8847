import Foundation
import ArgumentParser

@main
struct Tern: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tern",
        abstract: "Tern: a Kafka-compatible event streaming broker, and tools for any Kafka-compatible cluster.",
        subcommands: [
            BrokerCommand.self, TopicCommand.self, ProduceCommand.self, ConsumeCommand.self, GroupCommand.self,
            ClusterCommand.self, BenchCommand.self, VerifyCommand.self,
        ])

    /// The arguments come from the command line — except under libfaketime, which `tern verify`
    /// preloads into brokers for its clock jumps and under which Swift's `CommandLine.arguments`
    /// comes back empty: the harness then passes them as a JSON array in `TERN_ARGV` too.
    static func main() async {
        guard CommandLine.arguments.isEmpty, let json = ProcessInfo.processInfo.environment["TERN_ARGV"],
            let arguments = try? JSONDecoder().decode([String].self, from: Data(json.utf8))
        else { return await main(nil) }
        await main(arguments)
    }
}
