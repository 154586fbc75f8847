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

    let logSizes = SampledGauges<String>(label: "tern_log_size_bytes") { [("topic", $0)] }
    /// Per follower of each partition led here: records it lacks (the leader's log end minus the
    /// follower's, as of its last fetch).
    let followerLag = SampledGauges<FollowerKey>(label: "tern_replication_follower_lag") {
        [("topic", $0.topic), ("partition", "\($0.partition)"), ("replica", "\($0.replica)")]
    }

    struct FollowerKey: Hashable, Sendable {
        let topic: String
        let partition: Int32
        let replica: Int32
    }

    /// Drops the per-topic counters of topics that no longer exist here.
    func forgetTopics(except live: Set<String>) {
        let gone = lock.withLock { () -> [(bytesIn: Counter, recordsIn: Counter, bytesOut: Counter)] in
            let names = topicCounters.keys.filter { !live.contains($0) }
            return names.compactMap { topicCounters.removeValue(forKey: $0) }
        }
        for c in gone {
            c.bytesIn.destroy()
            c.recordsIn.destroy()
            c.bytesOut.destroy()
        }
    }

    func requestTimer(api: Int16, name: String) -> Timer {
        lock.withLock {
            if let t = apiTimers[api] { return t }
            let t = Timer(label: "tern_request_duration_seconds", dimensions: [("api", name)], preferredDisplayUnit: .seconds)
            apiTimers[api] = t
            return t
        }
    }
}
