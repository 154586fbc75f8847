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

    /// The coordinator's side: the marker for a partition led by another broker, sent to that
    /// broker until it is written — a transaction is not complete before every partition has its
    /// marker, and Kafka's coordinator retries the same way. The partition's leader is looked up
    /// again before each attempt; a partition that no longer exists needs no marker; an epoch the
    /// partition has already seen bumped means a later marker superseded this one.
    static func sendMarker(
        channels: BrokerChannels, cluster: BrokerCluster, topic: String, partition: Int32, producerId: Int64, epoch: Int16, commit: Bool,
        on loop: EventLoop
    ) -> EventLoopFuture<Void> {
        let promise = loop.makePromise(of: Void.self)
        promise.completeWithTask {
            let request = WriteTxnMarkersRequest(markers: [
                .init(producerId: producerId, producerEpoch: epoch, transactionResult: commit, topics: [.init(name: topic, partitionIndexes: [partition])])
            ])
            var pause = Duration.milliseconds(50)
            var lastError = KafkaError.none
            // Bounded so no task outlives its use by much: past it the transaction stays prepared
            // and is finished when its coordinator next loads (a restart or a leadership move).
            let deadline = ContinuousClock.now + .seconds(600)
            while ContinuousClock.now < deadline {
                let image = cluster.image
                guard let record = image.topics[topic], partition >= 0, Int(partition) < record.partitions.count else { return }
                let leader = record.partitions[Int(partition)].leader
                if leader != LeaderElection.noLeader {
                    do {
                        let response = try await channels.send(request, to: leader, api: .writeTxnMarkers, maxVersion: 1, as: WriteTxnMarkersResponse.self)
                        let code = response.markers.first?.topics.first?.partitions.first?.errorCode ?? KafkaError.unknownServerError.rawValue
                        switch KafkaError(rawValue: code) ?? .unknownServerError {
                        case .none: return
                        case .unknownTopicOrPartition: return
                        case .invalidProducerEpoch:
                            cluster.logger.warning("a transaction marker was refused as stale", metadata: ["partition": "\(topic)-\(partition)", "producerId": "\(producerId)"])
                            return
                        case let error: lastError = error
                        }
                    } catch {
                        lastError = .notLeaderOrFollower
                    }
                }
                if pause >= .seconds(1) {
                    cluster.logger.warning("transaction marker not written yet", metadata: ["partition": "\(topic)-\(partition)", "error": "\(lastError)"])
                }
                try await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(2))
            }
            throw KafkaError.coordinatorNotAvailable
        }
        return promise.futureResult
    }
}
