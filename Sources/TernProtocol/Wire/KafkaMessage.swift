import NIOCore

/// A value with a Kafka wire encoding that depends on the API version.
public protocol KafkaVersionedStruct: Sendable, Equatable {
    init()
    init(from buffer: inout ByteBuffer, version: Int16) throws
    func encode<W: KafkaWriter>(to writer: inout W, version: Int16)
}

/// A request or response body of one Kafka API.
public protocol KafkaMessage: KafkaVersionedStruct {
    static var apiKey: Int16 { get }
    static var validVersions: ClosedRange<Int16> { get }
    static var firstFlexibleVersion: Int16 { get }
}

extension KafkaMessage {
    public static func isFlexible(_ version: Int16) -> Bool { version >= firstFlexibleVersion }
}

/// Why bytes could not be decoded as a Kafka message.
public enum KafkaDecodeError: Error, Equatable, Sendable {
    /// The buffer ended before the value did.
    case truncated
    /// A length or count that cannot be right (negative where not allowed, larger than the frame).
    case invalidLength(Int)
    /// A string that is not valid UTF-8.
    case invalidString
    /// A varint longer than its type allows.
    case varintTooLong
}
