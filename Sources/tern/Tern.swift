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
}
