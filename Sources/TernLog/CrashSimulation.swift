import NIOConcurrencyHelpers

#if canImport(Glibc)
    import Glibc
#endif

/// Test-only: remembers how much of each file written through a `DiskIO` is known to be on disk
/// (covered by a successful fdatasync), so a test can "crash" — cut every such file back to that
/// size, as a power loss would drop what was only in the page cache — and reopen the logs.
/// A kill -9 cannot show a missing fdatasync (the page cache survives the process); this can.
final class CrashSimulation: Sendable {
    private let durable = NIOLockedValueBox<[String: Int64]>([:])
    private let syncs = NIOLockedValueBox(0)

    /// fdatasyncs that succeeded since the simulation started.
    var syncCount: Int { syncs.withLockedValue { $0 } }

    /// A write to `fd` completed; until a sync covers it, it may be lost.
    func wrote(fd: Int32) {
        guard let path = Self.path(of: fd) else { return }
        durable.withLockedValue { $0[path] = $0[path] ?? 0 }
    }

    /// An fdatasync of `fd` succeeded: everything in the file now is durable.
    func synced(fd: Int32) {
        guard let path = Self.path(of: fd) else { return }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return }
        durable.withLockedValue { $0[path] = Int64(st.st_size) }
        syncs.withLockedValue { $0 += 1 }
    }

    /// Cuts every file written through the DiskIO back to its durable size.
    func crash() {
        for (path, size) in durable.withLockedValue({ $0 }) { truncate(path, off_t(size)) }
    }

    private static func path(of fd: Int32) -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/fd/\(fd)", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
