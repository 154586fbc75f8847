import NIOCore
import TernProtocol
import XCTest

@testable import TernLog

final class TransactionIndexTests: XCTestCase {
    private func header(pid: Int64, base: Int64, last: Int64, control: Bool) throws -> RecordBatchHeader {
        var b = RecordBatch(records: [Record(timestamp: 1, key: nil, value: ByteBuffer(string: "x"))])
        b.producerId = pid
        b.producerEpoch = 0
        b.attributes = control ? 0x30 : 0x10
        b.baseOffset = base
        var out = ByteBuffer()
        try b.encode(to: &out)
        var h = try RecordBatchHeader(from: out, at: 0)
        h.lastOffsetDelta = Int32(last - base)
        return h
    }

    func testLastStableOffsetAndAbortedRanges() throws {
        var index = TransactionIndex()
        index.observe(try header(pid: 1, base: 10, last: 12, control: false), marker: nil)
        index.observe(try header(pid: 2, base: 13, last: 13, control: false), marker: nil)
        XCTAssertEqual(index.lastStableOffset(logEnd: 20), 10)
        index.observe(try header(pid: 1, base: 14, last: 14, control: true), marker: TransactionIndex.abortMarker)
        XCTAssertEqual(index.lastStableOffset(logEnd: 20), 13)
        index.observe(try header(pid: 2, base: 15, last: 15, control: true), marker: TransactionIndex.commitMarker)
        XCTAssertEqual(index.lastStableOffset(logEnd: 20), 20)
        XCTAssertEqual(index.aborted(from: 0, to: 20), [.init(producerId: 1, firstOffset: 10, lastOffset: 14)])
        XCTAssertEqual(index.aborted(from: 15, to: 20), [])
    }
}
