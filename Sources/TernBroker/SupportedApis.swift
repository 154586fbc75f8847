import TernProtocol

/// The APIs this broker answers: the range advertised in ApiVersions and the range actually handled.
///
/// Every advertised range starts at 0 because librdkafka before 2.11.1 enables features only when
/// the broker's range contains exact versions (e.g. FindCoordinator 0 gates LZ4 and group support,
/// Produce 3 + Fetch 4 gate message format v2). Versions advertised but not handled are refused
/// when they arrive (the connection is closed, as Kafka does for requests it cannot parse).
public enum SupportedApis {
    public struct Range: Sendable {
        public let advertised: ClosedRange<Int16>
        public let handled: ClosedRange<Int16>
    }

    public static let table: [ApiKey: Range] = [
        .produce: Range(advertised: 0...9, handled: 3...9),
        .fetch: Range(advertised: 0...12, handled: 4...12),
        .listOffsets: Range(advertised: 0...6, handled: 0...6),
        .metadata: Range(advertised: 0...12, handled: 0...12),
        .findCoordinator: Range(advertised: 0...4, handled: 0...4),
        .offsetCommit: Range(advertised: 0...9, handled: 0...9),
        .offsetFetch: Range(advertised: 0...9, handled: 0...9),
        .joinGroup: Range(advertised: 0...9, handled: 0...9),
        .heartbeat: Range(advertised: 0...4, handled: 0...4),
        .leaveGroup: Range(advertised: 0...5, handled: 0...5),
        .syncGroup: Range(advertised: 0...5, handled: 0...5),
        .describeGroups: Range(advertised: 0...5, handled: 0...5),
        .listGroups: Range(advertised: 0...5, handled: 0...5),
        .deleteGroups: Range(advertised: 0...2, handled: 0...2),
        .offsetDelete: Range(advertised: 0...0, handled: 0...0),
        // KIP-848; librdkafka's group.protocol=consumer needs exactly v1.
        .consumerGroupHeartbeat: Range(advertised: 0...1, handled: 0...1),
        .apiVersions: Range(advertised: 0...4, handled: 0...4),
        .createTopics: Range(advertised: 0...7, handled: 0...7),
        .deleteTopics: Range(advertised: 0...6, handled: 0...6),
        .initProducerId: Range(advertised: 0...4, handled: 0...4),
        .addPartitionsToTxn: Range(advertised: 0...3, handled: 0...3),
        .addOffsetsToTxn: Range(advertised: 0...3, handled: 0...3),
        .endTxn: Range(advertised: 0...3, handled: 0...3),
        .txnOffsetCommit: Range(advertised: 0...3, handled: 0...3),
        .describeTransactions: Range(advertised: 0...0, handled: 0...0),
        .listTransactions: Range(advertised: 0...0, handled: 0...0),
        .deleteRecords: Range(advertised: 0...2, handled: 0...2),
        .describeConfigs: Range(advertised: 0...4, handled: 0...4),
        .incrementalAlterConfigs: Range(advertised: 0...1, handled: 0...1),
        // Answered as Kafka does on a PLAINTEXT listener without an authorizer (ILLEGAL_SASL_STATE,
        // SECURITY_DISABLED). SaslHandshake and SaslAuthenticate are advertised together (client-compat §16).
        .saslHandshake: Range(advertised: 0...1, handled: 0...1),
        .saslAuthenticate: Range(advertised: 0...2, handled: 0...2),
        .describeAcls: Range(advertised: 0...3, handled: 0...3),
        .createAcls: Range(advertised: 0...3, handled: 0...3),
        .deleteAcls: Range(advertised: 0...3, handled: 0...3),
    ]

    public static func handles(_ key: ApiKey, version: Int16) -> Bool {
        table[key]?.handled.contains(version) ?? false
    }

    static var apiVersionsList: [ApiVersionsResponse.ApiVersion] {
        table.map { ApiVersionsResponse.ApiVersion(apiKey: $0.key.rawValue, minVersion: $0.value.advertised.lowerBound, maxVersion: $0.value.advertised.upperBound) }
            .sorted { $0.apiKey < $1.apiKey }
    }
}
