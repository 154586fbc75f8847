import Foundation
import NIOCore
import TernProtocol
import XCTest

@testable import TernGroups

/// KIP-848 topic regexes: RE2's syntax, whole-name matches, and time linear in the name whatever
/// the pattern (a backtracking engine takes exponential time on `(a+)+b`).
final class TopicRegexTests: CoordinatorTestCase {
    func testPatternsTopicSubscriptionsUse() throws {
        let cases: [(String, [String], [String])] = [
            ("orders.*", ["orders", "orders-1", "orders.eu"], ["xorders", "order"]),
            ("topic-[0-9]+", ["topic-1", "topic-42"], ["topic-", "topic-1a"]),
            ("[^_].*", ["a", "orders"], ["_internal"]),
            ("(a|b)-\\d{2,3}", ["a-12", "b-123"], ["a-1", "c-12", "a-1234"]),
            ("^logs\\..*$", ["logs.app"], ["logs-app", "xlogs.app"]),
            ("(^a.*|b)|(^c)", ["abc", "b", "c"], ["bb", "cc"]),  // librdkafka joins regexes like this
            ("(?P<env>prod|dev)_[a-z_]+", ["prod_orders", "dev_x"], ["stage_x", "prod_"]),
            ("(?:x|y)*z", ["z", "xyxz"], ["xyx"]),
            (".*?-dlq", ["a-dlq", "-dlq"], ["a-dlqx"]),
            ("[\\w.-]+", ["a.b-c_d"], ["a b"]),
            ("a{3}", ["aaa"], ["aa", "aaaa"]),
            ("a{2,}", ["aa", "aaaaa"], ["a"]),
            ("x{", ["x{"], ["x"]),  // RE2 takes a brace that starts no count literally
        ]
        for (pattern, yes, no) in cases {
            let re = try TopicRegex(pattern)
            for name in yes { XCTAssertTrue(re.matches(name), "\(pattern) should match \(name)") }
            for name in no { XCTAssertFalse(re.matches(name), "\(pattern) should not match \(name)") }
        }
    }

    func testInvalidPatternsAreRefused() {
        for pattern in ["(", "a)", "a**", "*a", "[z-a]", "[abc", "(?i)abc", "(?=a)", "\\q", "a{1001}", "(a{1000}){1000}", "^*"] {
            XCTAssertThrowsError(try TopicRegex(pattern), pattern)
        }
    }

    /// 249 characters is Kafka's longest topic name; a backtracking engine does not finish these.
    func testMatchingTimeIsLinearInTheName() throws {
        let name = String(repeating: "a", count: 249)
        let started = Date()
        for pattern in ["(a+)+b", "(a|a)*c", "(a*)*b", "(.*a){20}b", "(a|aa)+$b"] {
            XCTAssertFalse(try TopicRegex(pattern).matches(name), pattern)
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 2, "five hostile patterns over a 249-character name")
    }

    /// A class of 20 000 separate scalars (a 64 KiB pattern) is sorted once, not once per scalar.
    func testAHugeClassCompilesQuickly() throws {
        let scalars = (0..<20_000).map { Character(Unicode.Scalar(0x10000 + 2 * $0)!) }
        let started = Date()
        let re = try TopicRegex("[" + String(scalars) + "]+")
        XCTAssertTrue(re.matches(String(scalars[7]) + String(scalars[19_999])))
        XCTAssertFalse(re.matches(String(Character(Unicode.Scalar(0x10001)!))))
        XCTAssertLessThan(Date().timeIntervalSince(started), 2)
    }

    /// A heartbeat with an invalid pattern gets INVALID_REGULAR_EXPRESSION (128), as Kafka answers,
    /// and creates nothing; a valid one subscribes the member to the topics it matches.
    func testHeartbeatRefusesAnInvalidPatternAndSubscribesByAValidOne() throws {
        let fixture = try CoordinatorFixture(dir: dir, topicPartitions: 2)
        defer { fixture.close() }
        func heartbeat(_ regex: String) throws -> ConsumerGroupHeartbeatResponse {
            try fixture.coordinator.consumerGroupHeartbeat(
                ConsumerGroupHeartbeatRequest(groupId: "rx", memberId: "", memberEpoch: 0, rebalanceTimeoutMs: 30_000,
                                              subscribedTopicRegex: regex, topicPartitions: []),
                version: 1, clientId: "c", clientHost: "h"
            ).wait()
        }
        let refused = try heartbeat("(a+")
        XCTAssertEqual(refused.errorCode, KafkaError.invalidRegularExpression.rawValue)
        let created = try fixture.coordinator.loop.submit { fixture.coordinator.modernGroups["rx"] != nil }.wait()
        XCTAssertFalse(created, "nothing was created for a refused heartbeat")
        let joined = try heartbeat("(a+)+b")
        XCTAssertEqual(joined.errorCode, 0)
        XCTAssertGreaterThan(joined.memberEpoch, 0)
    }
}
