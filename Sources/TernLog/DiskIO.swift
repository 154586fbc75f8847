import CTernIO
import Logging
import NIOConcurrencyHelpers
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// The log's only door to the disk. Appends — positional vectored writes with an optionally
/// linked fdatasync — go through an io_uring ring from the C core, used only by the appender's
/// thread (group commit); reads are pread and standalone syncs fdatasync(2) on the caller's thread,
/// so neither ever waits for a group commit nor holds one up. When the kernel refuses io_uring
/// (old kernel, seccomp, `io_uring_disabled`), appends fall back to pwritev.
/// Sendable: the ring is used only under `lock`; the offline reason and the test hook are locked
/// boxes; the rest is immutable after init.
public final class DiskIO: @unchecked Sendable {
    // The ring is single-issuer; the lock makes that hold even for tests that append from several threads.
    private let lock = NIOLock()
    private let ring: OpaquePointer?
    public var usesIOUring: Bool { ring != nil }
    /// Syncs of sealed segments, off the appender's thread.
    let background = BackgroundSync()
    /// Test-only crash simulation (nil in the broker): tracks what is durable.
    let crashSimulation: CrashSimulation?

    private let logger: Logger
    private let offline = NIOLockedValueBox<String?>(nil)
    /// Test-only: runs on the syncing thread before each `sync(fd:)` (to hold a sync in progress);
    /// a non-zero errno it returns is reported as the sync's failure.
    let beforeSyncForTesting = NIOLockedValueBox<(@Sendable () -> Int32)?>(nil)

    /// Why the log directory is offline, or nil. Like Kafka, a write or sync failure that may have
    /// lost acknowledged data takes the directory offline: every later append fails with
    /// KAFKA_STORAGE_ERROR until a restart re-validates the logs; reads go on. A write refused for
    /// lack of space (ENOSPC, a short write) is not such a failure: the append fails, the file is
    /// cut back, and writes resume once space is freed.
    public var offlineReason: String? { offline.withLockedValue { $0 } }

    public func markOffline(_ reason: String) {
        let first = offline.withLockedValue { current -> Bool in
            guard current == nil else { return false }
            current = reason
            return true
        }
        if first { logger.critical("log directory offline: no more writes until restart", metadata: ["reason": "\(reason)"]) }
    }

    public convenience init(logger: Logger, ringEntries: UInt32 = 1024) {
        self.init(logger: logger, ringEntries: ringEntries, crashSimulation: nil)
    }

    init(logger: Logger, ringEntries: UInt32 = 1024, crashSimulation: CrashSimulation?) {
        self.logger = logger
        self.crashSimulation = crashSimulation
        background.crashSimulation = crashSimulation
        var err: Int32 = 0
        maxWritesPerSubmit = Int(ringEntries) / 2
        let r = tern_ring_create(ringEntries, &err)
        if r == nil {
            logger.warning("io_uring unavailable, using pwritev/pread", metadata: ["errno": "\(-err)"])
        }
        self.ring = r
    }

    deinit {
        if let ring { tern_ring_destroy(ring) }
    }

    /// Test-only: makes the ring misbehave as the kernel may (see `tern_ring_faults`). False when
    /// io_uring is unavailable here.
    @discardableResult
    func injectRingFaults(_ faults: tern_ring_faults) -> Bool {
        guard let ring else { return false }
        lock.withLock { tern_ring_inject_faults(ring, faults) }
        return true
    }

    /// Writes `buffers` back to back at `offset` of `fd`; with `sync`, fdatasync runs after the write
    /// (a linked SQE) and the call returns only once both are done.
    public func write(fd: Int32, buffers: [ByteBuffer], at offset: Int64, sync: Bool) throws {
        if let error = submit([Write(fd: fd, buffers: buffers, offset: offset, sync: sync, linkNext: false)])[0] {
            throw error
        }
    }

    /// One positional vectored write in a group submission.
    public struct Write {
        public var fd: Int32
        public var buffers: [ByteBuffer]
        public var offset: Int64
        /// fdatasync after the write (linked: runs only if the write succeeded).
        public var sync: Bool
        /// The next write starts only after this one (and its sync) completed successfully.
        public var linkNext: Bool
        public var byteCount: Int { buffers.reduce(0) { $0 + $1.readableBytes } }
    }

