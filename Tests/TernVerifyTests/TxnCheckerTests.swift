import XCTest

@testable import TernVerify

/// The transactional checker on hand-made histories.
final class TxnCheckerTests: XCTestCase {
    private struct History {
        var events: [HistoryEvent] = []
        private var t: Int64 = 0

        private mutating func add(_ e: (Int64) -> HistoryEvent) {
            t += 1_000_000
            events.append(e(t))
        }

        /// A whole transaction of `process`: its values to partitions 0, 1, …; `end` says whether
        /// EndTxn was invoked.
        mutating func txn(_ process: Int, _ values: [String], _ kind: HistoryEvent.Kind, end: Bool = true) {
            let planned = values.enumerated().map { ReadRecord(partition: Int32($0.offset), offset: -1, value: $0.element) }
            add { HistoryEvent(process: process, kind: .invoke, f: "txn", timeNs: $0, records: planned) }
            if end { add { HistoryEvent(process: process, kind: .invoke, f: "txn-end", timeNs: $0) } }
            add { HistoryEvent(process: process, kind: kind, f: "txn", timeNs: $0, error: kind == .ok ? nil : "x") }
        }

        mutating func begin(_ process: Int, _ values: [String]) {
            let planned = values.enumerated().map { ReadRecord(partition: Int32($0.offset), offset: -1, value: $0.element) }
            add { HistoryEvent(process: process, kind: .invoke, f: "txn", timeNs: $0, records: planned) }
        }

        mutating func end(_ process: Int, _ kind: HistoryEvent.Kind) {
            add { HistoryEvent(process: process, kind: .invoke, f: "txn-end", timeNs: $0) }
            add { HistoryEvent(process: process, kind: kind, f: "txn", timeNs: $0) }
        }

        mutating func read(_ records: [(Int32, Int64, String)], f: String = "txn-read") {
            add { HistoryEvent(process: 300, kind: .invoke, f: f, timeNs: $0) }
            add { HistoryEvent(process: 300, kind: .ok, f: f, timeNs: $0, records: records.map { ReadRecord(partition: $0.0, offset: $0.1, value: $0.2) }) }
        }

        mutating func drain(_ records: [(Int32, Int64, String)]) { read(records, f: "txn-drain") }
    }

    private func kinds(_ h: History) -> [Violation.Kind] { TxnChecker.check(h.events).violations.map(\.kind) }

    func testCommittedVisibleAbortedNotUnknownWholeOrNothingIsClean() {
        var h = History()
        h.txn(200, ["t1-a", "t1-b"], .ok)
        h.txn(200, ["t2-a", "t2-b"], .fail)
        h.txn(201, ["t3-a", "t3-b"], .info)  // committed in the end
        h.txn(201, ["t4-a"], .info)  // did not
        h.read([(0, 0, "t1-a")])
        h.drain([(0, 0, "t1-a"), (1, 0, "t1-b"), (0, 2, "t3-a"), (1, 2, "t3-b")])
        let result = TxnChecker.check(h.events)
        XCTAssertEqual(result.violations, [])
        XCTAssertEqual(result.committed, 1)
        XCTAssertEqual(result.aborted, 1)
        XCTAssertEqual(result.unknown, 2)
        XCTAssertEqual(result.unknownVisible, 1)
    }

    func testAnAbortedTransactionsRecordReadWithReadCommittedIsFound() {
        var h = History()
        h.txn(200, ["t1-a", "t1-b"], .fail)
        h.read([(1, 0, "t1-b")])
        h.drain([])
        XCTAssertEqual(kinds(h), [.abortedRead])
    }

    func testARecordReadBeforeItsTransactionAskedToCommitIsFound() {
        var h = History()
        h.begin(200, ["t1-a"])
        h.read([(0, 0, "t1-a")])
        h.end(200, .ok)
        h.drain([(0, 0, "t1-a")])
        XCTAssertEqual(kinds(h), [.uncommittedRead])
    }

    func testAPartlyVisibleTransactionIsFound() {
        var h = History()
        h.txn(200, ["t1-a", "t1-b", "t1-c"], .info)
        h.drain([(0, 0, "t1-a")])
        XCTAssertEqual(kinds(h), [.nonAtomic])
    }

    func testACommittedTransactionMissingARecordIsALoss() {
        var h = History()
        h.txn(200, ["t1-a", "t1-b"], .ok)
        h.drain([(0, 0, "t1-a")])
        XCTAssertEqual(kinds(h), [.lost])
    }

    func testDuplicatesVanishedReadsAndPhantomsAreFound() {
        var h = History()
        h.txn(200, ["t1-a"], .ok)
        h.txn(200, ["t2-a"], .ok)
        h.read([(0, 0, "t1-a"), (0, 1, "t2-a")])
        h.drain([(0, 0, "t1-a"), (0, 2, "t1-a"), (0, 3, "t2-a"), (0, 4, "nobody")])
        XCTAssertEqual(Set(kinds(h)), [.duplicate, .vanished, .phantom])
    }
}
