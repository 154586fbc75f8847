import TernCluster
import TernLog
import TernProtocol

extension KafkaError {
    /// Maps an error from a lower layer to the code clients understand.
    public init(_ error: Error) {
        switch error {
        case let e as KafkaError: self = e
        case let e as DescribedKafkaError: self = e.code
        case LogError.offsetOutOfRange: self = .offsetOutOfRange
        // Leadership moved between accepting the write and appending it: the client re-routes.
        case LogError.notInRole: self = .notLeaderOrFollower
        case LogError.io, LogError.closed, LogError.offline: self = .kafkaStorageError
        case LogError.corruptBatch: self = .corruptMessage
        case LogError.outOfOrderSequence: self = .outOfOrderSequenceNumber
        case LogError.invalidProducerEpoch: self = .invalidProducerEpoch
        case LogError.transactionCoordinatorFenced: self = .transactionCoordinatorFenced
        case RecordBatchError.crcMismatch, RecordBatchError.truncated, RecordBatchError.invalidLength,
            RecordBatchError.corruptCompression, RecordBatchError.decompressedTooLarge:
            self = .corruptMessage
        // Produce v3+ may carry magic v2 batches only (Kafka: INVALID_RECORD).
        case RecordBatchError.unsupportedMagic, RecordBatchError.invalidRecord: self = .invalidRecord
        case RecordBatchError.unsupportedCompression: self = .unsupportedCompressionType
        case RecordBatchError.tooLarge: self = .messageTooLarge
        case let e as RecordValidationError: self = e.kind == .invalidTimestamp ? .invalidTimestamp : .invalidRecord
        case ClusterError.notController, ClusterError.fenced, ClusterError.conflict: self = .notController
        case ClusterError.topicExists: self = .topicAlreadyExists
        case ClusterError.unknownTopic: self = .unknownTopicOrPartition
        case ClusterError.duplicateNodeId: self = .unknownServerError
        // The controller could not reach etcd in time: the client retries, as after Kafka's timeouts.
        case is EtcdError: self = .requestTimedOut
        case ReplicaAssignment.Failure.replicationFactorTooLarge: self = .invalidReplicationFactor
        case ReplicaAssignment.Failure.someBrokersWithoutRack: self = .invalidReplicaAssignment
        case ReplicaAssignment.Failure.invalidCount: self = .invalidPartitions
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
