/// Kafka's ACL operation codes, and the `authorized_operations` bit fields a broker without an
/// authorizer answers with: every operation the resource type supports (Kafka's
/// `AclEntry.supportedOperations`), bit `1 << code` set for each. Sent only when a request asks;
/// otherwise the field keeps the schema default, INT32_MIN.
public enum AuthorizedOperations {
    public enum Operation: Int32, Sendable {
        case read = 3, write, create, delete, alter, describe, clusterAction, describeConfigs, alterConfigs, idempotentWrite
    }

    public static func bits(_ operations: [Operation]) -> Int32 {
        operations.reduce(Int32(0)) { $0 | (1 << $1.rawValue) }
    }

    public static let topic = bits([.read, .write, .create, .describe, .delete, .alter, .describeConfigs, .alterConfigs])
    public static let group = bits([.read, .describe, .delete, .describeConfigs, .alterConfigs])
    public static let cluster = bits([.create, .clusterAction, .describeConfigs, .alterConfigs, .idempotentWrite, .alter, .describe])
    /// The field's value when the request did not ask.
    public static let notRequested = Int32.min
}
