import TernProtocol

/// Generated messages that can build a sample with every field of a version set to a non-default value.
protocol SampledMessage: KafkaMessage {
    static func sample(version: Int16) -> Self
}
