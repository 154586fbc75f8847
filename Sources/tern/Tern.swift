import ArgumentParser

@main
struct Tern: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tern",
        abstract: "Tern: a Kafka-compatible event streaming broker.",
        subcommands: [BrokerCommand.self])
}
