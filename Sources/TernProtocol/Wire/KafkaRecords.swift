import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// The `records` field of Produce/Fetch: record batches either in memory (received from a client)
/// or as a range of a segment file (read for a consumer), which the server sends with sendfile.
public enum KafkaRecords: Sendable, Equatable {
    case bytes(ByteBuffer)
    case file(FileSlice)

    public static let empty = KafkaRecords.bytes(ByteBuffer())

    public var byteCount: Int {
        switch self {
        case .bytes(let b): return b.readableBytes
        case .file(let f): return f.length
        }
    }

    /// The bytes themselves, read from the file when need be (tests, tools, compaction).
    public var bytes: ByteBuffer {
        switch self {
        case .bytes(let b): return b
        case .file(let f): return f.readAll()
        }
    }
}

/// `length` bytes at `offset` of a file, through a descriptor this object owns (a dup of the
/// segment's), so the bytes stay readable even if the segment is closed or deleted meanwhile.
public final class FileSlice: Sendable, Equatable {
    public let descriptor: Int32
    public let offset: Int64
    public let length: Int

    /// Takes ownership of `descriptor`.
    public init(descriptor: Int32, offset: Int64, length: Int) {
        self.descriptor = descriptor
        self.offset = offset
        self.length = length
    }

    deinit { close(descriptor) }

    public static func == (a: FileSlice, b: FileSlice) -> Bool {
        a === b || (a.descriptor == b.descriptor && a.offset == b.offset && a.length == b.length)
    }

    public func readAll() -> ByteBuffer {
        var out = ByteBuffer()
        out.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { dst in
            var done = 0
            while done < length {
                let n = pread(descriptor, dst.baseAddress! + done, length - done, off_t(offset) + off_t(done))
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                done += n
            }
            return done
        }
        return out
    }
}
