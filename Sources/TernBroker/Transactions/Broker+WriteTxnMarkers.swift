import NIOCore
import TernCluster
import TernLog
import TernProtocol

extension Broker {
    /// WriteTxnMarkers (API 27), from a transaction coordinator on another broker: each marker is
    /// appended to each named partition this broker leads and answered once it is on the ISR.
    /// A partition led elsewhere answers NOT_LEADER_OR_FOLLOWER (the coordinator asks its leader);
    /// an epoch older than the producer's in the partition, INVALID_PRODUCER_EPOCH.
    func writeTxnMarkers(_ request: WriteTxnMarkersRequest, version: Int16, on loop: EventLoop) -> EventLoopFuture<WriteTxnMarkersResponse> {
        let view = self.view
        let markers = request.markers.map { marker -> EventLoopFuture<WriteTxnMarkersResponse.WritableTxnMarkerResult> in
            let topicResults = marker.topics.map { t -> EventLoopFuture<WriteTxnMarkersResponse.WritableTxnMarkerTopicResult> in
                let partitions = t.partitionIndexes.map { p -> EventLoopFuture<WriteTxnMarkersResponse.WritableTxnMarkerPartitionResult> in
                    let written: EventLoopFuture<KafkaError>
                    if let refusal = leadershipRefusal(t.name, p, in: view) {
                        written = loop.makeSucceededFuture(refusal)
                    } else if let log = topics.topic(t.name)?.partition(p) {
                        written = TransactionMarker.append(
                            producerId: marker.producerId, epoch: marker.producerEpoch, commit: marker.transactionResult,
                            coordinatorEpoch: marker.coordinatorEpoch, to: log, topic: t.name, partition: p, appender: appender,
                            groups: groups, replicated: replicatedWrite, on: loop)
                    } else {
                        written = loop.makeSucceededFuture(.unknownTopicOrPartition)
                    }
                    return written.map { .init(partitionIndex: p, errorCode: $0.rawValue) }
                }
                return EventLoopFuture.whenAllSucceed(partitions, on: loop).map { .init(name: t.name, partitions: $0) }
            }
            return EventLoopFuture.whenAllSucceed(topicResults, on: loop).map { .init(producerId: marker.producerId, topics: $0) }
        }
        return EventLoopFuture.whenAllSucceed(markers, on: loop).map { WriteTxnMarkersResponse(markers: $0) }
    }

    /// The coordinator's side: one attempt at the marker for a partition led by another broker,
    /// completing once it is written there or failing with the partition's error (the coordinator
    /// retries — `TransactionCoordinator.attemptMarker`). The leader is looked up in the newest
    /// metadata each time; a partition that no longer exists needs no marker.
    static func sendMarker(
        channels: BrokerChannels, cluster: BrokerCluster, topic: String, partition: Int32, producerId: Int64, epoch: Int16,
        coordinatorEpoch: Int32, commit: Bool, on loop: EventLoop
    ) -> EventLoopFuture<Void> {
        let promise = loop.makePromise(of: Void.self)
        promise.completeWithTask {
            let image = cluster.image
            guard let record = image.topics[topic], partition >= 0, Int(partition) < record.partitions.count else { return }
            let leader = record.partitions[Int(partition)].leader
            guard leader != LeaderElection.noLeader else { throw KafkaError.leaderNotAvailable }
            let request = WriteTxnMarkersRequest(markers: [
                .init(producerId: producerId, producerEpoch: epoch, transactionResult: commit,
                      topics: [.init(name: topic, partitionIndexes: [partition])], coordinatorEpoch: coordinatorEpoch)
            ])
            let response = try await channels.send(request, to: leader, api: .writeTxnMarkers, maxVersion: 1, as: WriteTxnMarkersResponse.self)
            let code = response.markers.first?.topics.first?.partitions.first?.errorCode ?? KafkaError.unknownServerError.rawValue
            let error = KafkaError(rawValue: code) ?? .unknownServerError
            if error != .none { throw error }
        }
        return promise.futureResult
    }
}
