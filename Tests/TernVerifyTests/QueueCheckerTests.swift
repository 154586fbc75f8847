import XCTest

@testable import TernVerify

/// The checker on hand-made histories: each kind of violation is found, and none in clean ones.
final class QueueCheckerTests: XCTestCase {
    /// Builds a history one event per millisecond.
    private struct History {
        var events: [HistoryEvent] = []
        private var t: Int64 = 0

        private mutating func add(_ e: (Int64) -> HistoryEvent) {
            t += 1_000_000
            events.append(e(t))
        }

        mutating func send(_ process: Int, _ value: String, to partition: Int32, _ kind: HistoryEvent.Kind, at offset: Int64? = nil) {
            add { HistoryEvent(process: process, kind: .invoke, f: "send", timeNs: $0, partition: partition, value: value) }
            add { HistoryEvent(process: process, kind: kind, f: "send", timeNs: $0, partition: partition, offset: offset, value: value, error: kind == .ok ? nil : "x") }
        }

        /// One process's pipelined sends: every invocation, then every completion in order.
        mutating func pipelined(_ process: Int, _ sends: [(String, HistoryEvent.Kind, Int64?)], to partition: Int32) {
            for (value, _, _) in sends {
                add { HistoryEvent(process: process, kind: .invoke, f: "send", timeNs: $0, partition: partition, value: value) }
            }
            for (value, kind, offset) in sends {
                add { HistoryEvent(process: process, kind: kind, f: "send", timeNs: $0, partition: partition, offset: offset, value: value, error: kind == .ok ? nil : "x") }
            }
        }

        mutating func read(_ process: Int, _ records: [(Int32, Int64, String)], f: String = "read", kind: HistoryEvent.Kind = .ok) {
            add { HistoryEvent(process: process, kind: .invoke, f: f, timeNs: $0) }
            add { HistoryEvent(process: process, kind: kind, f: f, timeNs: $0, records: records.map { ReadRecord(partition: $0.0, offset: $0.1, value: $0.2) }) }
        }

        mutating func drain(_ records: [(Int32, Int64, String)]) { read(9, records, f: "drain") }

        mutating func fault(_ detail: String, healed: Bool) {
            add { HistoryEvent(process: HistoryEvent.nemesis, kind: healed ? .ok : .invoke, f: "fault", timeNs: $0, detail: detail) }
        }
    }

    private func kinds(_ h: History) -> [Violation.Kind] { QueueChecker.check(h.events).violations.map(\.kind) }

    /// Two producers, two partitions, a consumer during the run, an unknown send that made it and
    /// one that did not, a failed one that did not: nothing to report.
    private func clean() -> History {
        var h = History()
        h.send(0, "p0-1", to: 0, .ok, at: 0)
        h.send(1, "p1-1", to: 1, .ok, at: 0)
        h.send(0, "p0-2", to: 0, .ok, at: 1)
        h.read(5, [(0, 0, "p0-1"), (0, 1, "p0-2")])
        h.send(1, "p1-2", to: 1, .info)
        h.send(1, "p1-3", to: 1, .ok, at: 2)
        h.send(0, "p0-3", to: 0, .fail)
        h.send(0, "p0-4", to: 0, .info)
        h.drain([(0, 0, "p0-1"), (0, 1, "p0-2"), (1, 0, "p1-1"), (1, 1, "p1-2"), (1, 2, "p1-3")])
        return h
    }

    func testACleanHistoryHasNoViolations() {
        let result = QueueChecker.check(clean().events)
        XCTAssertEqual(result.violations, [])
        XCTAssertTrue(result.complete)
        XCTAssertEqual(result.acknowledged, 4)
        XCTAssertEqual(result.failed, 1)
        XCTAssertEqual(result.unknown, 2)
        XCTAssertEqual(result.unknownPresent, 1)
        XCTAssertEqual(result.drained, 5)
    }

    func testALostAcknowledgedWriteIsFoundAndNamesTheFaultAroundIt() {
        var h = History()
        h.fault("kill broker 2 (leader of t-0) for 3000 ms", healed: false)
        h.send(0, "p0-1", to: 0, .ok, at: 0)
        h.send(0, "p0-2", to: 0, .ok, at: 1)
        h.fault("kill broker 2 (leader of t-0) for 3000 ms", healed: true)
        h.drain([(0, 0, "p0-1")])
        let result = QueueChecker.check(h.events)
        XCTAssertEqual(result.violations.map(\.kind), [.lost])
        XCTAssertTrue(result.violations[0].message.contains("p0-2"), result.violations[0].message)
        XCTAssertEqual(result.violations[0].events, [3, 4], "the send's invocation and acknowledgement")
        XCTAssertEqual(result.violations[0].nemesis.count, 1)
        XCTAssertTrue(result.violations[0].nemesis[0].contains("kill broker 2"))
    }

