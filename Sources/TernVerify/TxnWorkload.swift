import Foundation
import NIOCore
import TernClient

/// The transactional workload's producers: each transaction writes 1–4 unique values
/// `t<process>-<n>-<k>` to distinct random partitions of `<topic>-txn` and commits — or, one time
/// in five, aborts. The choices come from a generator seeded by the run's seed and the process.
enum TxnWorkload {
    static func transact(process: Int, client: KafkaClient, options: VerifyRun.Options, recorder: HistoryRecorder, until deadline: ContinuousClock.Instant) async {
        let producer = TransactionalProducer(client: client, transactionalId: options.transactionalId(process), transactionTimeoutMs: 15_000)
        var random = SeededRandom(seed: options.seed &+ UInt64(process))
        // About 2.5 records a transaction: the rate is in records.
        let interval = Duration.seconds(Double(options.producers) * 2.5 / Double(max(options.rate, 1)))
        var next = ContinuousClock.now
        var n = 0
        while ContinuousClock.now < deadline {
            n += 1
            let count = Int.random(in: 1...min(4, Int(options.partitions)), using: &random)
            let partitions = Array((0..<options.partitions).shuffled(using: &random).prefix(count))
            let values = partitions.indices.map { "t\(process)-\(n)-\($0)" }
            let commit = Int.random(in: 0..<5, using: &random) != 0
            let planned = zip(partitions, values).map { ReadRecord(partition: $0, offset: -1, value: $1) }
            recorder.record { HistoryEvent(process: process, kind: .invoke, f: "txn", timeNs: $0, records: planned, detail: commit ? "commit" : "abort") }
            let outcome = await producer.run(
                topic: options.txnTopic, records: zip(partitions, values).map { ($0, ByteBuffer(string: $1)) }, commit: commit,
                beforeEnd: { recorder.record { HistoryEvent(process: process, kind: .invoke, f: "txn-end", timeNs: $0) } })
            recorder.record { t in
                switch outcome {
                case .committed: return HistoryEvent(process: process, kind: .ok, f: "txn", timeNs: t)
                case .aborted(let why): return HistoryEvent(process: process, kind: .fail, f: "txn", timeNs: t, error: why)
                case .unknown(let why): return HistoryEvent(process: process, kind: .info, f: "txn", timeNs: t, error: why)
                }
            }
            next += interval
            if next > ContinuousClock.now { try? await Task.sleep(until: next) } else { next = ContinuousClock.now }
        }
    }
}
