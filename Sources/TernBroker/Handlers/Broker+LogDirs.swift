import Foundation
import TernLog
import TernProtocol

#if canImport(Glibc)
    import Glibc
#endif

/// DescribeLogDirs, AlterReplicaLogDirs and DescribeProducers: what the broker stores where, and
/// which producers each partition remembers.
extension Broker {
    /// The one log directory, its partitions' sizes (v4+: the file system's total and free bytes).
    /// A null topic list means every topic.
    func describeLogDirs(_ request: DescribeLogDirsRequest, version: Int16) -> DescribeLogDirsResponse {
        var result = DescribeLogDirsResponse.DescribeLogDirsResult(errorCode: 0, logDir: Self.absolutePath(config.logDir))
        if topics.io.offlineReason != nil { result.errorCode = KafkaError.kafkaStorageError.rawValue }
        let wanted: [(Topic, [Int32])] = request.topics.map { asked in
            asked.compactMap { t in topics.topic(t.topic).map { ($0, t.partitions) } }
        } ?? topics.allTopics.map { t in (t, Array(0..<t.metadata.partitions)) }
        result.topics = wanted.map { topic, partitions in
            .init(name: topic.metadata.name, partitions: partitions.compactMap { p in
                topic.partition(p).map { .init(partitionIndex: p, partitionSize: $0.sizeInBytes, offsetLag: 0, isFutureKey: false) }
            })
        }
        var fs = statvfs()
        if statvfs(config.logDir, &fs) == 0 {
            result.totalBytes = Int64(fs.f_blocks) * Int64(fs.f_frsize)
            result.usableBytes = Int64(fs.f_bavail) * Int64(fs.f_frsize)
        }
        return DescribeLogDirsResponse(errorCode: 0, results: [result])
    }

    /// Moving a replica between log directories: Tern has one directory, so asking for it is
    /// answered NONE (the replica is already there) and any other path LOG_DIR_NOT_FOUND (57).
    func alterReplicaLogDirs(_ request: AlterReplicaLogDirsRequest, version: Int16) -> AlterReplicaLogDirsResponse {
        let home = Self.absolutePath(config.logDir)
        var results: [String: [AlterReplicaLogDirsResponse.AlterReplicaLogDirPartitionResult]] = [:]
        var order: [String] = []
        for dir in request.dirs {
            let here = Self.absolutePath(dir.path) == home
            for t in dir.topics {
                if results[t.name] == nil { order.append(t.name) }
                let topic = topics.topic(t.name)
                let clusterPartitions = cluster?.image.topics[t.name]?.partitions.count ?? 0
                results[t.name, default: []] += t.partitions.map { p in
                    // A partition of the cluster with no replica here is REPLICA_NOT_AVAILABLE, as
                    // Kafka answers it (its NOT_LEADER_OR_FOLLOWER, kept for compatibility).
                    let code: KafkaError =
                        !here ? .logDirNotFound
                        : topic?.partition(p) != nil ? .none
                        : p >= 0 && Int(p) < clusterPartitions ? .replicaNotAvailable : .unknownTopicOrPartition
                    return .init(partitionIndex: p, errorCode: code.rawValue)
                }
            }
        }
        return AlterReplicaLogDirsResponse(results: order.map { .init(topicName: $0, partitions: results[$0]!) })
    }

    func describeProducers(_ request: DescribeProducersRequest, version: Int16) -> DescribeProducersResponse {
        DescribeProducersResponse(topics: request.topics.map { t in
            let topic = topics.topic(t.name)
            return .init(name: t.name, partitions: t.partitionIndexes.map { p in
                guard let log = topic?.partition(p) else {
                    return .init(partitionIndex: p, errorCode: KafkaError.unknownTopicOrPartition.rawValue, errorMessage: nil)
                }
                return .init(partitionIndex: p, errorCode: 0, errorMessage: nil, activeProducers: log.activeProducers.map {
                    .init(producerId: $0.producerId, producerEpoch: Int32($0.epoch), lastSequence: $0.lastSequence,
                          lastTimestamp: $0.lastTimestamp, coordinatorEpoch: 0, currentTxnStartOffset: $0.currentTransactionStartOffset)
                })
            })
        })
    }

    static func absolutePath(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.path
    }
}
