import Foundation
import NIOCore
import TernProtocol

/// A producer with Kafka's idempotence (a producer id and epoch from InitProducerId, a sequence
/// number per partition) that sends one record at a time and retries it under the same sequence
/// until it is acknowledged or its delivery timeout passes — so each outcome is exact, which is
/// what a correctness checker needs more than throughput:
///
/// - `.written(offset)`: acknowledged; the record must be in the partition, once, at `offset`.
/// - `.failed`: the broker refused it in a way that means it was not written.
/// - `.unknown`: it may or may not have been written (the delivery timeout passed while retrying,
///   or the producer's state was lost). The next send starts a new producer session (a new id), and
///   a record is never sent again under another id: a second copy in the log is the broker's fault.
///
/// An actor: one send at a time per producer (the sequence of the next record depends on the
/// outcome of the last).
public actor IdempotentProducer {
    public enum Outcome: Sendable, Equatable {
        case written(offset: Int64)
        case failed(String)
        case unknown(String)
    }

    private let client: KafkaClient
    private let acks: Int16
    private let deliveryTimeout: Duration
    private let requestTimeout: Duration
    private var producerId: Int64 = -1
    private var epoch: Int16 = -1
    private var sequences: [TopicPartition: Int32] = [:]

    public init(client: KafkaClient, acks: Int16 = -1, deliveryTimeout: Duration = .seconds(30), requestTimeout: Duration = .seconds(5)) {
        self.client = client
        self.acks = acks
        self.deliveryTimeout = deliveryTimeout
        self.requestTimeout = requestTimeout
    }

    /// The producer id of the current session (-1 before the first send).
    public var currentProducerId: Int64 { producerId }

    public func send(topic: String, partition: Int32, key: ByteBuffer? = nil, value: ByteBuffer, timestamp: Int64) async -> Outcome {
        let deadline = ContinuousClock.now + deliveryTimeout
        while producerId < 0 {
            do {
                try await initProducerId()
            } catch {
                // Nothing of this record was sent yet.
                if ContinuousClock.now >= deadline { return .failed("no producer id: \(error)") }
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
        let tp = TopicPartition(topic: topic, partition: partition)
        let sequence = sequences[tp, default: 0]
        var builder = RecordBatchBuilder(capacity: value.readableBytes + 64)
        builder.append(timestamp: timestamp, key: key, value: value)
        let batch: ByteBuffer
        do {
            batch = try builder.build(producerId: producerId, producerEpoch: epoch, baseSequence: sequence)
        } catch {
            return .failed("could not build the batch: \(error)")
        }
        let request = ProduceRequest(acks: acks, timeoutMs: Int32(requestTimeout / .milliseconds(1)), topicData: [
            .init(name: topic, partitionData: [.init(index: partition, records: .bytes(batch))])
        ])
        var attempts = 0
        var lastError = "not sent"
        while ContinuousClock.now < deadline {
            do {
                let connection = try await client.leaderConnection(topic: topic, partition: partition)
                let version = try connection.version(.produce, max: 8)
                guard version >= 3 else { return .failed("the broker does not take idempotent batches (Produce v\(version))") }
                attempts += 1
                let response = try await connection.send(request, version: version, as: ProduceResponse.self, timeout: requestTimeout)
                guard let result = response.responses.first?.partitionResponses.first else { throw ClientError.invalidResponse("Produce without a result") }
                switch result.errorCode {
                case 0, Self.duplicateSequence:
                    sequences[tp] = sequence &+ 1
                    return .written(offset: result.errorCode == 0 ? result.baseOffset : -1)
                case let code where Self.retriable.contains(code):
                    lastError = KafkaErrorNames.name(code)
                case Self.outOfOrderSequence, Self.unknownProducerId, Self.invalidProducerEpoch:
                    // The broker no longer knows this session's sequence: start a new one. The record
                    // is not in the log unless an earlier attempt of it was written and later lost.
                    let name = KafkaErrorNames.name(result.errorCode)
                    resetSession()
                    return attempts > 1 ? .unknown(name) : .failed(name)
                default:
                    return .failed(KafkaErrorNames.name(result.errorCode))
                }
            } catch {
                lastError = "\(error)"
            }
            _ = try? await client.refreshMetadata(topics: [topic])
            try? await Task.sleep(for: .milliseconds(100))
        }
        // Whether any attempt was written is unknown, so is the partition's next sequence.
        resetSession()
        return attempts > 0 ? .unknown("delivery timeout: \(lastError)") : .failed("delivery timeout before sending: \(lastError)")
    }

    private func resetSession() {
        producerId = -1
        epoch = -1
        sequences = [:]
    }

    private func initProducerId() async throws {
        let connection = try await client.anyConnection()
        let version = try connection.version(.initProducerId, max: 4)
        let response = try await connection.send(
            InitProducerIdRequest(transactionalId: nil, transactionTimeoutMs: 60_000, producerId: -1, producerEpoch: -1),
            version: version, as: InitProducerIdResponse.self, timeout: requestTimeout)
        guard response.errorCode == 0 else { throw ClientError.kafka(code: response.errorCode, context: "InitProducerId") }
        producerId = response.producerId
        epoch = response.producerEpoch
        sequences = [:]
    }

    static let duplicateSequence: Int16 = 46
    static let outOfOrderSequence: Int16 = 45
    static let unknownProducerId: Int16 = 59
    static let invalidProducerEpoch: Int16 = 47
    /// Errors after which the same batch is sent again: leadership moving, too few in-sync
    /// replicas, timeouts, a storage error on one broker.
    static let retriable: Set<Int16> = [3, 5, 6, 7, 13, 14, 15, 19, 20, 56]
}
