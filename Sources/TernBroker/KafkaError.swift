import TernLog
import TernProtocol

/// Kafka error codes Tern returns. The single place where internal errors become wire codes.
public enum KafkaError: Int16, Error, Sendable {
    case none = 0
    case offsetOutOfRange = 1
    case corruptMessage = 2
    case unknownTopicOrPartition = 3
    case leaderNotAvailable = 5
    case messageTooLarge = 10
    case coordinatorNotAvailable = 15
    case invalidTopic = 17
    case recordListTooLarge = 18
    case invalidRequiredAcks = 21
    case invalidTimestamp = 32
    case illegalSaslState = 34
    case unsupportedVersion = 35
    case topicAlreadyExists = 36
    case invalidPartitions = 37
    case invalidReplicationFactor = 38
    case invalidReplicaAssignment = 39
    case invalidConfig = 40
    case invalidRequest = 42
    case outOfOrderSequenceNumber = 45
    case invalidProducerEpoch = 47
    case invalidTxnState = 48
    case invalidProducerIdMapping = 49
    case invalidTransactionTimeout = 50
    case concurrentTransactions = 51
    case transactionalIdNotFound = 105
    case unsupportedForMessageFormat = 43
    case policyViolation = 44
    case securityDisabled = 54
    case kafkaStorageError = 56
    case unsupportedCompressionType = 76
    case invalidRecord = 87
    case unknownTopicId = 100
    case unknownServerError = -1

    /// Maps an error from a lower layer to the code clients understand.
    public init(_ error: Error) {
        switch error {
        case let e as KafkaError: self = e
        case let e as DescribedKafkaError: self = e.code
        case LogError.offsetOutOfRange: self = .offsetOutOfRange
        case LogError.io, LogError.closed, LogError.offline: self = .kafkaStorageError
        case LogError.corruptBatch: self = .corruptMessage
        case LogError.outOfOrderSequence: self = .outOfOrderSequenceNumber
        case LogError.invalidProducerEpoch: self = .invalidProducerEpoch
        case RecordBatchError.crcMismatch, RecordBatchError.truncated, RecordBatchError.invalidLength,
            RecordBatchError.corruptCompression, RecordBatchError.decompressedTooLarge:
            self = .corruptMessage
        // Produce v3+ may carry magic v2 batches only (Kafka: INVALID_RECORD).
        case RecordBatchError.unsupportedMagic, RecordBatchError.invalidRecord: self = .invalidRecord
        case RecordBatchError.unsupportedCompression: self = .unsupportedCompressionType
        case RecordBatchError.tooLarge: self = .messageTooLarge
        case let e as RecordValidationError: self = e.kind == .invalidTimestamp ? .invalidTimestamp : .invalidRecord
        default: self = .unknownServerError
        }
    }
}

/// A Kafka error code with the message to send where the response carries one.
public struct DescribedKafkaError: Error, Sendable {
    public let code: KafkaError
    public let message: String

    public init(_ code: KafkaError, _ message: String) {
        self.code = code
        self.message = message
    }
}
