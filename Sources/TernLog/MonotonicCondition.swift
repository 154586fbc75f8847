#if canImport(Glibc)
    import Glibc
#endif

/// A mutex and condition variable whose timed waits run on CLOCK_MONOTONIC. Foundation's
/// conditions, NIO's `ConditionLock` and libdispatch's semaphores all turn a timeout into a
/// wall-clock deadline: a wait that spans a step of the wall clock back lasts as long as the step
/// (an hour's correction stops a 250 ms timer for an hour). This one cannot.
///
/// `@unchecked Sendable`: its only state is the pthread mutex and condition, allocated once and
/// touched only through the pthread calls, which are thread-safe; callers keep their own state
/// under `lock`/`unlock`.
final class MonotonicCondition: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        precondition(pthread_mutex_init(mutex, nil) == 0)
        var attributes = pthread_condattr_t()
        precondition(pthread_condattr_init(&attributes) == 0)
        precondition(pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC) == 0)
        precondition(pthread_cond_init(condition, &attributes) == 0)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    func lock() { precondition(pthread_mutex_lock(mutex) == 0) }
    func unlock() { precondition(pthread_mutex_unlock(mutex) == 0) }
    func broadcast() { pthread_cond_broadcast(condition) }

    /// With the lock held: waits for a broadcast, a spurious wake-up or `deadline` (a
    /// `Self.now()` value), whichever comes first; callers re-check what they wait for.
    func wait(until deadline: UInt64) {
        var ts = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        _ = pthread_cond_timedwait(condition, mutex, &ts)
    }

    /// With the lock held: waits for a broadcast or a spurious wake-up.
    func wait() { _ = pthread_cond_wait(condition, mutex) }

    /// CLOCK_MONOTONIC in nanoseconds.
    static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
