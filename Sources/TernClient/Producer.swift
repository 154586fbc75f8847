import Dispatch
import NIOConcurrencyHelpers
import NIOCore
import TernProtocol

/// Where a record landed.
public struct RecordMetadata: Sendable, Equatable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
}

/// An asynchronous, batching producer.
///
/// `send` only appends to a per-partition batch under a lock and returns; a sender task seals
/// batches when they reach `batchSize` or have waited `lingerMs`, groups them per leader and sends
/// Produce requests, at most `maxInFlight` per broker. Keyed records go to partitions by murmur2
/// (as the Java client does); unkeyed records stick to one partition until its batch is sealed.
public final class Producer: Sendable {
    public struct Config: Sendable {
        public var acks: Int16 = -1
        public var lingerMs: Int = 5
        public var batchSize: Int = 64 << 10
        public var compression: CompressionCodec = .none
        public var maxInFlight: Int = 5
        public var timeoutMs: Int32 = 30_000
        /// Largest Produce request; ready batches beyond it go in further requests (brokers refuse
        /// frames above `socket.request.max.bytes`, 100 MiB by default).
        public var maxRequestBytes: Int = 16 << 20
        public init() {}
    }

    public typealias Completion = @Sendable (Result<RecordMetadata, Error>) -> Void
    /// Called once per acknowledged (or failed) batch with each record's send time (DispatchTime
    /// uptime nanoseconds) — enough for a benchmark to measure per-record latency cheaply.
    public typealias BatchObserver = @Sendable (_ sendTimes: [UInt64], _ error: Error?) -> Void

    struct PendingBatch: Sendable {
        var topic: String
        var partition: Int32
        var builder = RecordBatchBuilder()
        var createdNanos: UInt64 = DispatchTime.now().uptimeNanoseconds
        var sendTimes: [UInt64] = []
        var completions: [(index: Int, completion: Completion)] = []
    }

    struct State: Sendable {
        var open: [TopicPartition: PendingBatch] = [:]
        var ready: [PendingBatch] = []
        var sticky: [String: Int32] = [:]
        var inFlight = 0
        var closed = false
        var outstanding = 0  // records queued and not yet acknowledged
    }

    let client: KafkaClient
    let config: Config
    private let state = NIOLockedValueBox(State())
    private let wake: AsyncStream<Void>.Continuation
    private let sender: Task<Void, Never>
    private let observer: BatchObserver?

