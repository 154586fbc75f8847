import XCTest

@testable import TernVerify

/// The groups checker on hand-made histories.
final class GroupsCheckerTests: XCTestCase {
    private struct History {
        var events: [HistoryEvent] = []
        private var t: Int64 = 0

        private mutating func add(_ e: (Int64) -> HistoryEvent) {
            t += 1_000_000
            events.append(e(t))
        }

        mutating func join(_ process: Int, _ member: String, generation: Int32, _ partitions: [Int32]) {
            add { HistoryEvent(process: process, kind: .invoke, f: "join", timeNs: $0) }
            add { HistoryEvent(process: process, kind: .ok, f: "join", timeNs: $0, member: member, generation: generation, partitions: partitions) }
        }

        mutating func commit(_ process: Int, generation: Int32, _ partition: Int32, _ offset: Int64, _ kind: HistoryEvent.Kind = .ok) {
            beginCommit(process, generation: generation, partition, offset)
            endCommit(process, kind)
        }

        mutating func beginCommit(_ process: Int, generation: Int32, _ partition: Int32, _ offset: Int64) {
            add {
                HistoryEvent(process: process, kind: .invoke, f: "commit", timeNs: $0, generation: generation, offsets: [.init(partition: partition, offset: offset)])
            }
        }

        mutating func endCommit(_ process: Int, _ kind: HistoryEvent.Kind = .ok) {
            add { HistoryEvent(process: process, kind: kind, f: "commit", timeNs: $0, error: kind == .ok ? nil : "ILLEGAL_GENERATION") }
        }

        mutating func read(_ process: Int, _ offsets: [Int32: Int64], f: String = "fetch-offsets") {
            add { HistoryEvent(process: process, kind: .invoke, f: f, timeNs: $0) }
            add {
                HistoryEvent(process: process, kind: .ok, f: f, timeNs: $0, offsets: offsets.sorted { $0.key < $1.key }.map { .init(partition: $0.key, offset: $0.value) })
            }
        }

        mutating func drain(_ offsets: [Int32: Int64]) { read(902, offsets, f: "groups-drain") }
    }

    private func kinds(_ h: History) -> [Violation.Kind] { GroupsChecker.check(h.events).violations.map(\.kind) }

    func testHandOversWithFencedZombiesAreClean() {
        var h = History()
        h.join(400, "a", generation: 1, [0, 1])
        h.read(400, [0: -1, 1: -1])
        h.commit(400, generation: 1, 0, 3)
        h.commit(400, generation: 1, 1, 2)
        // b joins: generation 2 splits the partitions; a's late commit in generation 1 is refused.
        h.join(401, "b", generation: 2, [1])
        h.join(400, "a", generation: 2, [0])
        h.commit(400, generation: 1, 1, 4, .fail)
        h.read(401, [1: 2])
        h.commit(401, generation: 2, 1, 5)
        h.commit(400, generation: 2, 0, 4, .info)  // may or may not have been written
        h.drain([0: 4, 1: 5])
        let result = GroupsChecker.check(h.events)
        XCTAssertEqual(result.violations.map(\.kind), [])
        XCTAssertTrue(result.complete)
        XCTAssertEqual(result.joins, 3)
        XCTAssertEqual(result.generations, 2)
        XCTAssertEqual(result.commitsAcknowledged, 3)
        XCTAssertEqual(result.commitsRefused, 1)
        XCTAssertEqual(result.commitsUnknown, 1)
    }

    func testTwoMembersGivenOnePartitionInOneGenerationIsSplitOwnership() {
        var h = History()
        h.join(400, "a", generation: 3, [0, 1])
        h.join(401, "b", generation: 3, [1, 2])
        h.drain([:])
        XCTAssertEqual(kinds(h), [.splitOwnership])
        // The same partitions in successive generations are hand-overs, not a split.
        var clean = History()
        clean.join(400, "a", generation: 3, [0, 1])
        clean.join(401, "b", generation: 4, [1, 2])
        clean.drain([:])
        XCTAssertEqual(kinds(clean), [])
    }

    func testAnAcknowledgedCommitReadLowerLaterIsARegression() {
        var h = History()
        h.join(400, "a", generation: 1, [0])
        h.commit(400, generation: 1, 0, 10)
        h.read(401, [0: 7])  // a coordinator that lost the commit, or served before loading it
        h.drain([0: 10])
        XCTAssertEqual(kinds(h), [.offsetRegressed])
        // Never committed at all, at the end (-1): also a regression.
        var lost = History()
        lost.join(400, "a", generation: 1, [0])
        lost.commit(400, generation: 1, 0, 10)
        lost.drain([0: -1])
        XCTAssertEqual(kinds(lost), [.offsetRegressed])
    }

    func testAReadOverlappingTheCommitMaySeeEitherValue() {
        var h = History()
        h.join(400, "a", generation: 1, [0])
        h.commit(400, generation: 1, 0, 5)
        h.beginCommit(400, generation: 1, 0, 9)
        h.read(401, [0: 5])  // invoked before the commit of 9 was acknowledged
        h.endCommit(400)
        h.drain([0: 9])
        XCTAssertEqual(kinds(h), [])
    }

    func testAnOldGenerationsLowerCommitAcceptedAfterANewerOnesIsARegression() {
        var h = History()
        h.join(400, "a", generation: 1, [0])
        h.join(401, "b", generation: 2, [0])
        h.commit(401, generation: 2, 0, 20)
        h.commit(400, generation: 1, 0, 12)  // the zombie was not fenced
        h.commit(401, generation: 2, 0, 21)
        h.drain([0: 21])
        XCTAssertEqual(kinds(h), [.offsetRegressed])
    }

    func testWithoutTheFinalReadTheRunIsIncomplete() {
        var h = History()
        h.join(400, "a", generation: 1, [0])
        XCTAssertFalse(GroupsChecker.check(h.events).complete)
    }
}
