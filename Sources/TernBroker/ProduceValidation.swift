import CTernIO
import Dispatch
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TernLog

/// Where produced batches are checked. An uncompressed batch is walked on the event loop (its
/// varints, no copies: microseconds per megabyte). A compressed one must be decompressed to be
/// checked — up to 64 MiB per batch, seconds of CPU for a request of many — so it is checked on
/// this pool's threads instead, and the event loop goes on serving other connections. The pool's
/// queue holds only requests already counted in the broker's request memory
/// (`queued.max.request.bytes`), which is its bound and backpressure.
///
/// Appends to one partition keep the order their requests arrived in (an idempotent producer
/// pipelines its batches): `PartitionTurns` hands each write to the appender only after every
/// earlier write to that partition was handed over or refused.
final class ProduceValidation: Sendable {
    let pool: NIOThreadPool
    let turns = PartitionTurns()

    init(threads: Int) {
        let count = max(1, threads)
        pool = NIOThreadPool(numberOfThreads: count)
        pool.start()
        // Each thread runs at nice +10, so that when bombs keep them busy the event loops still
        // get the CPU they need. One task per thread, held until all have started, so that each
        // lands on a thread of its own.
        let started = DispatchGroup()
        let release = DispatchSemaphore(value: 0)
        for _ in 0..<count {
            started.enter()
            pool.submit { _ in
                _ = tern_nice_current_thread(10)
                started.leave()
                release.wait()
            }
        }
        started.wait()
        for _ in 0..<count { release.signal() }
    }

    func shutdown() {
        try? pool.syncShutdownGracefully()
    }

    /// Whether a batch's records are compressed (attributes' codec bits), read without checking
    /// anything: the validation that follows checks it all.
    static func isCompressed(_ records: ByteBuffer) -> Bool {
        guard let attributes = records.getInteger(at: records.readerIndex + 21, as: Int16.self) else { return false }
        return attributes & 0x7 != 0
    }
}

/// Per-partition order for writes whose preparation may finish out of order. Sendable: the tails
/// are under a lock; each entry lives only while a write to its partition is in preparation.
final class PartitionTurns: Sendable {
    private struct Tail {
        let ticket: UInt64
        let handedOver: EventLoopFuture<Void>
    }

    private let state = NIOLockedValueBox<(next: UInt64, tails: [ObjectIdentifier: Tail])>((0, [:]))

    /// Whether some write to `log` is still being prepared (a new one must wait its turn).
    func busy(_ log: PartitionLog) -> Bool { state.withLockedValue { $0.tails[ObjectIdentifier(log)] != nil } }

    /// Runs `handOver` with `prepared`'s value once it is ready and every earlier write to `log`
    /// was handed over, on `loop`. `handOver` must pass the write to the appender (or refuse it)
    /// before it returns: the next write's turn starts then.
    func inOrder<T: Sendable, R: Sendable>(
        _ log: PartitionLog, _ prepared: EventLoopFuture<T>, on loop: EventLoop,
        _ handOver: @escaping @Sendable (Result<T, Error>) -> EventLoopFuture<R>
    ) -> EventLoopFuture<R> {
        let key = ObjectIdentifier(log)
        let done = loop.makePromise(of: Void.self)
        let (ticket, previous) = state.withLockedValue { s -> (UInt64, EventLoopFuture<Void>?) in
            let ticket = s.next
            s.next &+= 1
            let previous = s.tails[key]?.handedOver
            s.tails[key] = Tail(ticket: ticket, handedOver: done.futureResult)
            return (ticket, previous)
        }
        let ready = (previous ?? loop.makeSucceededVoidFuture()).hop(to: loop)
        return ready.flatMap { prepared.hop(to: loop) }.map { Result<T, Error>.success($0) }.recover { .failure($0) }
            .flatMap { [state] result in
                let handed = handOver(result)
                state.withLockedValue { s in
                    if s.tails[key]?.ticket == ticket { s.tails[key] = nil }
                }
                done.succeed(())
                return handed
            }
    }
}
