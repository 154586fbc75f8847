import Foundation
import Logging
import NIOCore
import NIOEmbedded
import TernBroker
import TernProtocol
import XCTest

@testable import TernServer

#if canImport(Glibc)
    import Glibc
#endif

final class KafkaRequestHandlerTests: BrokerTestCase {
    private func request<M: KafkaMessage>(_ message: M, version: Int16, correlationId: Int32) -> ByteBuffer {
        var b = ByteBuffer()
        RequestHeader(requestApiKey: M.apiKey, requestApiVersion: version, correlationId: correlationId, clientId: "test")
            .encode(to: &b, version: M.isFlexible(version) ? 2 : 1)
        message.encode(to: &b, version: version)
        return b
    }

    /// A thread-safe test channel: produce completions arrive from the appender's thread.
    private func makeChannel(maxInFlight: Int = 64, pool: RequestMemoryPool = RequestMemoryPool(limit: -1), reads: ReadCounter? = nil)
        async throws -> NIOAsyncTestingChannel
    {
        let channel = NIOAsyncTestingChannel()
        let dispatcher = RequestDispatcher(broker: broker)
        try await channel.testingEventLoop.executeInContext {
            if let reads { try channel.pipeline.syncOperations.addHandler(reads) }
            try channel.pipeline.syncOperations.addHandler(
                KafkaRequestHandler(dispatcher: dispatcher, warnings: ConnectionWarnings(logger: Logger(label: "test")), pool: pool, load: ConnectionLoad(), maxInFlight: maxInFlight))
        }
        return channel
    }

    /// A client that keeps pipelining long polls: once `maxInFlight` are unanswered the handler
    /// stops asking the socket for more, and asks again when one is answered; each request's
    /// pool reservation is released with its answer.
    func testReadsAreHeldBackAtTheInFlightLimit() async throws {
        try broker.topics.createTopic(name: "p", partitions: 1)
        let reads = ReadCounter()
        let pool = RequestMemoryPool(limit: 1 << 20)
        let channel = try await makeChannel(maxInFlight: 2, pool: pool, reads: reads)
        let fetch = FetchRequest(
            maxWaitMs: 500, minBytes: 1,
            topics: [.init(topic: "p", partitions: [.init(partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20)])])
        for id in Int32(1)...2 {
            let bytes = request(fetch, version: 11, correlationId: id)
            XCTAssertTrue(pool.tryReserve(bytes.readableBytes))
            try await channel.writeInbound(RequestFrame(bytes: bytes, reservedBytes: bytes.readableBytes))
        }
        XCTAssertGreaterThan(pool.reservedBytes, 0)
        channel.read()
        XCTAssertEqual(reads.count, 0, "two long polls in flight: no more reading")
        await channel.testingEventLoop.advanceTime(by: .milliseconds(500))
        _ = try await nextFrame(channel)
        _ = try await nextFrame(channel)
        XCTAssertEqual(reads.count, 1, "the held-back read goes out once requests are answered")
        XCTAssertEqual(pool.reservedBytes, 0)
    }

    private func correlationId(_ response: ByteBuffer?) -> Int32? {
        response?.getInteger(at: 4, as: Int32.self)
    }

    /// The next whole response frame, gathering its parts. A file region's descriptor is closed as
    /// soon as its write completes, so its bytes are read from `regionFile`, the segment it points into.
    private func nextFrame(_ channel: NIOAsyncTestingChannel, regionFile: String? = nil) async throws -> ByteBuffer {
        var frame = ByteBuffer()
        repeat {
            switch try await channel.waitForOutboundWrite(as: IOData.self) {
            case .byteBuffer(let b): frame.writeImmutableBuffer(b)
            case .fileRegion(let region):
                let file = try XCTUnwrap(regionFile, "unexpected file region")
                let fd = open(file, O_RDONLY)
                frame.writeImmutableBuffer(FileSlice(descriptor: fd, offset: Int64(region.readerIndex), length: region.readableBytes).readAll())
            }
        } while frame.readableBytes < 4 + Int(frame.getInteger(at: 0, as: Int32.self)!)
        return frame
    }

    private func noFrameYet(_ channel: NIOAsyncTestingChannel) async throws -> Bool {
        try await channel.readOutbound(as: IOData.self) == nil
    }

