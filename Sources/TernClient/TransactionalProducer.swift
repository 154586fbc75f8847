import Foundation
import NIOCore
import TernProtocol

/// A transactional producer (KIP-98) that runs one transaction at a time — AddPartitionsToTxn,
/// transactional batches of one record each (idempotent, retried under their sequence), EndTxn —
/// and reports what became of it exactly, for a checker:
///
/// - `.committed`: EndTxn(commit) succeeded; every record must become visible to read_committed.
/// - `.aborted`: the transaction was aborted (asked for, or after a write failed) and the abort
///   was confirmed — by EndTxn(abort), or by a new InitProducerId, which aborts whatever the old
///   epoch left open. None of it may ever be visible.
/// - `.unknown`: neither could be confirmed (the coordinator stayed unreachable).
///
/// An actor: one transaction at a time.
public actor TransactionalProducer {
    public enum Outcome: Sendable, Equatable {
        case committed
        case aborted(String)
        case unknown(String)
    }

    private let client: KafkaClient
    private let transactionalId: String
    private let transactionTimeoutMs: Int32
    private let requestTimeout: Duration
    private let operationTimeout: Duration
    private var producerId: Int64 = -1
    private var epoch: Int16 = -1
    private var sequences: [Int32: Int32] = [:]

    public init(
        client: KafkaClient, transactionalId: String, transactionTimeoutMs: Int32 = 10_000, requestTimeout: Duration = .seconds(5),
        operationTimeout: Duration = .seconds(20)
    ) {
        self.client = client
        self.transactionalId = transactionalId
        self.transactionTimeoutMs = transactionTimeoutMs
        self.requestTimeout = requestTimeout
        self.operationTimeout = operationTimeout
    }

    /// Runs one transaction writing `records` to `topic` (each to its partition), then commits it —
    /// or aborts it when `commit` is false. `beforeEnd` is called just before EndTxn is sent.
    public func run(topic: String, records: [(partition: Int32, value: ByteBuffer)], commit: Bool, beforeEnd: @Sendable () -> Void = {}) async
        -> Outcome
    {
        if producerId < 0 {
            do { try await initialize() } catch { return .aborted("no producer id: \(error)") }  // nothing written yet
        }
        var failure: String?
        do {
            try await addPartitions(topic: topic, Array(Set(records.map(\.partition))).sorted())
            for r in records {
                if let error = await produce(topic: topic, partition: r.partition, value: r.value) {
                    failure = error
                    break
                }
            }
        } catch {
            failure = "\(error)"
        }
        beforeEnd()
        let committing = commit && failure == nil
        do {
            try await end(commit: committing)
            return committing ? .committed : .aborted(failure ?? "asked to abort")
        } catch {
            // The end is unknown. A new epoch aborts whatever the old one left open — unless the
            // commit had already gone through, which cannot be told apart: unknown then.
            let endError = "\(error)"
            producerId = -1
            if committing { return .unknown("EndTxn(commit): \(endError)") }
            do {
                try await initialize()
                return .aborted(failure ?? "asked to abort")
            } catch {
                return .unknown("EndTxn(abort): \(endError); InitProducerId: \(error)")
            }
        }
    }

    // MARK: steps

    private func initialize() async throws {
        let response = try await coordinated("InitProducerId") { connection in
            let version = try connection.version(.initProducerId, max: 4)
            return try await connection.send(
                InitProducerIdRequest(transactionalId: self.transactionalId, transactionTimeoutMs: self.transactionTimeoutMs, producerId: -1, producerEpoch: -1),
                version: version, as: InitProducerIdResponse.self, timeout: self.requestTimeout)
        } code: { $0.errorCode }
        producerId = response.producerId
        epoch = response.producerEpoch
        sequences = [:]
    }

    private func addPartitions(topic: String, _ partitions: [Int32]) async throws {
        let request = AddPartitionsToTxnRequest(
            v3AndBelowTransactionalId: transactionalId, v3AndBelowProducerId: producerId, v3AndBelowProducerEpoch: epoch,
            v3AndBelowTopics: [.init(name: topic, partitions: partitions)])
        _ = try await coordinated("AddPartitionsToTxn") { connection in
            let version = try connection.version(.addPartitionsToTxn, max: 3)
            return try await connection.send(request, version: version, as: AddPartitionsToTxnResponse.self, timeout: self.requestTimeout)
        } code: { response in
            response.resultsByTopicV3AndBelow.flatMap(\.resultsByPartition).map(\.partitionErrorCode).first { $0 != 0 } ?? 0
        }
    }

    private func end(commit: Bool) async throws {
        let request = EndTxnRequest(transactionalId: transactionalId, producerId: producerId, producerEpoch: epoch, committed: commit)
        _ = try await coordinated("EndTxn") { connection in
            let version = try connection.version(.endTxn, max: 3)
            return try await connection.send(request, version: version, as: EndTxnResponse.self, timeout: self.requestTimeout)
        } code: { $0.errorCode }
    }

    /// A transactional batch of one record, retried under its sequence; nil when written, else why not.
    private func produce(topic: String, partition: Int32, value: ByteBuffer) async -> String? {
        let sequence = sequences[partition, default: 0]
        var builder = RecordBatchBuilder(capacity: value.readableBytes + 64)
        builder.append(timestamp: Int64(Date().timeIntervalSince1970 * 1000), key: nil, value: value)
        guard let batch = try? builder.build(producerId: producerId, producerEpoch: epoch, baseSequence: sequence, transactional: true) else {
            return "could not build the batch"
        }
        let request = ProduceRequest(transactionalId: transactionalId, acks: -1, timeoutMs: Int32(requestTimeout / .milliseconds(1)), topicData: [
            .init(name: topic, partitionData: [.init(index: partition, records: .bytes(batch))])
        ])
        let deadline = ContinuousClock.now + operationTimeout
        var lastError = "not sent"
        while ContinuousClock.now < deadline {
            do {
                let connection = try await client.leaderConnection(topic: topic, partition: partition)
                let version = try connection.version(.produce, max: 8)
                let response = try await connection.send(request, version: version, as: ProduceResponse.self, timeout: requestTimeout)
                let code = response.responses.first?.partitionResponses.first?.errorCode ?? -1
                if code == 0 || code == IdempotentProducer.duplicateSequence {
                    sequences[partition] = sequence &+ 1
                    return nil
                }
                guard IdempotentProducer.retriable.contains(code) else { return KafkaErrorNames.name(code) }
                lastError = KafkaErrorNames.name(code)
            } catch {
                lastError = "\(error)"
            }
            _ = try? await client.refreshMetadata(topics: [topic])
            try? await Task.sleep(for: .milliseconds(100))
        }
        return "delivery timeout: \(lastError)"
    }

    /// Sends a request to the transaction coordinator until it answers without a retriable error
    /// (coordinator moving or loading, concurrent transactions) or `operationTimeout` passes.
    private func coordinated<R: Sendable>(
        _ what: String, _ send: @Sendable (BrokerConnection) async throws -> R, code: (R) -> Int16
    ) async throws -> R {
        let deadline = ContinuousClock.now + operationTimeout
        var last: Error = ClientError.timedOut(what)
        while ContinuousClock.now < deadline {
            do {
                let connection = try await client.coordinator(transactionalId: transactionalId)
                let response = try await send(connection)
                let error = code(response)
                if error == 0 { return response }
                last = ClientError.kafka(code: error, context: what)
                guard Self.retriable.contains(error) else { throw last }
            } catch let error as ClientError {
                if case .kafka(let c, _) = error, !Self.retriable.contains(c) { throw error }
                last = error
            } catch {
                last = error
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
        throw last
    }

    /// Coordinator moving or loading, a transaction still ending, a request that timed out.
    static let retriable: Set<Int16> = [7, 13, 14, 15, 16, 51]
}
