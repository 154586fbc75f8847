import Foundation
import Logging
import TernLog
import XCTest

@testable import TernGroups

/// A group coordinator over `offsetsPartitions` fresh `__consumer_offsets` logs in `dir`, for
/// topics of `topicPartitions` partitions; `close` stops it and closes the logs.
struct CoordinatorFixture {
    let logs: [PartitionLog]
    let appender: LogAppender
    let coordinator: GroupCoordinator

    init(dir: String, offsetsPartitions: Int = 1, topicPartitions: Int32 = 3, config: GroupConfig = GroupConfig()) throws {
        let logger = Logger(label: "tern.test")
        let io = DiskIO(logger: logger)
        logs = try (0..<offsetsPartitions).map {
            try PartitionLog(directory: dir + "/__consumer_offsets-\($0)", config: LogConfig(), io: io, logger: logger)
        }
        appender = LogAppender(io: io, logger: logger)
        let catalog = TopicCatalog(partitions: { _ in topicPartitions }, id: { _ in .zero }, name: { _ in nil }, names: { [] })
        coordinator = try GroupCoordinator(config: config, offsetsLogs: logs, appender: appender, logger: logger, topics: catalog)
    }

    var log: PartitionLog { logs[0] }

    func close() {
        coordinator.shutdown()
        appender.shutdown()
        logs.forEach { $0.close() }
    }
}

/// A test case with a fresh directory (`dir`) for its coordinator's logs, removed afterwards.
class CoordinatorTestCase: XCTestCase {
    var dir = ""

    override func setUp() {
        dir = NSTemporaryDirectory() + "tern-\(type(of: self))-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }
}
