import DequeModule
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import TernProtocol

/// Group commit: the single writer of every partition log on a broker.
///
/// Appends from any thread are queued per log; one writer thread drains the queues round-robin —
/// one append per log per turn — prepares each append (offsets and file space reserved under the
/// log's lock), and submits all their writes with one io_uring_enter. Writes to the same file are
/// linked in order, and a requested fdatasync is moved to the last write of its file, so one sync
/// covers every batch before it. Completions run on the writer thread once the whole submission is
/// reaped; callers hop to their own event loop.
///
/// Fairness: a submission takes at most `maxWritesPerSubmit` appends and stops adding once it
/// holds `maxBytesPerSubmit` (1 MiB; 8 MiB when it syncs), and logs take turns, so a partition
/// with a deep backlog delays another partition's append by at most one submission, not by its
/// whole backlog.
///
/// Bounds: every append a client causes holds its request's bytes in the server's request memory
/// pool (`queued.max.request.bytes`) until it completes, so the queues cannot outgrow that pool
/// plus the coordinators' small internal appends; `queuedBytes` is exported for metrics.
/// Concurrency: `condition` guards the queues; only the writer thread prepares, submits and completes.
public final class LogAppender: @unchecked Sendable {
    public typealias Completion = @Sendable (Result<PartitionLog.AppendResult, Error>) -> Void

    private struct Request {
        let log: PartitionLog
        let records: ByteBuffer
        let headers: [RecordBatchHeader]
        let completion: Completion
        /// The log's flush policy syncs on append (taken at queueing time).
        let synced: Bool
    }

    /// Stop adding appends to a submission once it holds this many bytes (one append always goes):
    /// small, so a partition's append waits for little of another's backlog — unless a log in it
    /// syncs every append (flush policy), where a submission ends with an fdatasync and grouping
    /// more bytes per sync is what keeps throughput (see `maxBytesPerSyncedSubmit`).
    public static let maxBytesPerSubmit = 1 << 20
    public static let maxBytesPerSyncedSubmit = 8 << 20

    private let io: DiskIO
    private let logger: Logger
    private let condition = NSCondition()
    /// Queued appends of each log, in arrival order, and the logs with queued appends in turn order.
    private var queues: [ObjectIdentifier: Deque<Request>] = [:]
    private var turns: Deque<ObjectIdentifier> = []
    private var queued = (appends: 0, bytes: 0)
    private var stopping = false
    /// Tests hold the writer back to queue a scenario at once.
    private var paused = false
    private let stopped = DispatchSemaphore(value: 0)
    private let counters = NIOLockedValueBox((submissions: 0, writes: 0))
    /// Submissions made and writes in them, for tests and metrics.
    public var stats: (submissions: Int, writes: Int) { counters.withLockedValue { $0 } }
    /// Appends waiting for the writer thread and their bytes.
    public var queuedAppends: (appends: Int, bytes: Int) {
        condition.lock()
        defer { condition.unlock() }
        return queued
    }

    public init(io: DiskIO, logger: Logger) {
        self.io = io
        self.logger = logger
        let thread = Thread { [self] in run() }
        thread.name = "tern-log-appender"
        thread.start()
    }

    /// Queues an append; `completion` runs on the writer thread after the write (and sync) finished.
    public func append(_ records: ByteBuffer, headers: [RecordBatchHeader], to log: PartitionLog, completion: @escaping Completion) {
        let synced = log.syncsOnAppend
        condition.lock()
        if stopping {
            condition.unlock()
            completion(.failure(LogError.closed))
            return
        }
        enqueue(Request(log: log, records: records, headers: headers, completion: completion, synced: synced), atFront: false)
        condition.signal()
        condition.unlock()
    }

    /// Writes everything queued, then stops the writer thread.
    public func shutdown() {
        condition.lock()
        let already = stopping
        stopping = true
        condition.signal()
        condition.unlock()
        if !already { stopped.wait() }
    }

    /// Holds the writer thread back (queued appends wait) until `resumeForTesting`.
    func pauseForTesting() {
        condition.lock()
        paused = true
        condition.unlock()
    }

    func resumeForTesting() {
        condition.lock()
        paused = false
        condition.signal()
        condition.unlock()
    }

