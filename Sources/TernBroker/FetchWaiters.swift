import NIOConcurrencyHelpers
import TernLog

/// Long-polling fetches waiting for data on particular partition logs. Appends call `notify`,
/// which wakes every fetch registered on that log so it can re-check min.bytes.
final class FetchWaiters: Sendable {
    private let waiters = NIOLockedValueBox<[ObjectIdentifier: [UInt64: @Sendable () -> Void]]>([:])
    private let nextId = NIOLockedValueBox<UInt64>(0)

    func register(_ logs: [PartitionLog], _ wake: @escaping @Sendable () -> Void) -> UInt64 {
        let id = nextId.withLockedValue { n in
            n += 1
            return n
        }
        waiters.withLockedValue { w in
            for log in logs { w[ObjectIdentifier(log), default: [:]][id] = wake }
        }
        return id
    }

    func unregister(_ id: UInt64, _ logs: [PartitionLog]) {
        waiters.withLockedValue { w in
            for log in logs {
                let key = ObjectIdentifier(log)
                w[key]?[id] = nil
                if w[key]?.isEmpty == true { w[key] = nil }
            }
        }
    }

    func notify(_ log: PartitionLog) {
        let toWake = waiters.withLockedValue { w in w[ObjectIdentifier(log)].map { Array($0.values) } ?? [] }
        for wake in toWake { wake() }
    }
}
