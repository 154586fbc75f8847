import Foundation
import NIOConcurrencyHelpers

#if canImport(Glibc)
    import Glibc
#endif

/// Every partition keeps one descriptor open for as long as the broker runs (its active segment's
/// log; sealed segments keep theirs, index files none). A topic whose partitions would take the
/// broker near its open-file limit is refused up front with a clear error, rather than failing
/// half-way — or succeeding and leaving no descriptors for connections and restarts.
enum FileDescriptorBudget {
    /// Descriptors kept free for connections, fetch responses in flight and the broker's own files.
    static func reserve(limit: Int) -> Int { max(256, limit / 10) }

    /// Client connections open now (the broker's `ConnectionAdmission`); set once at start.
    static let connections = NIOLockedValueBox<@Sendable () -> Int>({ 0 })

    /// Throws POLICY_VIOLATION with the numbers when `partitions` more could not be opened.
    /// Connections count inside the reserve kept for them, not against storage: they are capped
    /// to leave storage its own reserve (`ConnectionAdmission`), and the two reserves must not
    /// both claim the same descriptors.
    static func check(partitions: Int) throws {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < rlim_t(Int.max) else { return }
        let max = Int(limit.rlim_cur)
        let connected = connections.withLockedValue { $0 }()
        let open = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0) - connected
        let left = max - open - reserve(limit: max)
        guard partitions <= left else {
            throw DescribedKafkaError(
                .policyViolation,
                "not enough file descriptors for \(partitions) more partitions: \(open) open of a limit of \(max), "
                    + "\(reserve(limit: max)) kept for connections; raise the broker's open-file limit (ulimit -n)")
        }
    }
}
