/// Failures of the log layer, mapped to Kafka error codes once, at the broker's edge.
public enum LogError: Error, Equatable, Sendable {
    /// A system call failed; `errno` as negative or positive value, with what was being done.
    case io(String, Int32)
    case offsetOutOfRange(requested: Int64, logStart: Int64, logEnd: Int64)
    case corruptBatch(String)
    case closed
    /// The log directory is offline after a write or sync failure that may have lost data (EIO,
    /// a failed fdatasync): no more writes until restart; reads continue.
    case offline(String)
    /// Idempotent producer: a sequence that does not follow the last one written.
    case outOfOrderSequence
    /// Idempotent producer: an epoch older than the producer's current one.
    case invalidProducerEpoch
    /// A transaction marker from a coordinator older than the one that last wrote a marker for
    /// the producer here (Kafka's TRANSACTION_COORDINATOR_FENCED): a deposed coordinator's late
    /// retry must not end a transaction its successor has already ended — nor the next one.
    case transactionCoordinatorFenced
    /// A follower was handed batches that do not continue its log (Kafka's
    /// UnexpectedAppendOffsetException): it must truncate or refetch, never renumber.
    case unexpectedAppendOffset(expectedAtLeast: Int64, got: Int64)
    /// An operation that needs the log quiet (truncation) found appends in flight.
    case busy
    /// A leader's write to a log this broker now follows (or a follower's copy to a log it now
    /// leads): the role changed after the write was accepted.
    case notInRole
}
