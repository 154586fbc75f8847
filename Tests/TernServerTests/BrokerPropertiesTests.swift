import TernBroker
import XCTest

final class BrokerPropertiesTests: XCTestCase {
    func testKafkaNamesApply() throws {
        let text = """
            # comment
            listeners=PLAINTEXT://127.0.0.1:19092
            log.dirs=/var/tern,/other
            num.partitions = 6
            auto.create.topics.enable=false
            log.segment.bytes=1048576
            log.flush.interval.messages=1
            """
        var config = BrokerConfig()
        for (k, v) in try BrokerProperties.parse(text) { try BrokerProperties.apply(k, v, to: &config) }
        XCTAssertEqual(config.host, "127.0.0.1")
        XCTAssertEqual(config.port, 19092)
        XCTAssertEqual(config.logDir, "/var/tern")
        XCTAssertEqual(config.numPartitions, 6)
        XCTAssertFalse(config.autoCreateTopics)
        XCTAssertEqual(config.log.segmentBytes, 1_048_576)
        XCTAssertEqual(config.log.flushIntervalMessages, 1)
    }

    func testBadValuesAndUnknownKeysAreRefused() {
        var config = BrokerConfig()
        XCTAssertThrowsError(try BrokerProperties.apply("num.partitions", "0", to: &config))
        XCTAssertThrowsError(try BrokerProperties.apply("num.partitions", "many", to: &config))
        XCTAssertThrowsError(try BrokerProperties.apply("listeners", "PLAINTEXT://host", to: &config))
        // Every listener is served or the start is refused: none is dropped in silence.
        XCTAssertThrowsError(try BrokerProperties.apply("listeners", "PLAINTEXT://127.0.0.1:9092,SSL://127.0.0.1:9093", to: &config)) { error in
            XCTAssertTrue("\(error)".contains("SSL listeners are not supported"), "\(error)")
        }
        XCTAssertThrowsError(try BrokerProperties.apply("listeners", "PLAINTEXT://127.0.0.1:9092,PLAINTEXT://127.0.0.1:9093", to: &config))
        XCTAssertNoThrow(try BrokerProperties.apply("listeners", "PLAINTEXT://127.0.0.1:9092,", to: &config))
        XCTAssertThrowsError(try BrokerProperties.apply("no.such.setting", "1", to: &config))
        XCTAssertThrowsError(try BrokerProperties.parse("just words"))
        // Intervals that become timers must fit in nanoseconds: NIO traps past Int64.
        for key in ["tern.socket.stall.timeout.ms", "offsets.retention.check.interval.ms", "connections.max.idle.ms"] {
            XCTAssertThrowsError(try BrokerProperties.apply(key, "9223372036854775807", to: &config), key)
        }
        XCTAssertThrowsError(try BrokerProperties.apply("offsets.retention.minutes", "9223372036854775807", to: &config))
        XCTAssertThrowsError(try BrokerProperties.apply("socket.send.buffer.bytes", "3000000000", to: &config))
    }
}
