import NIOCore
import NIOEmbedded
import XCTest

@testable import TernServer

/// What the framer asked to close for (EmbeddedChannel runs everything on the test's thread).
private final class CloseLog {
    var reasons: [String] = []
}

final class RequestFramerTests: XCTestCase {
    private func frame(_ size: Int, fill: UInt8 = 1) -> ByteBuffer {
        var b = ByteBuffer()
        b.writeInteger(Int32(size))
        b.writeRepeatingByte(fill, count: size)
        return b
    }

    private func makeChannel(
        pool: RequestMemoryPool, maxFrame: Int = 1 << 20, timeout: TimeAmount = .seconds(30), load: ConnectionLoad = ConnectionLoad()
    ) throws -> (EmbeddedChannel, ReadCounter, () -> [String]) {
        let counter = ReadCounter()
        let closes = CloseLog()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(counter)
        try channel.pipeline.syncOperations.addHandler(RequestFramer(maxFrameSize: maxFrame, pool: pool, load: load, frameTimeout: timeout) { context, reason in
            closes.reasons.append(reason)
            context.close(promise: nil)
        })
        return (channel, counter, { closes.reasons })
    }

    func testFramesAreCutAcrossReadsAndCarryTheirReservation() throws {
        let pool = RequestMemoryPool(limit: 1 << 20)
        let (channel, _, _) = try makeChannel(pool: pool)
        var stream = frame(10)
        let second = frame(300, fill: 7)
        stream.writeImmutableBuffer(second.getSlice(at: 0, length: 100)!)
        try channel.writeInbound(stream)
        let first = try channel.readInbound(as: RequestFrame.self)
        XCTAssertEqual(first?.bytes.readableBytes, 10)
        XCTAssertEqual(first?.reservedBytes, RequestMemoryPool.minimumCharge, "a small request is charged its bookkeeping")
        XCTAssertNil(try channel.readInbound(as: RequestFrame.self))
        XCTAssertEqual(pool.reservedBytes, 2 * RequestMemoryPool.minimumCharge, "the partial frame is reserved when its size arrives")
        try channel.writeInbound(second.getSlice(at: 100, length: second.readableBytes - 100)!)
        let whole = try channel.readInbound(as: RequestFrame.self)
        XCTAssertEqual(whole.map { Array($0.bytes.readableBytesView) }, Array(repeating: 7, count: 300))
        pool.release(first!.reservedBytes)
        pool.release(whole!.reservedBytes)
        XCTAssertEqual(pool.reservedBytes, 0)
        _ = try channel.finish()
    }

    /// The budget bounds the number of requests too: tiny frames are charged `minimumCharge` each.
    func testTinyRequestsAreCountedAgainstTheBudget() throws {
        let pool = RequestMemoryPool(limit: 4 * RequestMemoryPool.minimumCharge)
        let (channel, _, _) = try makeChannel(pool: pool)
        var stream = ByteBuffer()
        for _ in 0..<10 { stream.writeImmutableBuffer(frame(8)) }
        try channel.writeInbound(stream)
        var delivered: [RequestFrame] = []
        while let f = try channel.readInbound(as: RequestFrame.self) { delivered.append(f) }
        XCTAssertEqual(delivered.count, 4, "four 8-byte requests fill a budget of four request charges")
        for f in delivered { pool.release(f.reservedBytes) }
        XCTAssertEqual(pool.reservedBytes, 0)
        _ = try channel.finish()
    }

    func testBadSizesCloseTheConnection() throws {
        for size: Int32 in [0, 7, -1, Int32.max] {
            let (channel, _, closes) = try makeChannel(pool: RequestMemoryPool(limit: -1), maxFrame: 1024)
            var b = ByteBuffer()
            b.writeInteger(size)
            try channel.writeInbound(b)
            XCTAssertEqual(closes().count, 1, "size \(size)")
        }
    }

