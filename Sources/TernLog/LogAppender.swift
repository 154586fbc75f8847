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
/// covers every batch before it. Completions run on the writer thread as each file's writes (and
/// its sync, when one was asked for) finish — a small append is not held until a large one in the
/// same submission is written; callers hop to their own event loop.
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
        let origin: PartitionLog.Origin
        /// fdatasync this write whatever the flush policy says.
        let sync: Bool
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
    /// A leader's appends carry its epoch (stamped on the batches); a follower's keep the leader's
    /// offsets and epochs (`.replica`).
    public func append(
        _ records: ByteBuffer, headers: [RecordBatchHeader], to log: PartitionLog, origin: PartitionLog.Origin = .leader(),
        sync: Bool = false, completion: @escaping Completion
    ) {
        let synced = sync || log.syncsOnAppend
        condition.lock()
        if stopping {
            condition.unlock()
            completion(.failure(LogError.closed))
            return
        }
        enqueue(Request(log: log, records: records, headers: headers, origin: origin, sync: sync, completion: completion, synced: synced), atFront: false)
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
                switch try request.log.prepareAppend(request.records, headers: request.headers, origin: request.origin, sync: request.sync) {
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
        // whose last write carries the group's fdatasync if any append asked for one. Smaller
        // groups go first: the kernel runs what it can inline in submission order, so a light
        // partition's append is done before a heavy one's megabyte is copied.
        let byFile: [[Int]] = Array(Dictionary(grouping: prepared.indices, by: { prepared[$0].1.write.fd }).values)
        let groupBytes: [Int] = byFile.map { members in members.reduce(0) { $0 + prepared[$1].1.write.byteCount } }
        let groups: [[Int]] = byFile.indices
            .sorted { a, b in groupBytes[a] != groupBytes[b] ? groupBytes[a] < groupBytes[b] : byFile[a][0] < byFile[b][0] }
            .map { byFile[$0] }
        var order: [Int] = []  // submission slot → index in `prepared`
        var groupOfSlot: [Int] = []
        var groupRange: [Range<Int>] = []
        var writes: [DiskIO.Write] = []
        for (g, members) in groups.enumerated() {
            let start = writes.count
            let anySync = members.contains { prepared[$0].1.write.sync }
            for (k, index) in members.enumerated() {  // ascending: preparation order
                var w = prepared[index].1.write
                w.linkNext = k < members.count - 1
                w.sync = anySync && k == members.count - 1
                writes.append(w)
                order.append(index)
                groupOfSlot.append(g)
            }
            groupRange.append(start..<writes.count)
        }
        // Each file's appends complete in preparation order (what `completeAppend` requires), as
        // soon as they are written — but in a group that syncs, only once its fdatasync is done:
        // an append asking for durability is never acknowledged before it has it.
        var outcome = [LogError??](repeating: nil, count: writes.count)
        var nextToComplete = groupRange.map(\.lowerBound)
        func completeReady(_ g: Int) {
            let range = groupRange[g]
            let syncs = writes[range.upperBound - 1].sync
            if syncs && outcome[range.upperBound - 1] == nil { return }
            while nextToComplete[g] < range.upperBound, let error = outcome[nextToComplete[g]] {
                let (request, p) = prepared[order[nextToComplete[g]]]
                nextToComplete[g] += 1
                do {
                    request.completion(.success(try request.log.completeAppend(p, error: error)))
                } catch {
                    logger.error("append failed", metadata: ["log": "\(request.log.directory)", "error": "\(error)"])
                    request.completion(.failure(error))
                }
            }
        }
        _ = io.submit(writes) { slot, error in
            outcome[slot] = .some(error)
            completeReady(groupOfSlot[slot])
        }
        for g in groupRange.indices { completeReady(g) }
        assert(zip(nextToComplete, groupRange).allSatisfy { $0 == $1.upperBound }, "every append completes exactly once")
        counters.withLockedValue { c in
            c.submissions += 1
            c.writes += writes.count
        }
        return retry
    }
}
