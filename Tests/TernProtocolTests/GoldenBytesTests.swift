import NIOCore
import XCTest

@testable import TernProtocol

/// Requests captured on the wire from real clients (through a logging TCP proxy in front of Tern).
final class GoldenBytesTests: XCTestCase {
    private func bytes(_ hex: String) -> ByteBuffer {
        var out = ByteBuffer()
        var i = hex.startIndex
        while i < hex.endIndex {
            let j = hex.index(i, offsetBy: 2)
            out.writeInteger(UInt8(hex[i..<j], radix: 16)!)
            i = j
        }
        return out
    }

    /// kcat 1.7.1 / librdkafka 2.0.2: ApiVersions v3, request header v2, flexible body.
    func testLibrdkafka202ApiVersionsV3() throws {
        var b = bytes("0012000300000001000772646b61666b6100" + "0b6c696272646b61666b6106322e302e3200")
        let header = try RequestHeader(from: &b, version: 2)
        XCTAssertEqual(header.requestApiKey, 18)
        XCTAssertEqual(header.requestApiVersion, 3)
        XCTAssertEqual(header.correlationId, 1)
        XCTAssertEqual(header.clientId, "rdkafka")
        let body = try ApiVersionsRequest(from: &b, version: 3)
        XCTAssertEqual(body, ApiVersionsRequest(clientSoftwareName: "librdkafka", clientSoftwareVersion: "2.0.2"))
        XCTAssertEqual(b.readableBytes, 0)
        // And we encode it to the very same bytes.
        var again = ByteBuffer()
        header.encode(to: &again, version: 2)
        body.encode(to: &again, version: 3)
        XCTAssertEqual(again, bytes("0012000300000001000772646b61666b6100" + "0b6c696272646b61666b6106322e302e3200"))
    }

    /// kcat -L: Metadata v4 for all topics (null array) with auto-creation allowed.
    func testLibrdkafka202MetadataV4AllTopics() throws {
        var b = bytes("0003000400000003000772646b61666b61" + "ffffffff01")
        let header = try RequestHeader(from: &b, version: 1)
        XCTAssertEqual(header.correlationId, 3)
        let body = try MetadataRequest(from: &b, version: 4)
        XCTAssertNil(body.topics)
        XCTAssertTrue(body.allowAutoTopicCreation)
        XCTAssertEqual(b.readableBytes, 0)
    }

    /// confluent-kafka 2.16 (librdkafka 2.16) list_topics: Metadata v12 for all topics. It carries
    /// three bytes past the end of the schema, which Kafka tolerates and so must we.
    func testLibrdkafka216MetadataV12CarriesTrailingBytes() throws {
        var b = bytes("0003000c00000003000772646b61666b61" + "0000000000010000")
        let header = try RequestHeader(from: &b, version: 2)
        XCTAssertEqual(header.requestApiVersion, 12)
        let body = try MetadataRequest(from: &b, version: 12)
        XCTAssertNil(body.topics)
        XCTAssertFalse(body.allowAutoTopicCreation)
        XCTAssertEqual(b.readableBytes, 3)
    }
}
