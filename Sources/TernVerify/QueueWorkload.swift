import Foundation
import NIOCore
import TernClient

/// The queue workload's producers: unique values `p<process>-<n>`, one at a time through an
/// idempotent acks=all producer, each to an explicit partition (round robin), at the run's rate.
enum QueueWorkload {
    static func produce(process: Int, client: KafkaClient, options: VerifyRun.Options, recorder: HistoryRecorder, until deadline: ContinuousClock.Instant) async {
        let producer = IdempotentProducer(client: client, deliveryTimeout: .seconds(20), requestTimeout: .seconds(5))
        let interval = Duration.seconds(Double(options.producers) / Double(max(options.rate, 1)))
        var next = ContinuousClock.now
        var n = 0
        while ContinuousClock.now < deadline {
            n += 1
            let value = "p\(process)-\(n)"
            let partition = Int32((n + process) % Int(options.partitions))
            recorder.record { HistoryEvent(process: process, kind: .invoke, f: "send", timeNs: $0, partition: partition, value: value) }
            let outcome = await producer.send(
                topic: options.topic, partition: partition, value: ByteBuffer(string: value), timestamp: Int64(Date().timeIntervalSince1970 * 1000))
            recorder.record { t in
                switch outcome {
                case .written(let offset): return HistoryEvent(process: process, kind: .ok, f: "send", timeNs: t, partition: partition, offset: offset, value: value)
                case .failed(let why): return HistoryEvent(process: process, kind: .fail, f: "send", timeNs: t, partition: partition, value: value, error: why)
                case .unknown(let why): return HistoryEvent(process: process, kind: .info, f: "send", timeNs: t, partition: partition, value: value, error: why)
                }
            }
            next += interval
            if next > ContinuousClock.now { try? await Task.sleep(until: next) } else { next = ContinuousClock.now }
        }
    }
}
