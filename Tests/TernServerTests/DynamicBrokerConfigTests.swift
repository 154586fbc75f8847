import Foundation
import Logging
import TernProtocol
import XCTest

@testable import TernBroker

final class DynamicBrokerConfigTests: BrokerTestCase {
    override func configure(_ config: inout BrokerConfig) {
        try! BrokerProperties.apply("log.retention.ms", "1000", to: &config)
        try! BrokerProperties.apply("message.max.bytes", "5000", to: &config)
    }

    /// Level by level: this broker's own value over the cluster-wide default over server.properties;
    /// another broker's settings are not this one's. A coarser synonym at a higher level wins over
    /// a finer one below it.
    func testPrecedenceIsBrokerThenClusterDefaultThenStatic() throws {
        let base = broker.config
        var dynamic = DynamicBrokerConfigs(["": ["log.retention.hours": "5", "message.max.bytes": "6000"], "7": ["message.max.bytes": "1"]])
        XCTAssertEqual(dynamic.applied(to: base).log.retentionMs, 5 * 3_600_000)
        XCTAssertEqual(dynamic.applied(to: base).messageMaxBytes, 6000, "broker 7's setting is not broker 0's")
        dynamic.entities["0"] = ["log.retention.ms": "42", "message.max.bytes": "7000"]
        XCTAssertEqual(dynamic.applied(to: base).log.retentionMs, 42)
        XCTAssertEqual(dynamic.applied(to: base).messageMaxBytes, 7000)
        XCTAssertEqual(DynamicBrokerConfigs().applied(to: base).log.retentionMs, 1000)
        XCTAssertEqual(DynamicBrokerConfigs(["": ["log.retention.hours": "1", "log.retention.ms": "9"]]).applied(to: base).log.retentionMs, 9,
                       "within a level the finer unit wins")
    }

    func testChecksAsKafkaDoes() {
        func code(_ settings: [String: String], entity: String = "") -> KafkaError? {
            do {
                try DynamicBrokerConfigs.validate(settings, entity: entity)
                return nil
            } catch {
                return (error as? DescribedKafkaError)?.code
            }
        }
        XCTAssertNil(code(["log.retention.ms": "60000", "min.insync.replicas": "2", "compression.type": "zstd"]))
        XCTAssertEqual(code(["log.dirs": "/tmp/x"]), .invalidRequest, "not dynamic")
        XCTAssertEqual(code(["no.such.setting": "1"]), .invalidConfig)
        XCTAssertEqual(code(["min.insync.replicas": "0"]), .invalidRequest)
        XCTAssertEqual(code(["log.retention.ms": "soon"]), .invalidRequest)
        XCTAssertEqual(code(["sasl.kerberos.min.time.before.relogin": "58000"]), .invalidRequest, "per broker only")
        XCTAssertNil(code(["sasl.kerberos.min.time.before.relogin": "58000"], entity: "0"))
        XCTAssertEqual(code(["num.io.threads": "many"], entity: "0"), .invalidRequest)
        // Hours and minutes become milliseconds: a product past Int64 is refused, not a trap.
        for name in ["log.roll.hours", "log.retention.hours", "log.retention.minutes"] {
            XCTAssertEqual(code([name: "\(Int64.max)"]), .invalidRequest, name)
        }
    }

    /// Every dynamic setting is one the catalog describes, and the value it describes by default
    /// reads back through the same parser a change goes through.
    func testEveryDynamicSettingIsDescribedAndItsDefaultParses() throws {
        for name in BrokerConfigCatalog.dynamicNames {
            let entry = try XCTUnwrap(BrokerConfigCatalog.byName[name], name)
            guard let value = entry.value(BrokerConfig()) else { continue }
            var config = BrokerConfig()
            XCTAssertNoThrow(try BrokerProperties.applyValue(name, value, to: &config), "\(name)=\(value)")
        }
    }

    /// A change takes effect at once for topics without their own value — the batch limit and
    /// min.insync.replicas a produce is checked against, the log's retention — and survives a restart.
    func testAChangeAppliesToTopicsAtOnceAndSurvivesRestart() async throws {
        try broker.topics.createTopic(name: "plain", partitions: 1)
        try broker.topics.createTopic(name: "own", partitions: 1, configs: ["max.message.bytes": "3000"])
        XCTAssertEqual(broker.topics.topic("plain")?.batchPolicy.maxMessageBytes, 5000)

        try await broker.writeBrokerConfigs("") { _ in ["min.insync.replicas": "2", "log.retention.ms": "777"] }
        try await broker.writeBrokerConfigs("0") { _ in ["message.max.bytes": "9000"] }
        XCTAssertEqual(broker.topics.topic("plain")?.minInsyncReplicas, 2)
        XCTAssertEqual(broker.topics.topic("plain")?.batchPolicy.maxMessageBytes, 9000)
        XCTAssertEqual(broker.topics.topic("own")?.batchPolicy.maxMessageBytes, 3000, "a topic's own value stays")
        XCTAssertEqual(broker.topics.topic("plain")?.partitions.first?.currentConfig.retentionMs, 777)
        XCTAssertEqual(broker.liveConfig.messageMaxBytes, 9000)

        let config = broker.config
        await broker.shutdown()
        broker = try Broker(config: config, logger: Logger(label: "test"))
        XCTAssertEqual(broker.topics.topic("plain")?.minInsyncReplicas, 2, "persisted in the data directory")
        XCTAssertEqual(broker.topics.topic("plain")?.batchPolicy.maxMessageBytes, 9000)

        try await broker.writeBrokerConfigs("0") { _ in [:] }
        XCTAssertEqual(broker.topics.topic("plain")?.batchPolicy.maxMessageBytes, 5000, "deleting it restores server.properties' value")
    }
}
