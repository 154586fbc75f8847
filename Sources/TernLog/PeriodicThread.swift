import Foundation
import NIOConcurrencyHelpers

/// A named thread that runs `work` every `intervalMs` until stopped. The broker's periodic disk
/// work — interval flushes, retention, compaction — runs on threads like this one, never on an
/// event loop or in Swift's cooperative pool, because it blocks in the kernel (fdatasync, unlink,
/// rewriting segments) for as long as the disk takes.
///
/// The interval is counted from the end of one run to the start of the next, so a slow run delays
/// the next rather than piling runs up. Sendable: the only state is the `ConditionLock`.
public final class PeriodicThread: Sendable {
    private enum State: Int { case running, stopRequested, exited }
    private let state = ConditionLock(value: State.running.rawValue)

    public init(name: String, intervalMs: Int64, work: @escaping @Sendable () -> Void) {
        precondition(intervalMs > 0, "a periodic thread needs a positive interval")
        let state = self.state
        let thread = Thread {
            while !state.lock(whenValue: State.stopRequested.rawValue, timeoutSeconds: Double(intervalMs) / 1000) {
                work()
            }
            state.unlock(withValue: State.exited.rawValue)
        }
        thread.name = name
        thread.start()
    }

    /// Asks the thread to stop and waits until it has finished its current run, if any.
    public func stop() {
        if state.lock(whenValue: State.running.rawValue, timeoutSeconds: 0) {
            state.unlock(withValue: State.stopRequested.rawValue)
        }
        state.lock(whenValue: State.exited.rawValue)
        state.unlock()
    }
}
