import ArgumentParser
import Foundation

extension BenchCommand {
    /// Fairness under load: a light producer's acknowledgement latency alone, then beside a heavy
    /// producer writing as fast as it can to another topic. The ratio of the two p99s is the figure:
    /// one partition's backlog must not become another partition's latency.
    struct Noisy: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Light producer latency alone, then beside a heavy producer on another topic (noisy neighbour).")
        @OptionGroup var client: ClientOptions
        @Option(name: .long, help: "Seconds per phase.") var duration: Double = 10
        @Option(name: .customLong("light-rate"), help: "Records/s of the light producer.") var lightRate: Double = 1000
        @Option(name: .customLong("light-record-size")) var lightRecordSize: Int = 100
        @Option(name: .customLong("heavy-record-size")) var heavyRecordSize: Int = 10_240
        @Option(name: .customLong("heavy-producers"), help: "Heavy producers (each its own connection).") var heavyProducers: Int = 1
        @Option(name: .long, parsing: .unconditional, help: "acks for both producers: 0, 1, or -1 / all.") var acks = Acks(-1)
        @Flag(name: .long, help: "Print the summaries as JSON.") var json = false

        private func common(topic: String, recordSize: Int) throws -> Common {
            var c = try Common.parse([])
            c.client = client
            c.topic = topic
            c.partitions = 1
            c.duration = duration
            c.recordSize = recordSize
            c.json = json
            return c
        }

        private func producer(rate: Double, producers: Int) throws -> ProducerOptions {
            var p = try ProducerOptions.parse([])
            p.rate = rate
            p.producers = producers
            p.acks = acks
            // Each record is sent on its own (no linger), so its latency is the broker's.
            p.lingerMs = 0
            return p
        }

        mutating func run() async throws {
            let lightCommon = try common(topic: "tern-noisy-light", recordSize: lightRecordSize)
            let light = try producer(rate: lightRate, producers: 1)

            if !json { print("== light producer alone (\(Int(lightRate)) records/s, \(lightRecordSize) B) ==") }
            let alone = BenchRun(mode: "light alone", common: lightCommon)
            try await alone.ensureTopic()
            try await alone.produce(light, stamp: false)
            let aloneSummary = try alone.finish()

            if !json { print("== light producer beside a heavy one (\(heavyProducers) × as fast as possible, \(heavyRecordSize) B) ==") }
            // The heavy producer runs in a process of its own, as a neighbour would: sharing this
            // process's executor with it would measure the client's queueing, not the broker's.
            let heavy = Process()
            heavy.executableURL = URL(fileURLWithPath: "/proc/self/exe")
            heavy.arguments = [
                "bench", "produce", "-b", client.brokers, "-t", "tern-noisy-heavy", "--partitions", "1", "-s", "\(heavyRecordSize)",
                "--duration", "\(duration + 1)", "--producers", "\(heavyProducers)", "--acks=\(acks.value)", "--json",
            ]
            let heavyOutput = Pipe()
            heavy.standardOutput = heavyOutput
            heavy.standardError = FileHandle.nullDevice
            try heavy.run()
            try await Task.sleep(for: .milliseconds(500))  // let it reach full speed
            let beside = BenchRun(mode: "light beside heavy", common: lightCommon)
            try await beside.produce(light, stamp: false)
            let besideSummary = try beside.finish()
            let heavyJSON = heavyOutput.fileHandleForReading.readDataToEndOfFile()
            heavy.waitUntilExit()
            let heavySummary = try? JSONDecoder().decode(BenchSummary.self, from: heavyJSON)
            if !json, let h = heavySummary { print(h.text) }

            if !json, let a = aloneSummary.latencyMs, let b = besideSummary.latencyMs {
                print(String(format: "light p50 %.2f → %.2f ms, p99 %.2f → %.2f ms (%.1f× alone) while the heavy producer wrote %.0f MB/s",
                             a.p50, b.p50, a.p99, b.p99, b.p99 / max(a.p99, 0.001), heavySummary?.mbPerSec ?? 0))
            }
        }
    }
}
