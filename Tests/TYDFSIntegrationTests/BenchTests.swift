import Foundation
import TYDFSProtocol
import TYDFSTestSupport
import XCTest

/// `tydfs bench` as the benchmark scripts run it: the JSON they parse, cleanup, and failures that
/// are counted instead of dropped.
final class BenchTests: XCTestCase {
    private func phases(_ result: CommandResult) throws -> [String: [String: Any]] {
        let object = try JSONSerialization.jsonObject(with: result.stdout)
        return try XCTUnwrap(object as? [String: [String: Any]], result.stdoutText)
    }

    private func checkPhase(_ phase: [String: Any]?, name: String, files: Int, movesData: Bool) throws {
        let phase = try XCTUnwrap(phase, "phase \(name)")
        XCTAssertEqual(phase["files"] as? Int, files, name)
        let seconds = try XCTUnwrap(phase["seconds"] as? Double, name)
        XCTAssertGreaterThan(seconds, 0, name)
        let rate = try XCTUnwrap(phase["filesPerSecond"] as? Double, name)
        XCTAssertEqual(rate, Double(files) / seconds, accuracy: rate * 0.01, name)
        let mib = try XCTUnwrap(phase["mibPerSecond"] as? Double, name)
        if movesData { XCTAssertGreaterThan(mib, 0, name) } else { XCTAssertGreaterThanOrEqual(mib, 0, name) }
        let latency = try XCTUnwrap(phase["latencyMs"] as? [String: Double], name)
        for key in ["p50", "p90", "p99", "max"] {
            XCTAssertGreaterThanOrEqual(try XCTUnwrap(latency[key], "\(name).\(key)"), 0)
        }
        XCTAssertLessThanOrEqual(latency["p50"]!, latency["p90"]!, name)
        XCTAssertLessThanOrEqual(latency["p90"]!, latency["p99"]!, name)
        XCTAssertLessThanOrEqual(latency["p99"]!, latency["max"]! * 1.001, name)
    }

    func testBenchJSONHasEveryPhaseWithSaneNumbersAndRemovesItsFiles() throws {
        let cluster = try TestCluster(datakeepers: 3)
        defer { cluster.shutdown() }
        let result = try cluster.succeed(["bench", "--files", "40", "--size", "3000", "--concurrency", "4", "--prefix", "/b", "--json"])
        let report = try phases(result)
        XCTAssertEqual(Set(report.keys), ["put", "get", "stat", "rm"])
        try checkPhase(report["put"], name: "put", files: 40, movesData: true)
        try checkPhase(report["get"], name: "get", files: 40, movesData: true)
        try checkPhase(report["stat"], name: "stat", files: 40, movesData: false)
        try checkPhase(report["rm"], name: "rm", files: 40, movesData: false)
        XCTAssertEqual(result.stderr, "")
        let gone = try cluster.run(["ls", "/b"])
        XCTAssertNotEqual(gone.exitCode, 0, "the bench prefix is gone without --keep: \(gone.stdoutText)")

        // Files larger than a chunk (64 KiB here) go through the same in-memory path.
        let text = try cluster.succeed(["bench", "--files", "3", "--size", "150KiB", "--concurrency", "2"])
        let lines = text.stdoutText.split(separator: "\n")
        for name in ["put", "get", "stat", "rm"] {
            XCTAssertTrue(lines.contains { $0.hasPrefix(name + " ") && $0.contains(" 3 files in ") && $0.contains("files/s") && $0.contains("p99") }, text.stdoutText)
        }
    }

    func testKeepLeavesTheFilesAndFailuresAreNamedCountedAndFailTheRun() throws {
        let cluster = try TestCluster(datakeepers: 3)
        defer { cluster.shutdown() }
        let kept = try cluster.succeed(["bench", "--files", "25", "--size", "0", "--prefix", "/kept", "--keep", "--json"])
        let report = try phases(kept)
        XCTAssertEqual(Set(report.keys), ["put", "get", "stat"], "no rm phase with --keep")
        try checkPhase(report["put"], name: "put", files: 25, movesData: false)
        XCTAssertEqual(try cluster.json(ListResponse.self, ["ls", "/kept"]).entries.count, 25)

        // The same prefix again: every put meets an existing file and must say so, by path.
        let again = try cluster.run(["bench", "--files", "5", "--size", "0", "--prefix", "/kept", "--json"])
        XCTAssertEqual(again.exitCode, 1)
        for index in 0..<5 { XCTAssertTrue(again.stderr.contains("bench put /kept/\(index): "), again.stderr) }
        XCTAssertTrue(again.stderr.contains("already exists"), again.stderr)
        XCTAssertTrue(again.stderr.contains("5 operation(s) failed"), again.stderr)
        XCTAssertEqual(try phases(again)["put"]?["files"] as? Int, 0)
        XCTAssertEqual(try cluster.json(ListResponse.self, ["ls", "/kept"]).entries.count, 25, "a failed bench removes nothing it did not put")
    }
}
