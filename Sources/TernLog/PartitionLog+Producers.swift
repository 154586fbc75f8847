/// DescribeProducers: the idempotent and transactional producers this partition remembers.
extension PartitionLog {
    public struct ActiveProducer: Sendable, Equatable {
        public var producerId: Int64
        public var epoch: Int16
        /// Sequence of the last record written (-1 when only a marker is known).
        public var lastSequence: Int32
        public var lastTimestamp: Int64
        /// First offset of the producer's open transaction here, or -1.
        public var currentTransactionStartOffset: Int64
    }

    public var activeProducers: [ActiveProducer] {
        lock.withLock {
            producerState.producers.map { id, entry in
                ActiveProducer(
                    producerId: id, epoch: entry.epoch, lastSequence: entry.batches.last?.lastSequence ?? -1,
                    lastTimestamp: entry.lastTimestamp ?? -1, currentTransactionStartOffset: transactions.open[id] ?? -1)
            }.sorted { $0.producerId < $1.producerId }
        }
    }
}

extension PartitionLog {
    /// Whether `producerId`'s transaction is open in this partition at `epoch` (its first batch is
    /// here and no marker has closed it): later batches of the same transaction need no check.
    public func hasOpenTransaction(producerId: Int64, epoch: Int16) -> Bool {
        lock.withLock { transactions.open[producerId] != nil && producerState.producers[producerId]?.epoch == epoch }
    }
}
