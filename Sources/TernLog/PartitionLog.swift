import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import TernProtocol

/// The append-only log of one partition: segments named by base offset in one directory.
///
/// Thread safety: every public method takes the log's lock, so appends are totally ordered and a
/// read never sees a half-indexed batch. Invariants: segments are sorted by base offset and
/// contiguous in offsets; `logStartOffset <= logEndOffset`; only the last segment is written.
public final class PartitionLog: @unchecked Sendable {
    public let directory: String
    private let lock = NIOLock()
    private let io: DiskIO
    private let logger: Logger
    private var config: LogConfig
    private var segments: [LogSegment] = []
    private var startOffset: Int64 = 0
    private var unflushedMessages: Int64 = 0
    private var lastFlushNanos: UInt64 = DispatchTime.now().uptimeNanoseconds
    private var isClosed = false

    public struct AppendResult: Equatable, Sendable {
        public var baseOffset: Int64
        public var lastOffset: Int64
        public var logStartOffset: Int64
    }

    public struct ReadResult: Sendable {
        /// Whole stored batches (the last one may be cut short by `maxBytes`; clients skip it).
        public var records: ByteBuffer
        public var highWatermark: Int64
        public var logStartOffset: Int64
    }

    /// Opens (creating if needed) the log in `directory`, recovering the active segment.
    public init(directory: String, config: LogConfig, io: DiskIO, logger: Logger) throws {
        self.directory = directory
        self.config = config
        self.io = io
        var logger = logger
        logger[metadataKey: "log"] = "\(URL(fileURLWithPath: directory).lastPathComponent)"
        self.logger = logger
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        startOffset = Self.readLogStartOffset(directory) ?? 0
        let bases = try FileManager.default.contentsOfDirectory(atPath: directory)
            .filter { $0.hasSuffix(".log") }
            .compactMap { Int64($0.dropLast(4)) }
            .sorted()
        for (i, base) in bases.enumerated() {
            let segment = try LogSegment(directory: directory, baseOffset: base)
            if i == bases.count - 1 {
                try segment.recover(io: io, config: config, logger: logger)
            } else {
                try segment.openSealed(io: io, config: config, logger: logger)
            }
            segments.append(segment)
        }
        if segments.isEmpty {
            segments.append(try LogSegment(directory: directory, baseOffset: startOffset))
        }
        startOffset = max(startOffset, segments[0].baseOffset)
    }

    public var logEndOffset: Int64 { lock.withLock { segments[segments.count - 1].nextOffset } }
    public var logStartOffset: Int64 { lock.withLock { startOffset } }
    public var sizeInBytes: Int64 { lock.withLock { segments.reduce(0) { $0 + $1.size } } }
    public var segmentCount: Int { lock.withLock { segments.count } }

    /// Appends already validated batches. Offsets are assigned here by rewriting only each batch's
    /// first 16 header bytes (base offset, length, leader epoch): those are outside the CRC, and the
    /// record bytes go to disk as received.
    public func append(_ records: ByteBuffer, headers: [RecordBatchHeader], leaderEpoch: Int32 = 0) throws -> AppendResult {
        try lock.withLock {
            guard !isClosed else { throw LogError.closed }
            var active = segments[segments.count - 1]
            let first = active.nextOffset
            var next = first
            var buffers: [ByteBuffer] = []
            var assigned: [RecordBatchHeader] = []
            buffers.reserveCapacity(headers.count * 2)
            var position = records.readerIndex
            var total = 0
            for var h in headers {
                var prefix = ByteBuffer()
                prefix.reserveCapacity(16)
                prefix.writeInteger(next)
                prefix.writeInteger(h.batchLength)
                prefix.writeInteger(leaderEpoch)
                buffers.append(prefix)
                buffers.append(records.getSlice(at: position + 16, length: h.totalSize - 16)!)
                h.baseOffset = next
                h.partitionLeaderEpoch = leaderEpoch
                assigned.append(h)
                next = h.lastOffset + 1
                position += h.totalSize
                total += h.totalSize
            }
            if active.size > 0 && active.size + Int64(total) > Int64(config.segmentBytes) {
                active = try roll(at: first)
            }
            unflushedMessages += next - first
            let sync = unflushedMessages >= config.flushIntervalMessages
            try active.append(buffers: buffers, headers: assigned, io: io, config: config, sync: sync)
            if sync { markFlushed() }
            return AppendResult(baseOffset: first, lastOffset: next - 1, logStartOffset: startOffset)
        }
    }