    public init(client: KafkaClient, config: Config = Config(), observer: BatchObserver? = nil) {
        self.client = client
        self.config = config
        self.observer = observer
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        self.wake = continuation
        let box = state
        let linger = max(config.lingerMs, 1)
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(linger))
                continuation.yield()
            }
        }
        self.sender = Task { [client, config, observer] in
            await Producer.runSender(stream: stream, state: box, client: client, config: config, observer: observer)
            ticker.cancel()
        }
    }

    /// Makes sure the topic's partitions are known, so `send` never waits.
    public func prepare(topic: String) async throws {
        _ = try await client.topic(topic)
    }

    /// Queues one record. Throws only when the topic is not known yet (call `prepare`) or the
    /// producer is closed.
    public func send(topic: String, partition: Int32? = nil, key: ByteBuffer? = nil, value: ByteBuffer?,
                     headers: [RecordHeader] = [], timestamp: Int64? = nil, completion: Completion? = nil) throws {
        guard let info = client.cachedTopic(topic) else { throw ClientError.unknownTopic(topic) }
        let count = Int32(info.partitions.count)
        let now = DispatchTime.now().uptimeNanoseconds
        let ts = timestamp ?? Int64(Double(DispatchTime.now().uptimeNanoseconds) / 1e6 + Producer.wallOffsetMs)
        var sealed = false
        try state.withLockedValue { s in
            guard !s.closed else { throw ClientError.connectionClosed }
            let p: Int32
            if let partition {
                p = partition
            } else if let key {
                p = Murmur2.partition(for: key, partitions: count)
            } else {
                p = s.sticky[topic] ?? Int32.random(in: 0..<count)
                s.sticky[topic] = p
            }
            let tp = TopicPartition(topic: topic, partition: p)
            // Mutate the open batch in place: copying it out would copy its buffer on every record.
            let full: Bool = {
                if s.open[tp] == nil { s.open[tp] = PendingBatch(topic: topic, partition: p) }
                s.open[tp]!.builder.append(timestamp: ts, key: key, value: value, headers: headers)
                s.open[tp]!.sendTimes.append(now)
                if let completion { s.open[tp]!.completions.append((s.open[tp]!.builder.count - 1, completion)) }
                return s.open[tp]!.builder.byteCount >= config.batchSize
            }()
            s.outstanding += 1
            if full {
                s.ready.append(s.open.removeValue(forKey: tp)!)
                if partition == nil && key == nil { s.sticky[topic] = Int32.random(in: 0..<count) }
                sealed = true
            }
        }
        if sealed { wake.yield() }
    }

    /// Waits until every queued record is acknowledged or failed.
    public func flush() async {
        state.withLockedValue { s in
            s.ready.append(contentsOf: s.open.values)
            s.open.removeAll()
        }
        wake.yield()
        while state.withLockedValue({ $0.outstanding }) > 0 {
            try? await Task.sleep(for: .milliseconds(1))
            wake.yield()
        }
    }

    public func close() async {
        await flush()
        state.withLockedValue { $0.closed = true }
        wake.finish()
        _ = await sender.value
    }

    /// Wall clock minus uptime, so timestamps come from the cheap monotonic clock.
    static let wallOffsetMs: Double = {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) * 1000 + Double(ts.tv_nsec) / 1e6 - Double(DispatchTime.now().uptimeNanoseconds) / 1e6
    }()

    private static func runSender(stream: AsyncStream<Void>, state: NIOLockedValueBox<State>, client: KafkaClient, config: Config,
                                  observer: BatchObserver?) async {
        await withTaskGroup(of: Void.self) { group in
            for await _ in stream {
                let lingerNanos = UInt64(config.lingerMs) * 1_000_000
                let batches: [PendingBatch] = state.withLockedValue { s in
                    let now = DispatchTime.now().uptimeNanoseconds
                    // Seal batches that waited long enough.
                    for (tp, b) in s.open where now >= b.createdNanos &+ lingerNanos {
                        s.ready.append(s.open.removeValue(forKey: tp)!)
                        if s.sticky[tp.topic] == tp.partition { s.sticky[tp.topic] = nil }
                    }
                    guard s.inFlight < config.maxInFlight, !s.ready.isEmpty else { return [] }
                    s.inFlight += 1
                    defer { s.ready.removeAll() }
                    return s.ready
                }
                guard !batches.isEmpty else { continue }
                // Requests are written here, one after another, so a partition's batches reach its
                // leader in the order they were sealed; only the waits for answers run concurrently.
                let requests = await start(batches, client: client, config: config, observer: observer)
                group.addTask {
                    await withTaskGroup(of: Void.self) { waits in
                        for (batches, pending) in requests {
                            waits.addTask { await complete(batches, pending, observer: observer) }
                        }
                    }
                    state.withLockedValue { s in
                        s.inFlight -= 1
                        s.outstanding -= batches.reduce(0) { $0 + $1.builder.count }
                    }
                }
            }
        }
    }

    /// Writes ready batches, one Produce request per leader (split at `maxRequestBytes`). Batches
    /// that could not be written, and acks=0 batches, are finished here; the rest come back with
    /// the response to wait for.
    private static func start(_ batches: [PendingBatch], client: KafkaClient, config: Config, observer: BatchObserver?) async
        -> [([PendingBatch], PendingResponse<ProduceResponse>)]
    {
        var byLeader: [Int32: [PendingBatch]] = [:]
        var leaders: [Int32] = []  // first-seen order, so requests go out in sealing order
        for b in batches {
            let leader = (try? await client.topic(b.topic))?.partitions[b.partition] ?? -1
            if byLeader[leader] == nil { leaders.append(leader) }
            byLeader[leader, default: []].append(b)
        }
        var requests: [(Int32, [PendingBatch])] = []
        for leader in leaders {
            var current: [PendingBatch] = []
            var size = 0
            for b in byLeader[leader]! {
                if !current.isEmpty && size + b.builder.byteCount > config.maxRequestBytes {
                    requests.append((leader, current))
                    current = []
                    size = 0
                }
                current.append(b)
                size += b.builder.byteCount
            }
            if !current.isEmpty { requests.append((leader, current)) }
        }
        var awaiting: [([PendingBatch], PendingResponse<ProduceResponse>)] = []
        for (leader, batches) in requests {
            do {
                let connection = try await client.connection(to: leader)
                let version = try connection.version(.produce, max: 8)
                var topics: [String: [ProduceRequest.PartitionProduceData]] = [:]
                var topicOrder: [String] = []
                for b in batches {
                    let bytes = try b.builder.build(compression: config.compression)
                    if topics[b.topic] == nil { topicOrder.append(b.topic) }
                    topics[b.topic, default: []].append(.init(index: b.partition, records: .bytes(bytes)))
                }
                let request = ProduceRequest(
                    acks: config.acks, timeoutMs: config.timeoutMs,
                    topicData: topicOrder.map { .init(name: $0, partitionData: topics[$0]!) })
                if config.acks == 0 {
                    try await connection.sendWithoutResponse(request, version: version)
                    for b in batches { finish(b, baseOffset: -1, error: nil, observer: observer) }
                    continue
                }
                awaiting.append((batches, connection.start(request, version: version, as: ProduceResponse.self)))
            } catch {
                for b in batches { finish(b, baseOffset: -1, error: error, observer: observer) }
            }
        }
        return awaiting
    }

    /// Waits for one Produce response and completes its batches' records.
    private static func complete(_ batches: [PendingBatch], _ pending: PendingResponse<ProduceResponse>, observer: BatchObserver?) async {
        do {
            let response = try await pending.response()
            var results: [String: [Int32: ProduceResponse.PartitionProduceResponse]] = [:]
            for t in response.responses {
                for p in t.partitionResponses { results[t.name, default: [:]][p.index] = p }
            }
            for b in batches {
                guard let r = results[b.topic]?[b.partition] else {
                    finish(b, baseOffset: -1, error: ClientError.invalidResponse("no result for \(b.topic)[\(b.partition)]"), observer: observer)
                    continue
                }
                let error = r.errorCode == 0 ? nil : ClientError.kafka(code: r.errorCode, context: "produce to \(b.topic)[\(b.partition)]")
                finish(b, baseOffset: r.baseOffset, error: error, observer: observer)
            }
        } catch {
            for b in batches { finish(b, baseOffset: -1, error: error, observer: observer) }
        }
    }

    private static func finish(_ b: PendingBatch, baseOffset: Int64, error: Error?, observer: BatchObserver?) {
        observer?(b.sendTimes, error)
        for (index, completion) in b.completions {
            if let error {
                completion(.failure(error))
            } else {
                completion(.success(RecordMetadata(topic: b.topic, partition: b.partition, offset: baseOffset < 0 ? -1 : baseOffset + Int64(index))))
            }
        }
    }
}

#if canImport(Glibc)
    import Glibc
#endif