    func testResponsesLeaveInRequestOrderBehindALongPoll() async throws {
        try broker.topics.createTopic(name: "t", partitions: 1)
        let channel = try await makeChannel()
        // A fetch at the end of an empty log waits up to 500 ms for 1 byte...
        let fetch = FetchRequest(
            maxWaitMs: 500, minBytes: 1,
            topics: [.init(topic: "t", partitions: [.init(partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20)])])
        try await channel.writeInbound(RequestFrame(bytes: request(fetch, version: 11, correlationId: 1), reservedBytes: 0))
        // ...so the ApiVersions behind it, though answered at once, must wait too.
        try await channel.writeInbound(RequestFrame(bytes: request(ApiVersionsRequest(), version: 0, correlationId: 2), reservedBytes: 0))
        let nothingYet = try await noFrameYet(channel)
        XCTAssertTrue(nothingYet)
        await channel.testingEventLoop.advanceTime(by: .milliseconds(500))
        var fetchResponse = try await nextFrame(channel)
        XCTAssertEqual(correlationId(fetchResponse), 1)
        let next2 = try await nextFrame(channel)
        XCTAssertEqual(correlationId(next2), 2)
        fetchResponse.moveReaderIndex(forwardBy: 8)
        let decoded = try FetchResponse(from: &fetchResponse, version: 11)
        XCTAssertEqual(decoded.responses.first?.partitions.first?.highWatermark, 0)
        XCTAssertEqual(decoded.responses.first?.partitions.first?.records?.byteCount, 0)
    }

    func testAppendWakesAWaitingFetch() async throws {
        try broker.topics.createTopic(name: "w", partitions: 1)
        let channel = try await makeChannel()
        let fetch = FetchRequest(
            maxWaitMs: 30_000, minBytes: 1,
            topics: [.init(topic: "w", partitions: [.init(partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20)])])
        try await channel.writeInbound(RequestFrame(bytes: request(fetch, version: 4, correlationId: 9), reservedBytes: 0))
        let nothingYet = try await noFrameYet(channel)
        XCTAssertTrue(nothingYet)
        var batch = ByteBuffer()
        try RecordBatch(records: [Record(timestamp: 1, key: nil, value: ByteBuffer(string: "wake"))]).encode(to: &batch)
        let produce = ProduceRequest(
            acks: 1, timeoutMs: 1000, topicData: [.init(name: "w", partitionData: [.init(index: 0, records: .bytes(batch))])])
        try await channel.writeInbound(RequestFrame(bytes: request(produce, version: 7, correlationId: 10), reservedBytes: 0))
        // The records come as a file region over the segment: zero-copy.
        var fetchResponse = try await nextFrame(channel, regionFile: dataDir + "/w-0/00000000000000000000.log")
        XCTAssertEqual(correlationId(fetchResponse), 9)
        let next10 = try await nextFrame(channel)
        XCTAssertEqual(correlationId(next10), 10)
        fetchResponse.moveReaderIndex(forwardBy: 8)
        var records = try XCTUnwrap(try FetchResponse(from: &fetchResponse, version: 4).responses.first?.partitions.first?.records?.bytes)
        XCTAssertEqual(try RecordBatch.read(from: &records).records.first?.value, ByteBuffer(string: "wake"))
    }

    func testAcksZeroProduceGetsNoResponse() async throws {
        try broker.topics.createTopic(name: "z", partitions: 1)
        let channel = try await makeChannel()
        var batch = ByteBuffer()
        try RecordBatch(records: [Record(timestamp: 1, key: nil, value: ByteBuffer(string: "x"))]).encode(to: &batch)
        let produce = ProduceRequest(acks: 0, timeoutMs: 1000, topicData: [.init(name: "z", partitionData: [.init(index: 0, records: .bytes(batch))])])
        try await channel.writeInbound(RequestFrame(bytes: request(produce, version: 7, correlationId: 1), reservedBytes: 0))
        try await channel.writeInbound(RequestFrame(bytes: request(ApiVersionsRequest(), version: 0, correlationId: 2), reservedBytes: 0))
        let next2 = try await nextFrame(channel)
        XCTAssertEqual(correlationId(next2), 2)
        let nothingMore = try await noFrameYet(channel)
        XCTAssertTrue(nothingMore)
        broker.appender.shutdown()  // drains the queue: the acks=0 write is done
        XCTAssertEqual(broker.topics.topic("z")?.partition(0)?.logEndOffset, 1)
    }

    func testUnknownApiKeyClosesTheConnection() async throws {
        let channel = try await makeChannel()
        var b = ByteBuffer()
        b.writeInteger(Int16(999))
        b.writeInteger(Int16(0))
        b.writeInteger(Int32(1))
        b.writeKafkaNullableString(nil, compact: false)
        try await channel.writeInbound(RequestFrame(bytes: b, reservedBytes: 0))
        let active = try await channel.testingEventLoop.submit { channel.isActive }.get()
        XCTAssertFalse(active)
    }
}