    /// Most writes in one `submit`: two SQEs each (write + sync) must fit the ring.
    public let maxWritesPerSubmit: Int
    /// Linux's IOV_MAX (UIO_MAXIOV): the most buffers one vectored write may have.
    public static let maxBuffersPerWrite = 1024

    /// Submits every write with one io_uring_enter (group commit) and waits for all completions.
    /// `onCompletion`, if given, is called for each write (by index) as soon as it and its linked
    /// sync are done — in completion order, which keeps link order within a chain — so a small
    /// append need not wait for a large one to another file. It runs on the calling thread with
    /// the ring's lock held: it must not submit. Returns, per write, nil on success or the error.
    public func submit(_ writes: [Write], onCompletion: ((Int, LogError?) -> Void)? = nil) -> [LogError?] {
        // The kernel refuses a vectored write of more than IOV_MAX buffers (EINVAL) — which would
        // take the log directory offline. Writes are built with few buffers; one that has more is
        // copied into one buffer rather than refused.
        // (Checked first: the usual submit allocates no second array.)
        let writes = !writes.contains(where: { $0.buffers.count > Self.maxBuffersPerWrite }) ? writes : writes.map { w -> Write in
            guard w.buffers.count > Self.maxBuffersPerWrite else { return w }
            var joined = ByteBuffer()
            joined.reserveCapacity(w.byteCount)
            for b in w.buffers { joined.writeImmutableBuffer(b) }
            var copy = w
            copy.buffers = [joined]
            return copy
        }
        let iovCount = writes.reduce(0) { $0 + $1.buffers.count }
        let iovs = UnsafeMutableBufferPointer<iovec>.allocate(capacity: max(iovCount, 1))
        var storages: [Unmanaged<AnyObject>] = []
        storages.reserveCapacity(iovCount)
        let appends = UnsafeMutableBufferPointer<tern_append>.allocate(capacity: max(writes.count, 1))
        // Pin each buffer's storage (the pattern NIO's own socket writes use) so the kernel can read
        // the bytes in place until every completion is reaped.
        var k = 0
        for (i, w) in writes.enumerated() {
            let first = k
            for b in w.buffers {
                b.withUnsafeReadableBytesWithStorageManagement { raw, storage in
                    storages.append(storage.retain())
                    iovs[k] = iovec(iov_base: UnsafeMutableRawPointer(mutating: raw.baseAddress), iov_len: raw.count)
                }
                k += 1
            }
            appends[i] = tern_append(
                fd: w.fd, iov: UnsafePointer(iovs.baseAddress! + first), iovcnt: Int32(w.buffers.count),
                offset: UInt64(w.offset), sync: w.sync ? 1 : 0, link_next: w.linkNext ? 1 : 0, result: 0, sync_failed: 0)
        }
        defer {
            storages.forEach { $0.release() }
            iovs.deallocate()
            appends.deallocate()
        }
        let reaped = ReapedWrites(io: self, writes: writes, appends: appends, onCompletion: onCompletion)
        lock.withLock {
            if let ring {
                let context = Unmanaged.passUnretained(reaped).toOpaque()
                let rc = tern_ring_submit_appends(ring, appends.baseAddress, Int32(writes.count), { context, index in
                    Unmanaged<ReapedWrites>.fromOpaque(context!).takeUnretainedValue().finished(Int(index))
                }, context)
                if rc < 0 {
                    for i in writes.indices {
                        appends[i].result = Int(rc)
                        reaped.finished(i)
                    }
                }
                return
            }
            var chainFailed = false
            for i in writes.indices {
                let a = appends[i]
                if chainFailed {
                    appends[i].result = -Int(ECANCELED)
                } else {
                    // As the ring path: a short write is continued, EINTR retried.
                    let n = tern_pwritev_rest(a.fd, a.iov, a.iovcnt, a.offset, 0)
                    let synced = n >= 0 && n == writes[i].byteCount && a.sync != 0 ? tern_fdatasync(a.fd) : 0
                    if n < 0 {
                        appends[i].result = n
                    } else if synced < 0 {
                        appends[i].result = Int(synced)
                        appends[i].sync_failed = 1
                    } else {
                        appends[i].result = n
                    }
                }
                chainFailed = a.link_next != 0 && (chainFailed || appends[i].result < 0)
                reaped.finished(i)
            }
        }
        return reaped.errors
    }

