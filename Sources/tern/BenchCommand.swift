import ArgumentParser
import Dispatch
import Foundation
import Histogram
import NIOConcurrencyHelpers
import NIOCore
import TernClient
import TernProtocol

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Load generator and benchmark (latency histograms, JSON, HTML report).",
        subcommands: [Produce.self, Consume.self, EndToEnd.self, Noisy.self])

    struct Common: ParsableArguments {
        @OptionGroup var client: ClientOptions
        @Option(name: [.short, .long], help: "Topic (created if missing).") var topic: String = "tern-bench"
        @Option(name: .long, help: "Partitions when creating the topic.") var partitions: Int32 = 6
        @Option(name: [.customShort("n"), .long], help: "Records in total.") var records: Int = 1_000_000
        @Option(name: [.short, .long], help: "Stop after this many seconds instead (0 = use --records).") var duration: Double = 0
        @Option(name: [.customShort("s"), .customLong("record-size")], help: "Value bytes per record.") var recordSize: Int = 100
        @Flag(name: .long, help: "Print the summary as JSON.") var json = false
        @Option(name: .long, help: "Write an HTML report with latency charts to this file.") var report: String?
    }

    struct ProducerOptions: ParsableArguments {
        @Option(name: .long, help: "Target records/s over all producers (0 = as fast as possible).") var rate: Double = 0
        @Option(name: .long, help: "Concurrent producers (each its own connection).") var producers: Int = 1
        @Option(name: .long, parsing: .unconditional, help: "0, 1, or -1 / all.") var acks = Acks(1)
        @Option(name: .long, help: "none, gzip, snappy, lz4 or zstd.") var compression: String = "none"
        @Option(name: .customLong("batch-size"), help: "Batch bytes per partition.") var batchSize: Int = 256 << 10
        @Option(name: .customLong("linger-ms")) var lingerMs: Int = 5
        @Option(name: .long, help: "Distinct keys (0 = unkeyed, sticky partitioning).") var keys: Int = 0

        func producerConfig() throws -> Producer.Config {
            var c = Producer.Config()
            c.acks = acks.value
            c.batchSize = batchSize
            c.lingerMs = lingerMs
            guard let codec = CompressionCodec(kafkaName: compression) else { throw ValidationError("--compression: none, gzip, snappy, lz4 or zstd") }
            c.compression = codec
            return c
        }
    }

    struct Produce: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Produce records as fast as asked and measure ack latency.")
        @OptionGroup var common: Common
        @OptionGroup var producer: ProducerOptions

        mutating func run() async throws {
            let run = BenchRun(mode: "produce", common: common)
            try await run.ensureTopic()
            try await run.produce(producer, stamp: false)
            try run.finish()
        }
    }

    struct Consume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Consume a topic from the start and measure throughput.")
        @OptionGroup var common: Common

        mutating func run() async throws {
            let run = BenchRun(mode: "consume", common: common)
            try await run.consume(stamped: false)
            try run.finish()
        }
    }

    struct EndToEnd: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "e2e", abstract: "Produce and consume at once; latency is send → receive.")
        @OptionGroup var common: Common
        @OptionGroup var producer: ProducerOptions

        mutating func run() async throws {
            let run = BenchRun(mode: "e2e", common: common)
            try await run.ensureTopic()
            let start = try await run.endOffsets()
            let options = producer
            async let consumed: Void = run.consume(stamped: true, from: start)
            try await run.produce(options, stamp: true, recordLatency: false)
            try await consumed
            try run.finish()
        }
    }
}
