import Dispatch
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TernBroker
import TernProtocol

/// The `broker` target: a real `Broker` in a temporary directory, seeded with topics, batches, an
/// open transaction and groups (`seedBroker`), handed sequences of requests the way a connection
/// hands them to `RequestDispatcher` — on an event loop, each answered future's response encoded.
/// A finding is a trap anywhere in that (a handler, the coordinators, the appender's thread, the
/// response encoder), a sanitizer report, or a wedge: after each input a Metadata and a ListGroups
/// must still be answered within 2 s.
///
/// Input: steps, each a tag byte then its bytes. A tag below 224 is a generated request (API,
/// version and every field chosen by the following bytes, `FuzzSource`); otherwise a raw frame
/// follows (a big-endian UInt16 length, then the frame without its size prefix) — `make fuzz`
/// seeds it with the frames real clients sent, in this form (`Tests/Fuzz/broker_seeds.py`).
///
/// State carries over between inputs (that is the point: a request meets what earlier ones left),
/// and the broker is made anew every `inputsPerBroker` inputs so its directory stays small.
final class InProcessBroker {
    static let inputsPerBroker = 2000
    // Only libFuzzer's (or the replay loop's) one calling thread touches it.
    nonisolated(unsafe) private static var current: InProcessBroker?

    let directory: String
    let broker: Broker
    let loops: MultiThreadedEventLoopGroup
    let transport: InProcessTransport
    let world: FuzzWorld
    let apis: [(ApiKey, ClosedRange<Int16>)]
    private(set) var inputs = 0

    static func shared() -> InProcessBroker {
        if let b = current, b.inputs < inputsPerBroker {
            b.inputs += 1
            return b
        }
        current?.shutdown()
        current = nil
        let made = InProcessBroker()
        current = made
        return made
    }

    private init() {
        directory = NSTemporaryDirectory() + "tern-fuzz-broker-\(getpid())-\(UUID().uuidString.prefix(8))"
        var config = BrokerConfig()
        config.logDir = directory
        config.numPartitions = 3
        config.offsetsTopicPartitions = 3
        config.transactionStatePartitions = 3
        config.groups.initialRebalanceDelayMs = 0
        var logger = Logger(label: "fuzz")
        logger.logLevel = .critical
        broker = try! Broker(config: config, logger: logger)
        loops = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        transport = InProcessTransport(dispatcher: RequestDispatcher(broker: broker), loop: loops.next())
        var seeding = transport
        apis = advertisedApis(&seeding)
        world = seedBroker(&seeding, replicationFactor: 1)
    }

    func shutdown() {
        broker.shutdownSingleBroker()
        try? loops.syncShutdownGracefully()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// A Metadata and a ListGroups are answered within 2 s, or the broker is wedged.
    func assertServing() {
        var probe = transport
        guard probe.call(MetadataRequest(topics: [.init(name: "fuzz")]), version: 1, MetadataResponse.self, timeout: .seconds(2)) != nil else {
            fatalError("wedged: a Metadata request was not answered within 2 s after this input")
        }
        guard probe.call(ListGroupsRequest(), version: 4, ListGroupsResponse.self, timeout: .seconds(2)) != nil else {
            fatalError("wedged: a ListGroups request was not answered within 2 s after this input")
        }
    }
}

/// The dispatcher as a connection uses it: on one event loop, one frame at a time.
struct InProcessTransport: FuzzTransport {
    let dispatcher: RequestDispatcher
    let loop: EventLoop

    /// The response to come, or nil for none (acks=0, or the connection would be closed).
    func dispatch(_ frame: ByteBuffer) -> EventLoopFuture<OutboundFrame>? {
        let outcome = try! loop.submit { dispatcher.dispatch(frame, on: loop, clientHost: "127.0.0.1") }.wait()
        guard case .respond(let future) = outcome else { return nil }
        return future
    }

    mutating func roundTrip(_ frame: ByteBuffer, timeout: TimeAmount) -> ByteBuffer? {
        guard let future = dispatch(frame), let answer = wait(for: future, upTo: .now() + .nanoseconds(Int(timeout.nanoseconds))) else { return nil }
        var bytes = ByteBuffer()
        for part in answer.parts {
            switch part {
            case .bytes(let b): bytes.writeImmutableBuffer(b)
            case .file(let slice): bytes.writeImmutableBuffer(slice.readAll())
            }
        }
        bytes.moveReaderIndex(forwardBy: 4)
        return bytes
    }
}

/// The future's value if it completes before `deadline` (nil if it failed or is still pending).
func wait<T: Sendable>(for future: EventLoopFuture<T>, upTo deadline: DispatchTime) -> T? {
    let done = DispatchSemaphore(value: 0)
    let result = NIOLockedValueBox<T?>(nil)
    future.whenComplete { outcome in
        if case .success(let value) = outcome { result.withLockedValue { $0 = value } }
        done.signal()
    }
    guard done.wait(timeout: deadline) == .success else { return nil }
    return result.withLockedValue { $0 }
}

func fuzzBroker(_ input: ByteBuffer) {
    let target = InProcessBroker.shared()
    var f = FuzzSource(bytes: Array(input.readableBytesView), world: target.world)
    var pending: [EventLoopFuture<OutboundFrame>] = []
    var correlationId: Int32 = 1
    while !f.exhausted && pending.count < 16 {
        let frame: ByteBuffer?
        if f.byte() < 224 {
            frame = generatedFrame(&f, apis: target.apis, correlationId: correlationId)
        } else {
            let length = Int(f.byte()) << 8 | Int(f.byte())
            frame = ByteBuffer(bytes: (0..<length).map { _ in f.byte() })
        }
        correlationId += 1
        guard let frame, let answer = target.transport.dispatch(frame) else { continue }
        pending.append(answer)
    }
    // Answers that come at once are encoded now: a trap in a response's encoding belongs to this
    // input. Long polls and rebalances go on waiting and are dropped with the broker.
    let deadline = DispatchTime.now() + .milliseconds(50)
    for answer in pending { _ = wait(for: answer, upTo: deadline) }
    target.assertServing()
}