    /// A worker with several sends in flight: each completion belongs to its own value.
    func testPipelinedSendsArePairedByValue() {
        var h = History()
        h.pipelined(0, [("p0-1", .ok, 0), ("p0-2", .ok, 1), ("p0-3", .info, nil), ("p0-4", .ok, 2)], to: 0)
        h.drain([(0, 0, "p0-1"), (0, 1, "p0-2"), (0, 2, "p0-4")])
        XCTAssertEqual(kinds(h), [])
        var lost = History()
        lost.pipelined(0, [("p0-1", .ok, 0), ("p0-2", .ok, 0)], to: 0)  // the broker's issue-22 answer
        lost.drain([(0, 0, "p0-2")])
        XCTAssertEqual(kinds(lost), [.lost], "p0-1 acknowledged at an offset that holds p0-2")
    }

    func testADuplicateIsFound() {
        var h = History()
        h.send(0, "p0-1", to: 0, .ok, at: 0)
        h.drain([(0, 0, "p0-1"), (0, 1, "p0-1")])
        XCTAssertEqual(kinds(h), [.duplicate])
    }

    func testReorderingWithinAPartitionIsFound() {
        var h = History()
        h.send(0, "p0-1", to: 0, .ok, at: 1)
        h.send(0, "p0-2", to: 0, .ok, at: 0)
        h.drain([(0, 0, "p0-2"), (0, 1, "p0-1")])
        XCTAssertEqual(kinds(h), [.reordered])
    }

    func testValuesOfDifferentProducersOrPartitionsMayInterleave() {
        var h = History()
        h.send(0, "p0-1", to: 0, .ok, at: 1)
        h.send(1, "p1-1", to: 0, .ok, at: 0)
        h.send(0, "p0-2", to: 1, .ok, at: 0)
        h.drain([(0, 0, "p1-1"), (0, 1, "p0-1"), (1, 0, "p0-2")])
        XCTAssertEqual(kinds(h), [])
    }

    func testAnOffsetAcknowledgedForOneValueHoldingAnotherIsFound() {
        var h = History()
        h.send(0, "p0-1", to: 0, .ok, at: 0)
        h.send(1, "p1-1", to: 0, .ok, at: 0)  // the same offset acknowledged twice
        h.drain([(0, 0, "p0-1"), (0, 1, "p1-1")])
        XCTAssertEqual(kinds(h), [.offsetReused])
    }

    func testReadsThatDisagreeAboutAnOffsetAreFound() {
        var h = History()
        h.send(0, "p0-1", to: 0, .info)
        h.send(1, "p1-1", to: 0, .ok, at: 0)
        h.read(5, [(0, 0, "p0-1")])  // a consumer saw p0-1 at offset 0, which later holds p1-1
        h.drain([(0, 0, "p1-1")])
        XCTAssertEqual(kinds(h), [.offsetReused])
    }

    func testARecordAConsumerReadThatVanishedIsFound() {
        var h = History()
        h.send(0, "p0-1", to: 0, .ok, at: 0)
        h.send(0, "p0-2", to: 0, .info)
        h.read(5, [(0, 0, "p0-1"), (0, 1, "p0-2")])
        h.drain([(0, 0, "p0-1")])
        XCTAssertEqual(kinds(h), [.vanished], "an unknown write may be missing, but not after someone read it")
    }

    func testARecordNobodySentIsFound() {
        var h = History()
        h.send(0, "p0-1", to: 0, .ok, at: 0)
        h.drain([(0, 0, "p0-1"), (0, 1, "ghost")])
        XCTAssertEqual(kinds(h), [.phantom])
    }

    func testAWriteReportedFailedThatIsInTheLogIsFound() {
        var h = History()
        h.send(0, "p0-1", to: 0, .fail)
        h.drain([(0, 0, "p0-1")])
        XCTAssertEqual(kinds(h), [.failedWriteVisible])
    }

