import Logging
import NIOConcurrencyHelpers
import NIOCore
import XCTest

@testable import TernServer

/// A client refused or cut off in a loop costs one log line a second, not one per attempt.
final class ConnectionWarningsTests: XCTestCase {
    /// Keeps every line logged through it.
    struct Capture: LogHandler {
        let lines: NIOLockedValueBox<[(Logger.Message, Logger.Metadata?)]>
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            lines.withLockedValue { $0.append((event.message, event.metadata)) }
        }
    }

    func testAFloodOfRefusalsIsOneLineASecondCountingTheRest() {
        let lines = NIOLockedValueBox<[(Logger.Message, Logger.Metadata?)]>([])
        let warnings = ConnectionWarnings(logger: Logger(label: "test") { _ in Capture(lines: lines) })
        let start = NIODeadline.now()
        for i in 0..<1000 {
            warnings.warn(.refused, peer: nil, reason: "max.connections", now: start + .microseconds(Int64(i)))
        }
        warnings.warn(.closed, peer: nil, reason: "bad frame", now: start)
        XCTAssertEqual(lines.withLockedValue { $0.map(\.0.description) }, ["refusing connection", "closing connection"],
                       "each kind has its own window")
        warnings.warn(.refused, peer: nil, reason: "max.connections", now: start + .seconds(1))
        let last = lines.withLockedValue { $0.last! }
        XCTAssertEqual(last.0.description, "refusing connection")
        XCTAssertEqual(last.1?["suppressed"]?.description, "999")
    }
}
