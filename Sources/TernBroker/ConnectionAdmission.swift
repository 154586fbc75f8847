import Foundation
import NIOConcurrencyHelpers

#if canImport(Glibc)
    import Glibc
#endif

/// Which client connections the broker takes: `max.connections`, `max.connections.per.ip`, and a
/// descriptor reserve for storage. Every segment file is a descriptor too, and one that cannot be
/// opened fails a segment roll (the data path) — so connections may only use what is left of the
/// open-file limit after the broker's own descriptors and a reserve for storage to grow into
/// (`FileDescriptorBudget.reserve`). A broker at a limit keeps serving the connections it has.
///
/// Sendable: the counts are under one lock; admission and release are a count each, so the
/// limits hold however many event loops accept at once.
final class ConnectionAdmission: Sendable {
    struct Counts {
        var total = 0
        var perAddress: [String: Int] = [:]
        /// Open descriptors that are not connections, as last sampled (`sampleDescriptors`).
        var otherDescriptors = 0
    }

    private let counts = NIOLockedValueBox(Counts())
    /// The open-file limit, read at start (after `tern broker` raised it).
    let descriptorLimit: Int

    init() {
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < rlim_t(Int32.max) {
            descriptorLimit = Int(limit.rlim_cur)
        } else {
            descriptorLimit = Int(Int32.max)
        }
        sampleDescriptors()
    }

    /// Connections the descriptor budget leaves room for, with `others` open descriptors that are
    /// not connections.
    func descriptorRoom(others: Int) -> Int {
        descriptorLimit - others - FileDescriptorBudget.reserve(limit: descriptorLimit)
    }

    /// Takes a connection from `address`, or says why not (the caller closes it).
    func admit(address: String?, maxConnections: Int, maxPerAddress: Int) -> String? {
        counts.withLockedValue { c in
            if c.total >= maxConnections { return "max.connections (\(maxConnections)) reached" }
            let room = descriptorRoom(others: c.otherDescriptors)
            if c.total >= room {
                return "only \(room) of the open-file limit \(descriptorLimit) may go to connections: the rest is kept for segment files"
            }
            if let address, c.perAddress[address, default: 0] >= maxPerAddress {
                return "max.connections.per.ip (\(maxPerAddress)) reached for \(address)"
            }
            c.total += 1
            if let address { c.perAddress[address, default: 0] += 1 }
            return nil
        }
    }

    /// Gives back an admitted connection; returns the new total.
    @discardableResult
    func release(address: String?) -> Int {
        counts.withLockedValue { c in
            c.total -= 1
            assert(c.total >= 0, "every release follows an admission")
            if let address {
                let left = c.perAddress[address, default: 1] - 1
                c.perAddress[address] = left > 0 ? left : nil
            }
            return c.total
        }
    }

    var total: Int { counts.withLockedValue { $0.total } }

    /// Counts the process's open descriptors (`/proc/self/fd`) and keeps how many are not
    /// connections. Housekeeping calls it every few seconds: reading the directory costs too much
    /// to do per accept.
    func sampleDescriptors() {
        guard let open = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count else { return }
        counts.withLockedValue { c in c.otherDescriptors = max(0, open - c.total) }
    }
}
