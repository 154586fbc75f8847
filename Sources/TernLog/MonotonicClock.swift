#if canImport(Glibc)
    import Glibc
#endif

/// CLOCK_MONOTONIC in milliseconds, for intervals inside this process — fetch backoffs, a
/// follower's lag, checkpoint periods — which a step of the wall clock (NTP, an operator, `tern
/// verify --nemesis clock`) must neither stretch nor cut short. The wall clock
/// (`PartitionLog.nowMs`) is for times other processes or the disk read: record timestamps,
/// transaction start times, retention.
public enum MonotonicClock {
    public static func nowMs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}
