import ArgumentParser
import Foundation
import TernClient

extension TopicCommand {
    struct Reassign: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "reassign",
            abstract: "Move partitions' replicas to other brokers (or cancel a move).",
            discussion: """
                New replicas copy the partition before the old ones are dropped; leadership moves if the \
                leader is dropped. `--replicas` gives one partition (-p) its replica list, or every \
                partition of the topic the same brokers rotated by partition index (partition i starts at \
                the i-th), so preferred leaders stay spread. `--plan` reads Kafka's reassignment JSON \
                ({"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2,3]}]}).
                """)
        @OptionGroup var options: ClientOptions
        @Argument(help: "Topic (not with --plan).") var topic: String?
        @Option(name: [.short, .long], help: "Only this partition of the topic.") var partition: Int32?
        @Option(name: .long, help: "Comma-separated broker ids, the first preferred as leader.") var replicas: String?
        @Option(name: .long, help: "A Kafka reassignment JSON file.") var plan: String?
        @Flag(name: .long, help: "Cancel the reassignment of these partitions: back to their original replicas.") var cancel = false
        @Flag(name: .long, help: "Wait until every partition has finished moving.") var wait = false
        @Option(name: .long, help: "Seconds --wait waits at most.") var timeout: Int = 600

        mutating func run() async throws {
            guard (topic == nil) != (plan == nil) else { throw ValidationError("give a topic or --plan, not both") }
            guard plan == nil || (partition == nil && replicas == nil) else { throw ValidationError("--plan carries its own partitions and replicas") }
            if topic != nil && cancel && replicas != nil { throw ValidationError("--cancel takes no --replicas") }
            if topic != nil && !cancel && replicas == nil { throw ValidationError("give --replicas (or --cancel)") }
            let planned = try plan.map(Self.readPlan)
            let list = try replicas.map(Self.brokerIds)
            let (topic, partition, cancel, wait, timeout) = (self.topic, self.partition, self.cancel, self.wait, self.timeout)
            try await withClient(options) { client in
                var targets: [(topic: String, partition: Int32, replicas: [Int32]?)] = planned ?? []
                if let topic {
                    var partitions = partition.map { [$0] } ?? []
                    if partition == nil { partitions = Array(try await client.topic(topic).partitions.keys).sorted() }
                    for p in partitions {
                        // One partition gets the list as given; a whole topic gets it rotated.
                        targets.append((topic, p, list.map { partition != nil ? $0 : Self.rotated($0, by: Int(p)) }))
                    }
                }
                if cancel { targets = targets.map { ($0.topic, $0.partition, nil) } }
                let results = try await client.alterPartitionReassignments(targets)
                printTable(["TOPIC", "PARTITION", "REPLICAS", "RESULT"], results.map { t, p, code, message in
                    let wanted = targets.first { $0.topic == t && $0.partition == p }?.replicas
                    return [t, "\(p)", wanted.map { $0.map(String.init).joined(separator: ",") } ?? "-",
                            code == 0 ? (cancel ? "cancelled" : "started") : KafkaErrorNames.name(code) + (message.map { ": \($0)" } ?? "")]
                })
                guard results.allSatisfy({ $0.2 == 0 }) else { throw ExitCode.failure }
                guard wait else { return }
                let asked = Dictionary(grouping: targets, by: \.topic).mapValues { $0.map(\.partition) }
                let deadline = Date().addingTimeInterval(TimeInterval(timeout))
                while Date() < deadline {
                    let moving = try await client.listPartitionReassignments(topics: asked)
                    if moving.isEmpty {
                        print("every partition has finished moving")
                        return
                    }
                    try await Task.sleep(for: .milliseconds(500))
                }
                throw ValidationError("still moving after \(timeout) s (see `tern topic reassignments`)")
            }
        }

        static func rotated(_ ids: [Int32], by n: Int) -> [Int32] {
            let k = n % ids.count
            return Array(ids[k...]) + Array(ids[..<k])
        }

        static func brokerIds(_ text: String) throws -> [Int32] {
            let ids = text.split(separator: ",").map { Int32($0.trimmingCharacters(in: .whitespaces)) }
            guard !ids.isEmpty, ids.allSatisfy({ $0 != nil }) else { throw ValidationError("--replicas expects broker ids like 1,2,3, got '\(text)'") }
            return ids.compactMap { $0 }
        }

        private struct Plan: Decodable {
            struct Partition: Decodable {
                let topic: String
                let partition: Int32
                let replicas: [Int32]
            }
            let version: Int?
            let partitions: [Partition]
        }

        static func readPlan(_ path: String) throws -> [(topic: String, partition: Int32, replicas: [Int32]?)] {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            let plan: Plan
            do { plan = try JSONDecoder().decode(Plan.self, from: data) } catch {
                throw ValidationError("\(path) is not a reassignment plan ({\"version\":1,\"partitions\":[{\"topic\",\"partition\",\"replicas\"}]}): \(error)")
            }
            guard plan.version ?? 1 == 1 else { throw ValidationError("\(path): unsupported plan version \(plan.version ?? 0)") }
            return plan.partitions.map { ($0.topic, $0.partition, $0.replicas) }
        }
    }

    struct Reassignments: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the partition reassignments in progress.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "Topics (none: all).") var topics: [String] = []

        mutating func run() async throws {
            let topics = self.topics
            try await withClient(options) { client in
                var asked: [String: [Int32]]?
                if !topics.isEmpty {
                    var byTopic: [String: [Int32]] = [:]
                    for t in topics { byTopic[t] = Array(try await client.topic(t).partitions.keys).sorted() }
                    asked = byTopic
                }
                let moving = try await client.listPartitionReassignments(topics: asked)
                let ids = { (l: [Int32]) in l.isEmpty ? "-" : l.map(String.init).joined(separator: ",") }
                printTable(["TOPIC", "PARTITION", "REPLICAS", "ADDING", "REMOVING"], moving.sorted { ($0.topic, $0.partition) < ($1.topic, $1.partition) }.map {
                    [$0.topic, "\($0.partition)", ids($0.replicas), ids($0.adding), ids($0.removing)]
                })
            }
        }
    }
}
