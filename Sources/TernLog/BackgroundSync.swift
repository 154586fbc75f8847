import DequeModule
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// fdatasyncs sealed segments off the appender's thread, as Kafka flushes a rolled segment
/// asynchronously: syncing a just-sealed 1 GiB segment can take seconds, and on the writer thread
/// it would stall every partition's appends for that long.
///
/// Each job owns a duplicated descriptor, so a segment deleted or closed meanwhile (retention,
/// topic deletion) is still synced safely and its number is never reused under us. A thread runs
/// only while there is work. At most `maxPending` jobs wait; `enqueue` refuses more so the caller
/// syncs inline — backpressure when the disk cannot keep up with rolls.
final class BackgroundSync: @unchecked Sendable {
    // `condition` guards `jobs` and `running`; the worker thread owns each job once taken.
    struct Job {
        let fd: Int32
        let done: @Sendable (Int32) -> Void
    }

    static let maxPending = 4
    private let condition = NSCondition()
    private var jobs: Deque<Job> = []
    private var running = false
    /// Set once, before any job, by a test's DiskIO.
    var crashSimulation: CrashSimulation?

    /// Queues a sync of `fd` (which the job now owns and closes); `done` gets 0 or the errno, on
    /// the worker thread. False (and nothing taken) when the queue is full.
    func enqueue(fd: Int32, done: @escaping @Sendable (Int32) -> Void) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard jobs.count < Self.maxPending else { return false }
        jobs.append(Job(fd: fd, done: done))
        if !running {
            running = true
            let thread = Thread { [self] in work() }
            thread.name = "tern-segment-sync"
            thread.start()
        }
        return true
    }

    /// Blocks until every queued sync has finished (clean shutdown, tests).
    func drain() {
        condition.lock()
        while running { condition.wait() }
        condition.unlock()
    }

    private func work() {
        while true {
            condition.lock()
            guard let job = jobs.popFirst() else {
                running = false
                condition.broadcast()
                condition.unlock()
                return
            }
            condition.unlock()
            var rc = fdatasync(job.fd)
            while rc != 0 && errno == EINTR { rc = fdatasync(job.fd) }
            let error = rc == 0 ? 0 : errno
            if rc == 0 { crashSimulation?.synced(fd: job.fd) }
            close(job.fd)
            job.done(error)
        }
    }
}
