import Logging
import NIOConcurrencyHelpers
import TernCluster
import TernProtocol

/// Cluster mode's producer ids: blocks of `blockSize` reserved from etcd's counter
/// (`ClusterMember.allocateProducerIds`), so no two brokers — and no broker after a restart —
/// ever hand out the same id. The next block is fetched in the background once the current one
/// is three-quarters used; if a burst empties both, InitProducerId answers
/// COORDINATOR_LOAD_IN_PROGRESS (retriable) until it arrives, as Kafka's ProducerIdManager does.
///
/// Sendable: the blocks and the refill flag live under one lock.
final class ProducerIdBlocks: Sendable {
    static let blockSize: Int64 = 1000
    private struct State {
        var current: Range<Int64> = 0..<0
        var next: Range<Int64>?
        var refilling = false
    }
    private let state = NIOLockedValueBox(State())
    private let member: ClusterMember
    private let logger: Logger

    init(member: ClusterMember, logger: Logger) {
        self.member = member
        self.logger = logger
    }

    /// Reserves the first block; the broker does not start without one.
    func prime() async throws {
        let block = try await member.allocateProducerIds(count: Self.blockSize)
        state.withLockedValue { $0.current = block }
    }

    func take() throws -> Int64 {
        let (id, refill): (Int64?, Bool) = state.withLockedValue { s in
            if s.current.isEmpty, let next = s.next {
                s.current = next
                s.next = nil
            }
            let id = s.current.first
            if id != nil { s.current = s.current.dropFirst() }
            let low = s.current.count < Int(Self.blockSize / 4)
            let refill = low && s.next == nil && !s.refilling
            if refill { s.refilling = true }
            return (id, refill)
        }
        if refill { fetchNext() }
        guard let id else { throw KafkaError.coordinatorLoadInProgress }
        return id
    }

    private func fetchNext() {
        Task { [member, state, logger] in
            do {
                let block = try await member.allocateProducerIds(count: Self.blockSize)
                state.withLockedValue { s in
                    s.next = block
                    s.refilling = false
                }
            } catch {
                logger.warning("could not reserve producer ids", metadata: ["error": "\(error)"])
                state.withLockedValue { $0.refilling = false }
            }
        }
    }
}
