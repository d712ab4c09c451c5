import TYDFSCore
import XCTest

/// Pages of a full chunk report, as the master assembles them.
final class ChunkReportAssemblyTests: XCTestCase {
    private let a = ChunkID(high: 1, low: 1), b = ChunkID(high: 2, low: 2), c = ChunkID(high: 3, low: 3)

    func testPagesInOrderMakeOneReportThatKeepsReplicasRecordedSinceTheRequest() throws {
        var report = ChunkReportAssembly(requestedByAnswer: 7, now: 0)
        report.replicaRecorded(c)
        XCTAssertFalse(report.isReceiving)
        XCTAssertEqual(try report.receive(reportID: "r", page: 0, anchor: 7, chunks: [a], isLast: false, now: 1), .incomplete)
        XCTAssertTrue(report.isReceiving)
        XCTAssertEqual(report.lastActivitySeconds, 1)
        XCTAssertEqual(try report.receive(reportID: "r", page: 1, anchor: 7, chunks: [b], isLast: true, now: 2),
                       .complete(chunks: [a, b], protected: [c]))
    }

    func testASnapshotTakenBeforeTheRequestIsRefused() {
        var report = ChunkReportAssembly(requestedByAnswer: 7, now: 0)
        XCTAssertThrowsError(try report.receive(reportID: "r", page: 0, anchor: 6, chunks: [], isLast: true, now: 1)) { error in
            XCTAssertEqual(error as? ChunkReportAssembly.Refusal, .notRequested)
        }
    }

    func testAPageOutOfOrderOrFromAnotherReportIsRefusedAndAFreshStartIsAccepted() throws {
        var report = ChunkReportAssembly(requestedByAnswer: 1, now: 0)
        XCTAssertThrowsError(try report.receive(reportID: "r", page: 1, anchor: 1, chunks: [], isLast: true, now: 1)) { error in
            XCTAssertEqual(error as? ChunkReportAssembly.Refusal, .outOfOrder(expected: 0))
        }
        _ = try report.receive(reportID: "r", page: 0, anchor: 1, chunks: [a], isLast: false, now: 1)
        XCTAssertThrowsError(try report.receive(reportID: "other", page: 1, anchor: 1, chunks: [], isLast: true, now: 1)) { error in
            XCTAssertEqual(error as? ChunkReportAssembly.Refusal, .outOfOrder(expected: 0))
        }
        XCTAssertThrowsError(try report.receive(reportID: "r", page: 2, anchor: 1, chunks: [], isLast: true, now: 1)) { error in
            XCTAssertEqual(error as? ChunkReportAssembly.Refusal, .outOfOrder(expected: 1))
        }
        // A restarted report (page 0 again) replaces what arrived of the old one.
        _ = try report.receive(reportID: "s", page: 0, anchor: 2, chunks: [b], isLast: false, now: 2)
        XCTAssertEqual(try report.receive(reportID: "s", page: 1, anchor: 2, chunks: [c], isLast: true, now: 3),
                       .complete(chunks: [b, c], protected: []))
    }
}
