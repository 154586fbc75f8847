import Foundation
import NIOCore
import TernClient

/// The queue workload's producers: unique values `p<process>-<n>` through an idempotent acks=all
/// producer, each to an explicit partition (round robin, `pipeline` records to a partition at a
/// time, written back to back), at the run's rate.
enum QueueWorkload {
    static func produce(process: Int, client: KafkaClient, options: VerifyRun.Options, recorder: HistoryRecorder, until deadline: ContinuousClock.Instant) async {
        let producer = IdempotentProducer(client: client, deliveryTimeout: .seconds(20), requestTimeout: .seconds(5))
        let window = max(1, options.pipeline)
        let interval = Duration.seconds(Double(options.producers * window) / Double(max(options.rate, 1)))
        var next = ContinuousClock.now
        var n = 0
        var round = 0
        while ContinuousClock.now < deadline {
            round += 1
            let partition = Int32((round + process) % Int(options.partitions))
            let values = (0..<window).map { _ in
                n += 1
                return "p\(process)-\(n)"
            }
            for value in values {
                recorder.record { HistoryEvent(process: process, kind: .invoke, f: "send", timeNs: $0, partition: partition, value: value) }
            }
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            let outcomes = await producer.sendPipelined(
                topic: options.topic, partition: partition, records: values.map { (key: nil, value: ByteBuffer(string: $0), timestamp: now) })
            for (value, outcome) in zip(values, outcomes) {
                recorder.record { t in
                    switch outcome {
                    case .written(let offset): return HistoryEvent(process: process, kind: .ok, f: "send", timeNs: t, partition: partition, offset: offset, value: value)
                    case .failed(let why): return HistoryEvent(process: process, kind: .fail, f: "send", timeNs: t, partition: partition, value: value, error: why)
                    case .unknown(let why): return HistoryEvent(process: process, kind: .info, f: "send", timeNs: t, partition: partition, value: value, error: why)
                    }
                }
            }
            next += interval
            if next > ContinuousClock.now { try? await Task.sleep(until: next) } else { next = ContinuousClock.now }
        }
    }
}
