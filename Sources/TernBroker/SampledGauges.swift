import Metrics
import NIOConcurrencyHelpers

/// One gauge per key (a topic; a follower of a partition), refreshed by sampling: each sample
/// records the keys it has and destroys the gauges of keys it no longer has (deleted topics,
/// partitions no longer led here), so the metrics registry only ever holds what exists now and a
/// client creating and deleting topics cannot grow it.
///
/// Sendable: the gauge table is touched only under `lock`; gauges themselves are thread-safe.
final class SampledGauges<Key: Hashable & Sendable>: @unchecked Sendable {
    private let label: String
    private let dimensions: @Sendable (Key) -> [(String, String)]
    private let lock = NIOLock()
    private var gauges: [Key: Gauge] = [:]

    init(label: String, dimensions: @escaping @Sendable (Key) -> [(String, String)]) {
        self.label = label
        self.dimensions = dimensions
    }

    func sample(_ values: [Key: Int64]) {
        let gone = lock.withLock { () -> [Gauge] in
            for (key, value) in values {
                let gauge = gauges[key] ?? Gauge(label: label, dimensions: dimensions(key))
                gauges[key] = gauge
                gauge.record(value)
            }
            let stale = gauges.keys.filter { values[$0] == nil }
            return stale.compactMap { gauges.removeValue(forKey: $0) }
        }
        gone.forEach { $0.destroy() }
    }

    var count: Int { lock.withLock { gauges.count } }
}
