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

/// One open descriptor of a file, shared by every reader that holds this object and closed when
/// the last lets go — so the file stays readable while any of them needs it (its segment may be
/// closed or deleted meanwhile), and however many responses read it, it costs one descriptor.
public final class SharedDescriptor: Sendable {
    public let fd: Int32

    /// Takes ownership of `fd`.
    public init(taking fd: Int32) { self.fd = fd }

    deinit { close(fd) }
}

/// `length` bytes at `offset` of a file, through a shared descriptor it keeps open (pread and
/// sendfile name their offset, so sharing one descriptor is safe).
public final class FileSlice: Sendable, Equatable {
    public let file: SharedDescriptor
    public let offset: Int64
    public let length: Int

    public var descriptor: Int32 { file.fd }

    public init(file: SharedDescriptor, offset: Int64, length: Int) {
        self.file = file
        self.offset = offset
        self.length = length
    }

    /// Takes ownership of `descriptor`.
    public convenience init(descriptor: Int32, offset: Int64, length: Int) {
        self.init(file: SharedDescriptor(taking: descriptor), offset: offset, length: length)
    }

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