    func testAFullPoolHoldsReadsBackUntilMemoryIsReleased() throws {
        let pool = RequestMemoryPool(limit: 10_000)
        XCTAssertTrue(pool.tryReserve(9_000))  // another connection's frame
        let busy = ConnectionLoad()
        busy.outstanding = 1  // this connection has a request in progress
        let (channel, counter, _) = try makeChannel(pool: pool, load: busy)
        try channel.writeInbound(frame(2_000).getSlice(at: 0, length: 50)!)
        XCTAssertEqual(pool.reservedBytes, 9_000, "2 000 more would exceed the budget")
        let before = counter.count
        channel.read()
        XCTAssertEqual(counter.count, before, "the read is held back while waiting for memory")
        pool.release(9_000)
        channel.embeddedEventLoop.advanceTime(by: RequestFramer.memoryRetryInterval)
        XCTAssertEqual(pool.reservedBytes, 2_000)
        XCTAssertEqual(counter.count, before + 1, "the held-back read goes out once memory is free")
        _ = try channel.finish()
        XCTAssertEqual(pool.reservedBytes, 0, "closing releases the partial frame's reservation")
    }

    /// A full budget (hogs pipelining requests and never reading replies) still lets a connection
    /// with nothing outstanding bring one small request at a time; not a large one.
    func testAnIdleConnectionIsServedPastAFullPool() throws {
        let pool = RequestMemoryPool(limit: 10_000)
        pool.forceReserve(50_000)  // held by other connections' unsent responses
        let load = ConnectionLoad()
        let (channel, _, _) = try makeChannel(pool: pool, load: load)
        try channel.writeInbound(frame(100))
        XCTAssertEqual(try channel.readInbound(as: RequestFrame.self)?.reservedBytes, RequestMemoryPool.minimumCharge)
        XCTAssertEqual(load.outstanding, 1)
        try channel.writeInbound(frame(100))
        XCTAssertNil(try channel.readInbound(as: RequestFrame.self), "a second one waits while the first is outstanding")
        _ = try channel.finish()
        let (big, _, _) = try makeChannel(pool: pool)
        try big.writeInbound(frame(ConnectionLoad.idleAllowance + 1))
        XCTAssertNil(try big.readInbound(as: RequestFrame.self), "past the allowance even an idle connection waits")
        _ = try big.finish()
    }

    func testAFrameLargerThanTheWholePoolProceedsAlone() throws {
        let pool = RequestMemoryPool(limit: 1_000)
        let (channel, _, _) = try makeChannel(pool: pool)
        try channel.writeInbound(frame(5_000))
        XCTAssertEqual(try channel.readInbound(as: RequestFrame.self)?.reservedBytes, 5_000)
        _ = try channel.finish()
    }

    func testATrickledFrameIsCutOffAtTheDeadline() throws {
        let (channel, _, closes) = try makeChannel(pool: RequestMemoryPool(limit: -1), timeout: .seconds(2))
        try channel.writeInbound(frame(100).getSlice(at: 0, length: 20)!)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        XCTAssertEqual(closes(), [])
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        XCTAssertEqual(closes().count, 1)
        XCTAssertTrue(closes()[0].contains("incomplete"))
    }

    func testASlowButSteadyLargeFrameIsNotCutOff() throws {
        let (channel, _, closes) = try makeChannel(pool: RequestMemoryPool(limit: -1), timeout: .seconds(2))
        let big = frame(400 * 1024)
        var sent = 0
        while sent < big.readableBytes {
            let n = min(100 * 1024, big.readableBytes - sent)
            try channel.writeInbound(big.getSlice(at: sent, length: n)!)
            sent += n
            channel.embeddedEventLoop.advanceTime(by: .milliseconds(1500))
        }
        XCTAssertEqual(closes(), [])
        XCTAssertEqual(try channel.readInbound(as: RequestFrame.self)?.bytes.readableBytes, 400 * 1024)
        _ = try channel.finish()
    }

    func testWholeFramesDoNotArmTheDeadline() throws {
        let (channel, _, closes) = try makeChannel(pool: RequestMemoryPool(limit: -1), timeout: .seconds(2))
        for _ in 0..<5 {
            try channel.writeInbound(frame(100))
            channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        }
        XCTAssertEqual(closes(), [])
        _ = try channel.finish()
    }

    func testIdleEventClosesTheConnection() throws {
        let (channel, _, closes) = try makeChannel(pool: RequestMemoryPool(limit: -1))
        channel.pipeline.fireUserInboundEventTriggered(IdleStateHandler.IdleStateEvent.all)
        XCTAssertEqual(closes().count, 1)
    }
}