    func testWithoutAFinalReadTheRunIsIncompleteNotClean() {
        var h = History()
        h.send(0, "p0-1", to: 0, .ok, at: 0)
        h.read(9, [], f: "drain", kind: .info)
        let result = QueueChecker.check(h.events)
        XCTAssertFalse(result.complete)
        XCTAssertEqual(result.violations, [], "nothing can be said about lost writes")
        let report = VerifyReport(seed: 1, nemeses: [], durationSeconds: 1, brokers: "b", check: result, statistics: RunStatistics(h.events))
        XCTAssertFalse(report.passed)
    }

    func testStatisticsCountPerSecondAndMeasureUnavailabilityAfterAFault() {
        var events: [HistoryEvent] = []
        func send(_ n: Int, invoke: Double, complete: Double, _ kind: HistoryEvent.Kind = .ok) {
            events.append(HistoryEvent(process: 0, kind: .invoke, f: "send", timeNs: Int64(invoke * 1e9), partition: 0, value: "v\(n)"))
            events.append(HistoryEvent(process: 0, kind: kind, f: "send", timeNs: Int64(complete * 1e9), partition: 0, value: "v\(n)"))
        }
        send(1, invoke: 0.1, complete: 0.2)
        send(2, invoke: 0.3, complete: 0.4)
        events.append(HistoryEvent(process: HistoryEvent.nemesis, kind: .invoke, f: "fault", timeNs: 1_000_000_000, detail: "kill broker 1"))
        send(3, invoke: 1.0, complete: 3.5)  // waited out the failover
        events.append(HistoryEvent(process: HistoryEvent.nemesis, kind: .ok, f: "fault", timeNs: 4_000_000_000, detail: "kill broker 1"))
        send(4, invoke: 3.6, complete: 3.7, .info)
        send(5, invoke: 4.1, complete: 4.2)
        events.append(HistoryEvent(process: HistoryEvent.nemesis, kind: .invoke, f: "fault", timeNs: 4_250_000_000, detail: "pause broker 2"))
        send(6, invoke: 4.2, complete: 4.3)
        events.append(HistoryEvent(process: HistoryEvent.nemesis, kind: .ok, f: "fault", timeNs: 4_400_000_000, detail: "pause broker 2"))
        // Writes sent as the workload stops, completing long after: not an outage.
        events.append(HistoryEvent(process: HistoryEvent.harness, kind: .ok, f: "stop", timeNs: 4_450_000_000))
        send(7, invoke: 4.5, complete: 12, .fail)
        let stats = RunStatistics(events)
        XCTAssertEqual(stats.seconds[0].ok, 2)
        XCTAssertEqual(stats.seconds[0].p50Ms ?? 0, 100, accuracy: 0.01)
        XCTAssertEqual(stats.seconds[3].ok, 1)
        XCTAssertEqual(stats.seconds[3].unknown, 1)
        XCTAssertEqual(stats.faults.first, FaultWindow(startNs: 1_000_000_000, endNs: 4_000_000_000, detail: "kill broker 1"))
        XCTAssertEqual(stats.unavailability.count, 2)
        XCTAssertEqual(stats.unavailability.first?.seconds ?? 0, 2.5, accuracy: 0.001)
        XCTAssertEqual(stats.unavailability.last?.seconds ?? 0, 0.15, accuracy: 0.001)
    }

    func testHistoriesRoundTripThroughTheirFile() throws {
        let path = NSTemporaryDirectory() + "tern-verify-history-\(getpid()).jsonl"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let recorder = try HistoryRecorder(path: path)
        for e in clean().events { recorder.record { _ in e } }
        recorder.close()
        XCTAssertEqual(try HistoryRecorder.load(path: path), clean().events)
    }

    func testTheReportNamesTheVerdictAndEscapesWhatItShows() throws {
        var h = History()
        h.send(0, "<b>p0-1</b>", to: 0, .ok, at: 0)
        h.drain([])
        let report = VerifyReport(seed: 7, nemeses: [.kill], durationSeconds: 1, brokers: "b", check: QueueChecker.check(h.events), statistics: RunStatistics(h.events))
        let html = report.html()
        XCTAssertTrue(html.contains("1 violation(s)"))
        XCTAssertFalse(html.contains("<b>p0-1</b>"))
        XCTAssertTrue(html.contains("&lt;b&gt;p0-1"))
        let decoded = try JSONSerialization.jsonObject(with: report.json()) as? [String: Any]
        XCTAssertEqual(decoded?["seed"] as? Int, 7)
    }
}
