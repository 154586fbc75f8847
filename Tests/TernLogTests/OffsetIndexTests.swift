import XCTest

@testable import TernLog

final class OffsetIndexTests: XCTestCase {
    func testFloorLookupAndReload() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        var index = OffsetIndex(path: dir.path + "/0.index")
        for i in 1...100 { index.append(relativeOffset: UInt32(i * 10), position: UInt32(i * 1000)) }
        XCTAssertNil(index.floor(5))
        XCTAssertEqual(index.floor(10)?.position, 1000)
        XCTAssertEqual(index.floor(555)?.position, 55000)
        XCTAssertEqual(index.floor(10_000)?.position, 100_000)
        // Out-of-order entries are ignored, keeping the invariant.
        index.append(relativeOffset: 5, position: 1)
        XCTAssertEqual(index.entries.count, 100)
        try index.persist()

        var reloaded = OffsetIndex(path: dir.path + "/0.index")
        XCTAssertTrue(try reloaded.load(logSize: 200_000, io: DiskIO(logger: testLogger)))
        XCTAssertEqual(reloaded.entries.count, 100)
        XCTAssertEqual(reloaded.floor(555)?.position, 55000)
        // An index pointing past the end of its log is rejected (rebuilt by the segment).
        XCTAssertFalse(try reloaded.load(logSize: 50_000, io: DiskIO(logger: testLogger)))
    }

    func testTimeIndexLastBefore() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        var index = TimeIndex(path: dir.path + "/0.timeindex")
        index.append(timestamp: 100, relativeOffset: 0)
        index.append(timestamp: 200, relativeOffset: 5)
        index.append(timestamp: 300, relativeOffset: 9)
        XCTAssertNil(index.lastBefore(100))
        XCTAssertEqual(index.lastBefore(201)?.relativeOffset, 5)
        XCTAssertEqual(index.lastBefore(1000)?.relativeOffset, 9)
        try index.persist()
        var reloaded = TimeIndex(path: dir.path + "/0.timeindex")
        XCTAssertTrue(try reloaded.load(io: DiskIO(logger: testLogger)))
        XCTAssertEqual(reloaded.entries, index.entries)
    }
}
