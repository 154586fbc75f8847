import Foundation

/// A named thread that runs `work` every `intervalMs` until stopped. The broker's periodic disk
/// work — interval flushes, retention, compaction, replica maintenance — runs on threads like
/// this one, never on an event loop or in Swift's cooperative pool, because it blocks in the
/// kernel (fdatasync, unlink, rewriting segments) for as long as the disk takes.
///
/// The interval is counted from the end of one run to the start of the next, so a slow run delays
/// the next rather than piling runs up. It is waited on the monotonic clock
/// (`MonotonicCondition`): a broker whose wall clock is stepped back must not stop flushing,
/// expiring and checking its ISR for the length of the step.
///
/// `@unchecked Sendable`: `stopRequested` and `exited` are read and written only with the
/// condition's lock held.
public final class PeriodicThread: @unchecked Sendable {
    private let condition = MonotonicCondition()
    private var stopRequested = false
    private var exited = false

    public init(name: String, intervalMs: Int64, work: @escaping @Sendable () -> Void) {
        precondition(intervalMs > 0, "a periodic thread needs a positive interval")
        // Clamped so the deadline below cannot overflow: a century is "never" here.
        let interval = UInt64(min(intervalMs, 3_155_760_000_000)) * 1_000_000
        let thread = Thread { [self] in
            condition.lock()
            while !stopRequested {
                let deadline = MonotonicCondition.now() + interval
                while !stopRequested && MonotonicCondition.now() < deadline { condition.wait(until: deadline) }
                if stopRequested { break }
                condition.unlock()
                work()
                condition.lock()
            }
            exited = true
            condition.broadcast()
            condition.unlock()
        }
        thread.name = name
        thread.start()
    }

    /// Asks the thread to stop and waits until it has finished its current run, if any.
    public func stop() {
        condition.lock()
        defer { condition.unlock() }
        stopRequested = true
        condition.broadcast()
        while !exited { condition.wait() }
    }
}