    /// Seals the active segment (flushed, so recovery only ever scans the newest one) and starts a new one.
    private func roll(at offset: Int64) throws -> LogSegment {
        try segments[segments.count - 1].flush(io: io)
        let segment = try LogSegment(directory: directory, baseOffset: offset)
        segments.append(segment)
        PosixFile.fsyncDirectory(directory)
        logger.debug("rolled segment", metadata: ["base": "\(offset)"])
        return segment
    }

    /// Reads from the first batch containing `offset`, up to `maxBytes`, but always at least one whole
    /// batch so a consumer can make progress past a batch larger than its limit (KIP-74).
    public func read(from offset: Int64, maxBytes: Int) throws -> ReadResult {
        try lock.withLock {
            let end = segments[segments.count - 1].nextOffset
            guard offset >= startOffset, offset <= end else {
                throw LogError.offsetOutOfRange(requested: offset, logStart: startOffset, logEnd: end)
            }
            var result = ReadResult(records: ByteBuffer(), highWatermark: end, logStartOffset: startOffset)
            guard offset < end else { return result }
            var i = segmentIndex(for: offset)
            while i < segments.count {
                if let (position, header) = try segments[i].position(of: offset, io: io) {
                    let count = max(maxBytes, header.totalSize)
                    result.records = try segments[i].read(io: io, at: position, count: count)
                    return result
                }
                i += 1
            }
            return result
        }
    }

    /// Kafka's ListOffsets by timestamp: the first batch whose max timestamp is >= `timestamp`,
    /// reported as (base offset of that batch refined to the first such record, its timestamp).
    public func offset(forTimestamp timestamp: Int64) throws -> (offset: Int64, timestamp: Int64)? {
        try lock.withLock {
            for segment in segments where segment.maxTimestamp >= timestamp {
                guard let (position, header) = try segment.position(ofTimestamp: timestamp, io: io) else { continue }
                var bytes = try segment.read(io: io, at: position, count: header.totalSize)
                // Look inside the batch for the exact record when its codec is readable here.
                if let batch = try? RecordBatch.read(from: &bytes),
                    let record = batch.records.first(where: { $0.timestamp >= timestamp })
                {
                    return (record.offset, record.timestamp)
                }
                return (header.baseOffset, header.maxTimestamp)
            }
            return nil
        }
    }

    private func segmentIndex(for offset: Int64) -> Int {
        var lo = 0, hi = segments.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if segments[mid].baseOffset <= offset { lo = mid } else { hi = mid - 1 }
        }
        return lo
    }

    /// fdatasync the active segment if `log.flush.interval.ms` has passed with unflushed data.
    public func flushIfDue(nowNanos: UInt64 = DispatchTime.now().uptimeNanoseconds) throws {
        try lock.withLock {
            guard !isClosed, unflushedMessages > 0, config.flushIntervalMs != Int64.max else { return }
            if nowNanos - lastFlushNanos >= UInt64(config.flushIntervalMs) * 1_000_000 {
                try segments[segments.count - 1].flush(io: io)
                markFlushed()
            }
        }
    }

    public func flush() throws {
        try lock.withLock {
            guard !isClosed else { return }
            try segments[segments.count - 1].flush(io: io)
            markFlushed()
        }
    }

    private func markFlushed() {
        unflushedMessages = 0
        lastFlushNanos = DispatchTime.now().uptimeNanoseconds
    }

    /// Flushes and closes every segment; later calls fail with `LogError.closed`.
    public func close() {
        lock.withLock {
            guard !isClosed else { return }
            do { try segments[segments.count - 1].flush(io: io) } catch { logger.error("flush on close failed: \(error)") }
            segments.forEach { $0.close() }
            isClosed = true
        }
    }

    /// Closes the log and removes its directory.
    public func delete() {
        lock.withLock {
            if !isClosed { segments.forEach { $0.close() } }
            isClosed = true
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    private static func readLogStartOffset(_ directory: String) -> Int64? {
        guard let text = try? String(contentsOfFile: "\(directory)/log-start-offset", encoding: .utf8) else { return nil }
        return Int64(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
