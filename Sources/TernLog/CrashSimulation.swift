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

    /// A harsher crash: of each file's unsynced tail a random part survives, and the last bytes
    /// that did may be garbage — a write torn in the middle of a page or sector, as a power loss
    /// can leave it. Synced bytes are never touched. `seed` makes a run repeatable.
    func crashTearingWrites(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        for (path, durableSize) in durable.withLockedValue({ $0 }).sorted(by: { $0.key < $1.key }) {
            var st = stat()
            guard stat(path, &st) == 0, Int64(st.st_size) > durableSize else { continue }
            let unsynced = Int64(st.st_size) - durableSize
            let kept = Int64(random.next() % UInt64(unsynced + 1))
            truncate(path, off_t(durableSize + kept))
            guard kept > 0, random.next() % 2 == 0 else { continue }
            let garbage = (0..<min(kept, 16)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            let fd = open(path, O_WRONLY)
            guard fd >= 0 else { continue }
            _ = pwrite(fd, garbage, garbage.count, off_t(durableSize + kept - Int64(garbage.count)))
            close(fd)
        }
    }

    private static func path(of fd: Int32) -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/fd/\(fd)", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// A small seedable generator (SplitMix64) for repeatable simulated crashes.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