    /// Turns a finished write's raw result into its error (taking the directory offline when data
    /// may have been lost), records it for the crash simulation, and reports it.
    private final class ReapedWrites {
        let io: DiskIO
        let writes: [Write]
        let appends: UnsafeMutableBufferPointer<tern_append>
        let onCompletion: ((Int, LogError?) -> Void)?
        var errors: [LogError?]

        init(io: DiskIO, writes: [Write], appends: UnsafeMutableBufferPointer<tern_append>, onCompletion: ((Int, LogError?) -> Void)?) {
            self.io = io
            self.writes = writes
            self.appends = appends
            self.onCompletion = onCompletion
            errors = Array(repeating: nil, count: writes.count)
        }

        func finished(_ i: Int) {
            let n = appends[i].result
            let error: LogError?
            if n >= 0 { io.crashSimulation?.wrote(fd: writes[i].fd) }
            if n >= 0 && n == writes[i].byteCount {
                error = nil
                if writes[i].sync { io.crashSimulation?.synced(fd: writes[i].fd) }
            } else if n >= 0 {
                error = .io("short write \(n)/\(writes[i].byteCount)", ENOSPC)
            } else if appends[i].sync_failed != 0 {
                error = .io("fdatasync", Int32(-n))
            } else {
                error = .io("write", Int32(-n))
            }
            if case .io(let what, let code)? = error, (code != ENOSPC && code != ECANCELED) || what == "fdatasync" {
                io.markOffline("\(what) failed: \(String(cString: strerror(code)))")
            }
            errors[i] = error
            onCompletion?(i, error)
        }
    }

    /// Reads up to `count` bytes at `offset`; fewer only at end of file.
    ///
    /// Reads use pread, not the ring: the ring is single-issuer and the appender holds it through
    /// each group commit (fdatasync included), and a fetch on an event loop must never wait for
    /// that. Record data itself leaves by sendfile; these reads are headers, index files and the
    /// occasional batch, almost always from the page cache.
    public func read(fd: Int32, count: Int, at offset: Int64) throws -> ByteBuffer {
        var out = ByteBuffer()
        guard count > 0 else { return out }
        var failure: Int32 = 0
        out.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { dst in
            var done = 0
            while done < count {
                let n = pread(fd, dst.baseAddress! + done, count - done, off_t(offset) + off_t(done))
                if n < 0 {
                    if errno == EINTR || errno == EAGAIN { continue }
                    failure = errno
                    return 0
                }
                if n == 0 { break }
                done += n
            }
            return done
        }
        if failure != 0 { throw LogError.io("read", failure) }
        return out
    }

    /// fsync(2) of a log directory on the calling thread; a failed fsync takes the directory
    /// offline, as a failed fdatasync does (its new or renamed entries may never reach the disk).
    public func syncDirectory(_ path: String) throws {
        do {
            try PosixFile.fsyncDirectory(path)
        } catch LogError.io(let what, let code) where what.hasPrefix("fsync") {
            markOffline("fsync of directory \(path) failed: \(String(cString: strerror(code)))")
            throw LogError.io(what, code)
        }
    }

    /// fdatasync(2) on the calling thread. Not through the ring: the ring is the appender's, and
    /// an interval flush or a sealed segment's sync holding it would stall every partition's group
    /// commit for as long as the disk takes.
    public func sync(fd: Int32) throws {
        var rc = beforeSyncForTesting.withLockedValue { $0 }?() ?? 0
        if rc == 0 {
            while fdatasync(fd) != 0 {
                if errno == EINTR { continue }
                rc = errno
                break
            }
        }
        if rc != 0 {
            // After a failed fdatasync the page cache may have dropped the dirty pages: what was
            // written is not known to be on disk, now or after a retry (PostgreSQL's "fsyncgate").
            markOffline("fdatasync failed: \(String(cString: strerror(rc)))")
            throw LogError.io("fdatasync", rc)
        }
        crashSimulation?.synced(fd: fd)
    }
}
