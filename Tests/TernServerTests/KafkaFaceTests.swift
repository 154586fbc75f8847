import TernProtocol
import XCTest

@testable import TernBroker

/// ApiVersions is a fingerprint: clients pick features by it, and kafka-python pinned to a release
/// (`api_version=(4, 0)`) uses that release's versions without asking. Tern shows Kafka 4.0.1's.
final class KafkaFaceTests: XCTestCase {
    /// What a Kafka 4.0 broker answers ApiVersions with, for the APIs Tern implements: captured
    /// from a 4.0.0 broker in kafka-python's `broker_version_data.py`, with JoinGroup 0-1 back as
    /// 4.0.1 restored them (KAFKA-19444: librdkafka before 2.11 keys GSSAPI on JoinGroup v0).
    static let kafka401: [ApiKey: ClosedRange<Int16>] = [
        .produce: 0...12, .fetch: 4...17, .listOffsets: 1...10, .metadata: 0...13, .offsetCommit: 2...9, .offsetFetch: 1...9,
        .findCoordinator: 0...6, .joinGroup: 0...9, .heartbeat: 0...4, .leaveGroup: 0...5, .syncGroup: 0...5,
        .describeGroups: 0...6, .listGroups: 0...5, .saslHandshake: 0...1, .apiVersions: 0...4, .createTopics: 2...7,
        .deleteTopics: 1...6, .deleteRecords: 0...2, .initProducerId: 0...5, .offsetForLeaderEpoch: 2...4,
        .addPartitionsToTxn: 0...5, .addOffsetsToTxn: 0...4, .endTxn: 0...5, .writeTxnMarkers: 1...1, .txnOffsetCommit: 0...5,
        .describeAcls: 1...3, .createAcls: 1...3, .deleteAcls: 1...3, .describeConfigs: 1...4, .alterConfigs: 0...2,
        .alterReplicaLogDirs: 1...2, .describeLogDirs: 1...4, .saslAuthenticate: 0...2, .createPartitions: 0...3,
        .deleteGroups: 0...2, .electLeaders: 0...2, .incrementalAlterConfigs: 0...1, .alterPartitionReassignments: 0...0,
        .listPartitionReassignments: 0...0, .offsetDelete: 0...0, .describeCluster: 0...2, .describeProducers: 0...0,
        .describeTransactions: 0...0, .listTransactions: 0...1, .consumerGroupHeartbeat: 0...1, .consumerGroupDescribe: 0...1,
        .listClientMetricsResources: 0...0, .describeTopicPartitions: 0...0,
    ]

    func testEveryApiIsAdvertisedWithKafka401sRange() {
        for r in ApiRegistry.all {
            guard let kafka = Self.kafka401[r.key] else {
                XCTFail("\(r.key) is not an API Kafka 4.0.1 advertises")
                continue
            }
            XCTAssertEqual(r.advertised, kafka, "\(r.key)")
        }
        XCTAssertEqual(Set(ApiRegistry.all.map(\.key)), Set(Self.kafka401.keys), "every API in the table is registered")
    }

    /// Everything advertised is served, except Produce 0-2 (message formats v0/v1): Kafka 4.0
    /// advertises them for old librdkafka's sake and answers UNSUPPORTED_VERSION, as Tern does.
    func testEveryAdvertisedVersionIsServed() {
        for r in ApiRegistry.all {
            if r.key == .produce {
                XCTAssertEqual(r.served, 3...r.advertised.upperBound)
                XCTAssertNotNil(r.refuseUnserved, "Produce v0-2 get UNSUPPORTED_VERSION, not a closed connection")
            } else {
                XCTAssertEqual(r.served, r.advertised, "\(r.key)")
            }
        }
    }
}
