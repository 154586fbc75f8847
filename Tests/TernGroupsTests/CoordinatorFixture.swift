import Foundation
import Logging
import TernLog

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
