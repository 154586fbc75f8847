import ArgumentParser
import Foundation
import TernClient

/// Where the cluster is. Works against any Kafka-compatible broker.
struct ClientOptions: ParsableArguments {
    @Option(name: [.long, .customShort("b")], help: "Comma-separated host:port list (or $TERN_BROKERS).")
    var brokers: String = ProcessInfo.processInfo.environment["TERN_BROKERS"] ?? "127.0.0.1:9092"

    @Option(name: .long, help: "Client id sent to the brokers.")
    var clientId: String = "tern-cli"

    func makeClient() -> KafkaClient {
        KafkaClient(bootstrap: brokers.split(separator: ",").map(String.init), clientId: clientId)
    }
}

/// Runs `body` with a client and always closes it.
func withClient<T>(_ options: ClientOptions, _ body: (KafkaClient) async throws -> T) async throws -> T {
    let client = options.makeClient()
    do {
        let result = try await body(client)
        await client.close()
        return result
    } catch {
        await client.close()
        throw error
    }
}

/// Parses "k=v" pairs.
func parsePairs(_ pairs: [String], what: String) throws -> [(String, String)] {
    try pairs.map { p in
        guard let eq = p.firstIndex(of: "=") else { throw ValidationError("\(what) expects key=value, got '\(p)'") }
        return (String(p[..<eq]), String(p[p.index(after: eq)...]))
    }
}

func printTable(_ header: [String], _ rows: [[String]]) {
    let widths = header.indices.map { i in max(header[i].count, rows.map { $0[i].count }.max() ?? 0) }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { i, c in c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }.joined(separator: "  ")
            .trimmingCharacters(in: .whitespaces)
    }
    print(line(header))
    for r in rows { print(line(r)) }
}
