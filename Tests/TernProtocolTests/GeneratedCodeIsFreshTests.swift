import Foundation
import TernProtocolGenerator
import XCTest

/// The committed generated code must be exactly what the generator makes from the schemas today.
final class GeneratedCodeIsFreshTests: XCTestCase {
    func testCommittedGeneratedCodeMatchesGenerator() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let schemas = root.deletingLastPathComponent().appendingPathComponent("shared/kafka-protocol/messages")
        // CI always has ../shared beside the checkout: a missing schema directory is a broken
        // setup, not a reason to pass.
        guard FileManager.default.fileExists(atPath: schemas.path) else {
            return XCTFail("Kafka's message schemas not found at \(schemas.path): check out shared/ beside the project")
        }
        let output = try ProtocolGenerator().generate(schemaDirectory: schemas)
        let checks = [
            ("Sources/TernProtocol/Generated", output.sources),
            ("Tests/TernProtocolTests/Generated", output.testSources),
            ("Sources/tern-fuzz/Generated", output.fuzzSources),
        ]
        for (dir, files) in checks {
            let onDisk = try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent(dir).path)
            XCTAssertEqual(Set(onDisk), Set(files.keys), "\(dir): files differ; run `make generate`")
            for (name, text) in files {
                let committed = try String(contentsOf: root.appendingPathComponent("\(dir)/\(name)"), encoding: .utf8)
                XCTAssertEqual(committed, text, "\(dir)/\(name) is stale; run `make generate`")
            }
        }
    }
}
