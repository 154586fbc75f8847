import ArgumentParser
import Dispatch
import Foundation
import Histogram
import NIOConcurrencyHelpers
import NIOCore
import TernClient
import TernProtocol

/// One benchmark run: counters, a latency histogram (microseconds), per-second snapshots for the
/// live line and the report. Sendable: the counters live in a locked box; `ticker` is set in init
/// and cancelled in `finish`, on the task that owns the run.
final class BenchRun: @unchecked Sendable {
    struct Second: Codable {
        var t: Double
        var records: Int
        var mbPerSec: Double
        var p50Ms: Double
        var p99Ms: Double
    }

    struct Stats {
        var total = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
        var interval = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
        var records = 0
        var bytes = 0
        var errors = 0
        var intervalRecords = 0
        var intervalBytes = 0
        var seconds: [Second] = []
    }

    let mode: String
    let common: BenchCommand.Common
    let stats = NIOLockedValueBox(Stats())
    let started = DispatchTime.now().uptimeNanoseconds
    private var ticker: Task<Void, Never>?
    let isTTY = isatty(STDERR_FILENO) == 1

    init(mode: String, common: BenchCommand.Common) {
        self.mode = mode
        self.common = common
        let box = stats
        let started = self.started
        let tty = isTTY && !common.json
        ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                let second = box.withLockedValue { s -> Second in
                    let t = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
                    let sec = Second(
                        t: t, records: s.intervalRecords, mbPerSec: Double(s.intervalBytes) / 1e6,
                        p50Ms: Double(s.interval.valueAtPercentile(50)) / 1000, p99Ms: Double(s.interval.valueAtPercentile(99)) / 1000)
                    s.seconds.append(sec)
                    s.intervalRecords = 0
                    s.intervalBytes = 0
                    s.interval.reset()
                    return sec
                }
                if tty {
                    let line = String(format: "\r%6.1fs  %10d rec/s  %8.1f MB/s  p50 %7.2f ms  p99 %7.2f ms", second.t, second.records, second.mbPerSec, second.p50Ms, second.p99Ms)
                    FileHandle.standardError.write(Data(line.utf8))
                }
            }
        }
    }

    var deadline: UInt64? { common.duration > 0 ? started + UInt64(common.duration * 1e9) : nil }

    func client() -> KafkaClient { common.client.makeClient() }

    func ensureTopic() async throws {
        let c = client()
        defer { Task { await c.close() } }
        if (try? await c.topic(common.topic)) == nil {
            do {
                try await c.createTopic(common.topic, partitions: common.partitions)
            } catch ClientError.kafka(let code, _) where code == 36 {}  // created meanwhile
        }
    }

    func endOffsets() async throws -> [TopicPartition: Int64] {
        let c = client()
        let consumer = Consumer(client: c)
        try await consumer.assign(topic: common.topic, from: .latest)
        let positions = consumer.positions
        await c.close()
        return positions
    }

    func record(latencyMicros: [UInt64], bytes: Int, error: Bool) {
        stats.withLockedValue { s in
            if error {
                s.errors += latencyMicros.count
                return
            }
            for l in latencyMicros {
                _ = s.total.record(l)
                _ = s.interval.record(l)
            }
            s.records += latencyMicros.count
            s.intervalRecords += latencyMicros.count
            s.bytes += bytes
            s.intervalBytes += bytes
        }
    }

    func countOnly(records: Int, bytes: Int) {
        stats.withLockedValue { s in
            s.records += records
            s.intervalRecords += records
            s.bytes += bytes
            s.intervalBytes += bytes
        }
    }

    /// Producers send until `--records` or `--duration`; with `stamp`, each value starts with its send
    /// time so a consumer can measure end-to-end latency.
    func produce(_ options: BenchCommand.ProducerOptions, stamp: Bool, recordLatency: Bool = true) async throws {
        let config = try options.producerConfig()
        let producers = max(1, options.producers)
        let perProducer = common.records / producers
        let size = max(common.recordSize, stamp ? 8 : 0)
        let template = ByteBuffer(repeating: 0x61, count: size)
        let keys = options.keys
        let rate = options.rate / Double(producers)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<producers {
                group.addTask { [self] in
                    try await runProducer(config: config, count: perProducer, size: size, template: template, keys: keys,
                                          rate: rate, stamp: stamp, recordLatency: recordLatency)
                }
            }
            try await group.waitForAll()
        }
    }

    private func runProducer(config: Producer.Config, count: Int, size: Int, template: ByteBuffer, keys: Int, rate: Double,
                             stamp: Bool, recordLatency: Bool) async throws {
        let client = self.client()
        var observer: Producer.BatchObserver?
        if recordLatency {
            observer = { [self] (sendTimes: [UInt64], error: Error?) in
                let now = DispatchTime.now().uptimeNanoseconds
                let latencies = sendTimes.map { (now &- $0) / 1000 }
                self.record(latencyMicros: latencies, bytes: sendTimes.count * size, error: error != nil)
            }
        }
        let producer = Producer(client: client, config: config, observer: observer)
        try await producer.prepare(topic: common.topic)
        let begin = DispatchTime.now().uptimeNanoseconds
        let keyBuffers = (0..<keys).map { ByteBuffer(string: "key-\($0)") }
        var sent = 0
        while true {
            if let deadline {
                if sent % 1024 == 0 && DispatchTime.now().uptimeNanoseconds >= deadline { break }
            } else if sent >= count {
                break
            }
            if rate > 0 && sent % 64 == 0 {
                let due = begin + UInt64(Double(sent) / rate * 1e9)
                let now = DispatchTime.now().uptimeNanoseconds
                if due > now { try await Task.sleep(for: .nanoseconds(Int(due - now))) }
            }
            var value = template
            if stamp { value.setInteger(DispatchTime.now().uptimeNanoseconds, at: value.readerIndex) }
            let key = keys > 0 ? keyBuffers[Int.random(in: 0..<keys)] : nil
            do {
                try producer.send(topic: common.topic, key: key, value: value)
            } catch {
                record(latencyMicros: [0], bytes: 0, error: true)
            }
            sent += 1
            if sent % 4096 == 0 { await Task.yield() }
        }
        await producer.close()
        await client.close()
    }

    /// Reads every partition from `from` (default: the start) until `--records` records or `--duration`.
    func consume(stamped: Bool, from: [TopicPartition: Int64]? = nil) async throws {
        let client = self.client()
        var config = Consumer.Config()
        config.maxWaitMs = 100
        let consumer = Consumer(client: client, config: config)
        if let from {
            consumer.assign(from)
        } else {
            try await consumer.assign(topic: common.topic, from: .earliest)
        }
        var received = 0
        while true {
            if let deadline, DispatchTime.now().uptimeNanoseconds >= deadline { break }
            if deadline == nil && received >= common.records { break }
            let records = try await consumer.poll()
            if records.isEmpty && !stamped && deadline == nil && consumer.caughtUp && received > 0 { break }
            received += records.count
            let bytes = records.reduce(0) { $0 + ($1.value?.readableBytes ?? 0) }
            if stamped {
                let now = DispatchTime.now().uptimeNanoseconds
                record(latencyMicros: records.map { r in (now - (r.value?.getInteger(at: r.value!.readerIndex, as: UInt64.self) ?? now)) / 1000 },
                       bytes: bytes, error: false)
            } else {
                countOnly(records: records.count, bytes: bytes)
            }
        }
        await client.close()
    }

    @discardableResult
    func finish() throws -> BenchSummary {
        ticker?.cancel()
        if isTTY && !common.json { FileHandle.standardError.write(Data("\n".utf8)) }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        let s = stats.withLockedValue { $0 }
        func ms(_ p: Double) -> Double { Double(s.total.valueAtPercentile(p)) / 1000 }
        let summary = BenchSummary(
            mode: mode, topic: common.topic, records: s.records, errors: s.errors, seconds: elapsed,
            recordsPerSec: Double(s.records) / elapsed, mbPerSec: Double(s.bytes) / 1e6 / elapsed,
            latencyMs: s.total.totalCount == 0 ? nil : .init(
                p50: ms(50), p90: ms(90), p99: ms(99), p999: ms(99.9), max: Double(s.total.max) / 1000),
            timeline: s.seconds)
        if common.json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(summary), as: UTF8.self))
        } else {
            print(summary.text)
        }
        if let path = common.report {
            try BenchReport.html(summary, histogram: s.total).write(toFile: path, atomically: true, encoding: .utf8)
            if !common.json { print("report: \(path)") }
        }
        return summary
    }
}

struct BenchSummary: Codable {
    struct Latency: Codable {
        var p50: Double
        var p90: Double
        var p99: Double
        var p999: Double
        var max: Double
    }

    var mode: String
    var topic: String
    var records: Int
    var errors: Int
    var seconds: Double
    var recordsPerSec: Double
    var mbPerSec: Double
    var latencyMs: Latency?
    var timeline: [BenchRun.Second]

    var text: String {
        var lines = [
            "mode          \(mode) (\(topic))",
            String(format: "records       %d in %.2f s, %d errors", records, seconds, errors),
            String(format: "throughput    %.0f records/s, %.1f MB/s", recordsPerSec, mbPerSec),
        ]
        if let l = latencyMs {
            lines.append(String(format: "latency (ms)  p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f", l.p50, l.p90, l.p99, l.p999, l.max))
        }
        return lines.joined(separator: "\n")
    }
}
