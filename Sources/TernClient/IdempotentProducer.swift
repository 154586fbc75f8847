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
        return await deliver(request, tp: tp, sequence: sequence, deadline: deadline, attempts: 0)
    }

    /// Sends `records` to one partition as consecutive single-record batches written back to back
    /// on one connection before any answer is read — as librdkafka keeps up to five batches per
    /// partition in flight — so a broker sees several of one producer's batches in one go (a
    /// failed write then fails those after it too). Each settles with the same exactness as
    /// `send`: answered in order; from the first that was not written, each is retried alone
    /// under its own sequence, and once the session is lost the rest are `.unknown` (or
    /// `.failed` when the broker said they were out of order: not written).
    public func sendPipelined(
        topic: String, partition: Int32, records: [(key: ByteBuffer?, value: ByteBuffer, timestamp: Int64)]
    ) async -> [Outcome] {
        guard records.count > 1 else {
            return await sendEach(topic: topic, partition: partition, records: records)
        }
        let deadline = ContinuousClock.now + deliveryTimeout
        while producerId < 0 {
            do {
                try await initProducerId()
            } catch {
                if ContinuousClock.now >= deadline { return records.map { _ in .failed("no producer id: \(error)") } }
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
        let tp = TopicPartition(topic: topic, partition: partition)
        let first = sequences[tp, default: 0]
        var requests: [ProduceRequest] = []
        for (i, r) in records.enumerated() {
            var builder = RecordBatchBuilder(capacity: r.value.readableBytes + 64)
            builder.append(timestamp: r.timestamp, key: r.key, value: r.value)
            guard let batch = try? builder.build(producerId: producerId, producerEpoch: epoch, baseSequence: first &+ Int32(i)) else {
                return records.map { _ in .failed("could not build the batch") }
            }
            requests.append(ProduceRequest(acks: acks, timeoutMs: Int32(requestTimeout / .milliseconds(1)), topicData: [
                .init(name: topic, partitionData: [.init(index: partition, records: .bytes(batch))])
            ]))
        }
        // The first round: every batch written before any answer is awaited.
        var answers: [Result<ProduceResponse.PartitionProduceResponse, Error>] = []
        do {
            let connection = try await client.leaderConnection(topic: topic, partition: partition)
            let version = try connection.version(.produce, max: 8)
            guard version >= 3 else { return records.map { _ in .failed("the broker does not take idempotent batches") } }
            let pending = requests.map { connection.start($0, version: version, as: ProduceResponse.self, timeout: requestTimeout) }
            for p in pending {
                do {
                    let response = try await p.response()
                    guard let result = response.responses.first?.partitionResponses.first else { throw ClientError.invalidResponse("Produce without a result") }
                    answers.append(.success(result))
                } catch {
                    answers.append(.failure(error))
                }
            }
        } catch {
            // Nothing was sent: each goes alone, as `send` would.
            return await sendEach(topic: topic, partition: partition, records: records)
        }
        var outcomes: [Outcome] = []
        for (i, answer) in answers.enumerated() {
            let sequence = first &+ Int32(i)
            if producerId < 0 || sequences[tp, default: 0] != sequence {
                // The session was lost settling an earlier one: this batch cannot be sent again
                // under another id. Out of order means the broker did not write it.
                if case .success(let r) = answer, r.errorCode == Self.outOfOrderSequence {
                    outcomes.append(.failed(KafkaErrorNames.name(r.errorCode)))
                } else {
                    outcomes.append(.unknown("pipelined after a batch whose outcome ended the session"))
                }
                continue
            }
            if case .success(let r) = answer, r.errorCode == 0 || r.errorCode == Self.duplicateSequence {
                sequences[tp] = sequence &+ 1
                outcomes.append(.written(offset: r.errorCode == 0 ? r.baseOffset : -1))
                continue
            }
            outcomes.append(await deliver(requests[i], tp: tp, sequence: sequence, deadline: deadline, attempts: 1))
        }
        return outcomes
    }

    private func sendEach(topic: String, partition: Int32, records: [(key: ByteBuffer?, value: ByteBuffer, timestamp: Int64)]) async -> [Outcome] {
        var outcomes: [Outcome] = []
        for r in records { outcomes.append(await send(topic: topic, partition: partition, key: r.key, value: r.value, timestamp: r.timestamp)) }
        return outcomes
    }

    /// Sends one batch (already sent `attempts` times) until it is settled, as `send` does.
    private func deliver(_ request: ProduceRequest, tp: TopicPartition, sequence: Int32, deadline: ContinuousClock.Instant, attempts already: Int) async -> Outcome {
        var attempts = already
        var lastError = "not sent"
        while ContinuousClock.now < deadline {
            do {
                let connection = try await client.leaderConnection(topic: tp.topic, partition: tp.partition)
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
                    let name = KafkaErrorNames.name(result.errorCode)
                    resetSession()
                    return attempts > 1 ? .unknown(name) : .failed(name)
                default:
                    return .failed(KafkaErrorNames.name(result.errorCode))
                }
            } catch {
                lastError = "\(error)"
            }
            _ = try? await client.refreshMetadata(topics: [tp.topic])
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