    /// Caller holds `condition`.
    private func enqueue(_ request: Request, atFront: Bool) {
        let id = ObjectIdentifier(request.log)
        if queues[id] == nil {
            queues[id] = []
            if atFront { turns.prepend(id) } else { turns.append(id) }
        }
        if atFront { queues[id]!.prepend(request) } else { queues[id]!.append(request) }
        queued.appends += 1
        queued.bytes += request.records.readableBytes
    }

    /// The next submission's appends: logs take turns, one append each per turn. Caller holds `condition`.
    private func nextSubmission() -> [Request] {
        var batch: [Request] = []
        var bytes = 0
        var budget = Self.maxBytesPerSubmit
        while batch.count < io.maxWritesPerSubmit, bytes < budget, let id = turns.popFirst() {
            let request = queues[id]!.removeFirst()
            if queues[id]!.isEmpty { queues[id] = nil } else { turns.append(id) }
            batch.append(request)
            bytes += request.records.readableBytes
            if request.synced { budget = Self.maxBytesPerSyncedSubmit }
            queued.appends -= 1
            queued.bytes -= request.records.readableBytes
        }
        assert(queued.appends >= 0 && queued.bytes >= 0 && (queued.appends == 0) == turns.isEmpty)
        return batch
    }

    private func run() {
        while true {
            condition.lock()
            while (turns.isEmpty || paused) && !stopping { condition.wait() }
            if turns.isEmpty && stopping {
                condition.unlock()
                stopped.signal()
                return
            }
            let batch = nextSubmission()
            condition.unlock()
            let retry = commit(batch)
            if !retry.isEmpty {
                condition.lock()
                // Back in front of their logs' queues, in their original order.
                for request in retry.reversed() { enqueue(request, atFront: true) }
                condition.unlock()
            }
        }
    }

    /// Writes one batch of appends with one submission; returns appends to retry next round.
    private func commit(_ batch: [Request]) -> [Request] {
        var prepared: [(Request, PartitionLog.PreparedAppend)] = []
        var retry: [Request] = []
        var waitingLogs = Set<ObjectIdentifier>()
        for request in batch {
            let id = ObjectIdentifier(request.log)
            // Keep per-log order: once one append of a log waits, the rest of that log waits too.
            if waitingLogs.contains(id) {
                retry.append(request)
                continue
            }
            do {
                switch try request.log.prepareAppend(request.records, headers: request.headers) {
                case .ready(let p): prepared.append((request, p))
                case .afterInFlightWrites:
                    waitingLogs.insert(id)
                    retry.append(request)
                case .duplicate(let result):
                    request.completion(.success(result))
                }
            } catch {
                request.completion(.failure(error))
            }
        }
        guard !prepared.isEmpty else { return retry }

        // Group writes by file, keeping their order within a file, and link each group into a chain
        // whose last write carries the group's fdatasync if any append asked for one.
        let order = prepared.indices.sorted { a, b in
            let fa = prepared[a].1.write.fd, fb = prepared[b].1.write.fd
            return fa != fb ? fa < fb : a < b
        }
        var writes: [DiskIO.Write] = order.map { prepared[$0].1.write }
        var i = 0
        while i < writes.count {
            var j = i
            while j + 1 < writes.count && writes[j + 1].fd == writes[i].fd { j += 1 }
            let anySync = writes[i...j].contains { $0.sync }
            for k in i...j {
                writes[k].linkNext = k < j
                writes[k].sync = anySync && k == j
            }
            i = j + 1
        }
        let errors = io.submit(writes)
        counters.withLockedValue { c in
            c.submissions += 1
            c.writes += writes.count
        }
        // Complete in preparation order so each log sees its appends in sequence.
        var errorByPrepared = [LogError?](repeating: nil, count: prepared.count)
        for (slot, index) in order.enumerated() { errorByPrepared[index] = errors[slot] }
        for (index, (request, p)) in prepared.enumerated() {
            do {
                request.completion(.success(try request.log.completeAppend(p, error: errorByPrepared[index])))
            } catch {
                logger.error("append failed", metadata: ["log": "\(request.log.directory)", "error": "\(error)"])
                request.completion(.failure(error))
            }
        }
        return retry
    }
}
