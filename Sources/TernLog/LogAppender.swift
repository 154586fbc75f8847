import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import TernProtocol

/// Group commit: the single writer of every partition log on a broker.
///
/// Appends from any thread are queued; one writer thread drains the queue, prepares each append
/// (offsets and file space reserved under the log's lock), and submits all their writes with one
/// io_uring_enter. Writes to the same file are linked in order, and a requested fdatasync is moved
/// to the last write of its file, so one sync covers every batch before it. Completions run on the
/// writer thread once the whole submission is reaped; callers hop to their own event loop.
///
/// Bounds: at most `DiskIO.maxWritesPerSubmit` appends per submission; the queue itself is bounded
/// by the producers' in-flight requests (each waits for its completion before its response).
public final class LogAppender: @unchecked Sendable {
    public typealias Completion = @Sendable (Result<PartitionLog.AppendResult, Error>) -> Void

    private struct Request {
        let log: PartitionLog
        let records: ByteBuffer
        let headers: [RecordBatchHeader]
        let completion: Completion
    }

    private let io: DiskIO
    private let logger: Logger
    private let condition = NSCondition()
    private var queue: [Request] = []
    private var stopping = false
    private let stopped = DispatchSemaphore(value: 0)
    private let counters = NIOLockedValueBox((submissions: 0, writes: 0))
    /// Submissions made and writes in them, for tests and metrics.
    public var stats: (submissions: Int, writes: Int) { counters.withLockedValue { $0 } }

    public init(io: DiskIO, logger: Logger) {
        self.io = io
        self.logger = logger
        let thread = Thread { [self] in run() }
        thread.name = "tern-log-appender"
        thread.start()
    }

    /// Queues an append; `completion` runs on the writer thread after the write (and sync) finished.
    public func append(_ records: ByteBuffer, headers: [RecordBatchHeader], to log: PartitionLog, completion: @escaping Completion) {
        condition.lock()
        if stopping {
            condition.unlock()
            completion(.failure(LogError.closed))
            return
        }
        queue.append(Request(log: log, records: records, headers: headers, completion: completion))
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

    private func run() {
        while true {
            condition.lock()
            while queue.isEmpty && !stopping { condition.wait() }
            if queue.isEmpty && stopping {
                condition.unlock()
                stopped.signal()
                return
            }
            let take = min(queue.count, io.maxWritesPerSubmit)
            let batch = Array(queue.prefix(take))
            queue.removeFirst(take)
            condition.unlock()
            let retry = commit(batch)
            if !retry.isEmpty {
                condition.lock()
                queue.insert(contentsOf: retry, at: 0)
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
