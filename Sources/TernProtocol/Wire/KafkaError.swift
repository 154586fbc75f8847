/// The Kafka error codes Tern answers with, by their Kafka names — one enum for every module that
/// writes an error code (the broker's handlers, the group and transaction coordinators). How
/// lower-layer failures become these codes is decided once, at the broker's edge (`KafkaError(_:)`).
public enum KafkaError: Int16, Error, Sendable {
    case none = 0
    case offsetOutOfRange = 1
    case corruptMessage = 2
    case unknownTopicOrPartition = 3
    case leaderNotAvailable = 5
    case messageTooLarge = 10
    case offsetMetadataTooLarge = 12
    case coordinatorNotAvailable = 15
    case invalidTopic = 17
    case recordListTooLarge = 18
    case notEnoughReplicas = 19
    case invalidRequiredAcks = 21
    case illegalGeneration = 22
    case inconsistentGroupProtocol = 23
    case invalidGroupId = 24
    case unknownMemberId = 25
    case invalidSessionTimeout = 26
    case rebalanceInProgress = 27
    case invalidTimestamp = 32
    case illegalSaslState = 34
    case unsupportedVersion = 35
    case topicAlreadyExists = 36
    case invalidPartitions = 37
    case invalidReplicationFactor = 38
    case invalidReplicaAssignment = 39
    case invalidConfig = 40
    case invalidRequest = 42
    case unsupportedForMessageFormat = 43
    case policyViolation = 44
    case outOfOrderSequenceNumber = 45
    case invalidProducerEpoch = 47
    case invalidTxnState = 48
    case invalidProducerIdMapping = 49
    case invalidTransactionTimeout = 50
    case concurrentTransactions = 51
    case securityDisabled = 54
    case kafkaStorageError = 56
    case logDirNotFound = 57
    case nonEmptyGroup = 68
    case groupIdNotFound = 69
    case unsupportedCompressionType = 76
    case memberIdRequired = 79
    case fencedInstanceId = 82
    case groupSubscribedToTopic = 86
    case invalidRecord = 87
    case unknownTopicId = 100
    case transactionalIdNotFound = 105
    case fencedMemberEpoch = 110
    case unsupportedAssignor = 112
    case staleMemberEpoch = 113
    case mismatchedEndpointType = 114
    case unsupportedEndpointType = 115
    case unknownServerError = -1
}
