import Metrics
import NIOConcurrencyHelpers

/// The broker's metrics, through swift-metrics (the `tern broker` command exports them in the
/// Prometheus format). Per-topic handles are created once and cached: creating one takes a lock
/// in the metrics backend, recording does not. Sendable: the caches are touched only under `lock`;
/// the metric handles themselves are thread-safe.
final class BrokerMetrics: @unchecked Sendable {
    private let lock = NIOLock()
    private var topicCounters: [String: (bytesIn: Counter, recordsIn: Counter, bytesOut: Counter)] = [:]
    private var apiTimers: [Int16: Timer] = [:]

    func topic(_ name: String) -> (bytesIn: Counter, recordsIn: Counter, bytesOut: Counter) {
        lock.withLock {
            if let c = topicCounters[name] { return c }
            let dims = [("topic", name)]
            let c = (Counter(label: "tern_bytes_in_total", dimensions: dims), Counter(label: "tern_records_in_total", dimensions: dims),
                     Counter(label: "tern_bytes_out_total", dimensions: dims))
            topicCounters[name] = c
            return c
        }
    }

    let connections = Gauge(label: "tern_connections_active")
    let groups = Gauge(label: "tern_groups")
    let appenderQueuedBytes = Gauge(label: "tern_appender_queued_bytes")
    let logDirOffline = Gauge(label: "tern_log_dir_offline")
    /// Cluster mode: 1 while this broker's lease may have lapsed (it refuses produce and fetch).
    let clusterFenced = Gauge(label: "tern_cluster_fenced")
    let clusterIsController = Gauge(label: "tern_cluster_is_controller")
    let partitionsLed = Gauge(label: "tern_cluster_partitions_led")
    /// Partitions of the cluster without a live leader (every broker reports the same count).
    let offlinePartitions = Gauge(label: "tern_cluster_offline_partitions")
    /// Partitions led here with fewer in-sync replicas than replicas.
    let underReplicated = Gauge(label: "tern_replication_under_replicated_partitions")
    /// acks=all produce requests waiting for followers.
    let producePurgatory = Gauge(label: "tern_replication_produce_purgatory_size")
    /// Records the furthest-behind follower of any partition led here lacks.
    let maxFollowerLag = Gauge(label: "tern_replication_max_follower_lag")

    func logSize(topic: String) -> Gauge { Gauge(label: "tern_log_size_bytes", dimensions: [("topic", topic)]) }

    func requestTimer(api: Int16, name: String) -> Timer {
        lock.withLock {
            if let t = apiTimers[api] { return t }
            let t = Timer(label: "tern_request_duration_seconds", dimensions: [("api", name)], preferredDisplayUnit: .seconds)
            apiTimers[api] = t
            return t
        }
    }
}
