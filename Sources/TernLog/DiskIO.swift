import CTernIO
import Logging
import NIOConcurrencyHelpers
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// The log's only door to the disk: positional vectored writes (with an optionally linked
/// fdatasync), reads and syncs through an io_uring ring from the C core. When the kernel refuses
/// io_uring (old kernel, seccomp, `io_uring_disabled`), the same calls fall back to pwritev/pread.
public final class DiskIO: @unchecked Sendable {
    // The ring is single-issuer; the lock serialises submissions from the event loops.
    private let lock = NIOLock()
    private let ring: OpaquePointer?
    public var usesIOUring: Bool { ring != nil }

    public init(logger: Logger, ringEntries: UInt32 = 256) {
        var err: Int32 = 0
        let r = tern_ring_create(ringEntries, &err)
        if r == nil {
            logger.warning("io_uring unavailable, using pwritev/pread", metadata: ["errno": "\(-err)"])
        }
        self.ring = r
    }

    deinit {
        if let ring { tern_ring_destroy(ring) }
    }

    /// Writes `buffers` back to back at `offset` of `fd`; with `sync`, fdatasync runs after the write
    /// (a linked SQE) and the call returns only once both are done.
    public func write(fd: Int32, buffers: [ByteBuffer], at offset: Int64, sync: Bool) throws {
        let expected = buffers.reduce(0) { $0 + $1.readableBytes }
        let written = withIovecs(buffers) { iov in
            lock.withLock { () -> Int in
                if let ring {
                    return tern_ring_writev_at(ring, fd, iov.baseAddress, Int32(iov.count), UInt64(offset), sync ? 1 : 0)
                }
                let n = pwritev(fd, iov.baseAddress, Int32(iov.count), off_t(offset))
                if n < 0 { return -Int(errno) }
                if sync && fdatasync(fd) != 0 { return -Int(errno) }
                return n
            }
        }
        if written < 0 { throw LogError.io("write", Int32(-written)) }
        // Short writes only happen on a full disk; report rather than leave a hole.
        if written != expected { throw LogError.io("short write \(written)/\(expected)", ENOSPC) }
    }

    /// Reads up to `count` bytes at `offset`; fewer only at end of file.
    public func read(fd: Int32, count: Int, at offset: Int64) throws -> ByteBuffer {
        var out = ByteBuffer()
        guard count > 0 else { return out }
        var failure: Int = 0
        out.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { dst in
            var done = 0
            while done < count {
                let n: Int = lock.withLock {
                    if let ring {
                        return tern_ring_read_at(ring, fd, dst.baseAddress! + done, count - done, UInt64(offset) + UInt64(done))
                    }
                    let r = pread(fd, dst.baseAddress! + done, count - done, off_t(offset) + off_t(done))
                    return r < 0 ? -Int(errno) : r
                }
                if n == -Int(EINTR) || n == -Int(EAGAIN) { continue }
                if n < 0 {
                    failure = n
                    return 0
                }
                if n == 0 { break }
                done += n
            }
            return done
        }
        if failure < 0 { throw LogError.io("read", Int32(-failure)) }
        return out
    }

    public func sync(fd: Int32) throws {
        let rc: Int32 = lock.withLock {
            if let ring { return tern_ring_fdatasync(ring, fd) }
            return fdatasync(fd) == 0 ? 0 : -errno
        }
        if rc < 0 { throw LogError.io("fdatasync", -rc) }
    }

    private func withIovecs<R>(_ buffers: [ByteBuffer], _ body: (UnsafeBufferPointer<iovec>) -> R) -> R {
        var iovs: [iovec] = []
        iovs.reserveCapacity(buffers.count)
        func nest(_ i: Int) -> R {
            if i == buffers.count { return iovs.withUnsafeBufferPointer(body) }
            return buffers[i].withUnsafeReadableBytes { raw in
                iovs.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: raw.baseAddress), iov_len: raw.count))
                return nest(i + 1)
            }
        }
        return nest(0)
    }
}
