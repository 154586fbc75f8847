import NIOCore
import XCTest

@testable import TernProtocol

final class GeneratedRoundTripTests: XCTestCase {
    /// Every generated message, at every version its schema defines: encode a sample whose fields
    /// all differ from their defaults, decode it back, expect the same value and no bytes left over.
    func testEveryMessageAtEveryVersionRoundTrips() throws {
        var checked = 0
        for type in allSampledMessages {
            for version in type.validVersions {
                try roundTrip(type, version: version)
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 600)
    }

    private func roundTrip<M: SampledMessage>(_ type: M.Type, version: Int16) throws {
        let sample = M.sample(version: version)
        var buffer = ByteBuffer()
        sample.encode(to: &buffer, version: version)
        let encoded = buffer
        let decoded = try M(from: &buffer, version: version)
        XCTAssertEqual(decoded, sample, "\(M.self) v\(version)")
        XCTAssertEqual(buffer.readableBytes, 0, "\(M.self) v\(version) left bytes unread")
        // Encoding the decoded value gives the same bytes.
        var again = ByteBuffer()
        decoded.encode(to: &again, version: version)
        XCTAssertEqual(again, encoded, "\(M.self) v\(version) re-encoding differs")
    }

    /// Truncating a valid encoding anywhere must throw, never crash or read past the end.
    func testTruncatedMessagesThrow() throws {
        for version in ProduceRequest.validVersions {
            var full = ByteBuffer()
            ProduceRequest.sample(version: version).encode(to: &full, version: version)
            for cut in 0..<full.readableBytes {
                var partial = full.getSlice(at: full.readerIndex, length: cut)!
                XCTAssertThrowsError(try ProduceRequest(from: &partial, version: version), "cut at \(cut)")
            }
        }
    }

    func testUnknownTaggedFieldsAreSkipped() throws {
        // ApiVersionsRequest v3: client software name + version, then a tag buffer holding tag 99.
        var b = ByteBuffer()
        b.writeKafkaString("tern", compact: true)
        b.writeKafkaString("1.0", compact: true)
        b.writeUnsignedVarint(1)
        b.writeUnsignedVarint(99)
        b.writeUnsignedVarint(3)
        b.writeBytes([1, 2, 3])
        let req = try ApiVersionsRequest(from: &b, version: 3)
        XCTAssertEqual(req.clientSoftwareName, "tern")
        XCTAssertEqual(req.clientSoftwareVersion, "1.0")
        XCTAssertEqual(b.readableBytes, 0)
    }

    func testTaggedFieldIsWrittenOnlyWhenNotDefault() throws {
        var plain = ByteBuffer()
        ApiVersionsResponse().encode(to: &plain, version: 3)
        var tagged = ByteBuffer()
        ApiVersionsResponse(zkMigrationReady: true).encode(to: &tagged, version: 3)
        XCTAssertGreaterThan(tagged.readableBytes, plain.readableBytes)
        XCTAssertEqual(try ApiVersionsResponse(from: &tagged, version: 3).zkMigrationReady, true)
    }
}
