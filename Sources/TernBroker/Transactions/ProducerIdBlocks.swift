import Logging
import NIOConcurrencyHelpers
import TernProtocol

/// Producer ids, handed out from blocks of `blockSize` reserved durably — in cluster mode from
/// etcd's counter (`ClusterMember.allocateProducerIds`), on a single broker from its data
/// directory (`ProducerIdFile`) — so no two brokers, and no broker after a restart, ever hand out
/// the same id, whatever the wall clock does. The next block is reserved in the background once
/// the current one is three-quarters used; if a burst empties both, InitProducerId answers
/// COORDINATOR_LOAD_IN_PROGRESS (retriable) until it arrives, as Kafka's ProducerIdManager does.
///
/// Sendable: the blocks and the refill flag live under one lock.
final class ProducerIdBlocks: Sendable {
    static let blockSize: Int64 = 1000
    /// Reserves `count` ids no one has had: a range never overlapping any earlier one.
    typealias Reserve = @Sendable (_ count: Int64) async throws -> Range<Int64>
    private struct State {
        var current: Range<Int64> = 0..<0
        var next: Range<Int64>?
        var refilling = false
    }
    private let state = NIOLockedValueBox(State())
    private let reserve: Reserve
    private let logger: Logger

    /// `first`: a block reserved already (then `prime` is not needed).
    init(first: Range<Int64>? = nil, logger: Logger, reserve: @escaping Reserve) {
        self.reserve = reserve
        self.logger = logger
        if let first { state.withLockedValue { $0.current = first } }
    }

    /// Reserves the first block; the broker does not start without one.
    func prime() async throws {
        let block = try await reserve(Self.blockSize)
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
        Task { [reserve, state, logger] in
            do {
                let block = try await reserve(Self.blockSize)
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
