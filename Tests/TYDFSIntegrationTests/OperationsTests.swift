import Foundation
import TYDFSCore
import TYDFSProtocol
import TYDFSTestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// What operators rely on, on real processes: Prometheus metrics that move, draining a
/// datakeeper (by command and by `--maintenance`), a datakeeper that leaves on SIGTERM, and
/// SIGTERM in the middle of a put.
final class OperationsTests: XCTestCase {
    private func metrics(_ baseURL: String) throws -> String {
        let response = try HTTP.request("GET", baseURL + Route.metrics)
        XCTAssertEqual(response.status, 200)
        return String(decoding: response.body, as: UTF8.self)
    }

    func testMetricsMoveWithTraffic() throws {
        let cluster = try TestCluster(datakeepers: 3)
        defer { cluster.shutdown() }
        let addresses = Dictionary(uniqueKeysWithValues: try cluster.nodes().nodes.map { ($0.id.value, "http://\($0.address)") })
        func received(_ id: String) throws -> Double {
            try XCTUnwrap(TestCluster.metricSample("tydfs_datakeeper_bytes_received_total", labels: "datakeeper=\"\(id)\"", in: try metrics(addresses[id]!)))
        }
        func sent() throws -> Double {
            try addresses.keys.reduce(0) { total, id in
                total + (try XCTUnwrap(TestCluster.metricSample("tydfs_datakeeper_bytes_sent_total", labels: "datakeeper=\"\(id)\"", in: try metrics(addresses[id]!))))
            }
        }
        let before = try addresses.keys.map { try received($0) }
        let sentBefore = try sent()
        let size = 300_000
        try cluster.succeed(["put", try cluster.makeFile("f", size: size), "/m/f"])
        // Factor 3 on 3 datakeepers: every byte reached each of them once.
        for (id, old) in zip(addresses.keys, before) { XCTAssertEqual(try received(id) - old, Double(size), id) }
        try cluster.succeed(["get", "/m/f", cluster.root + "/back"])
        XCTAssertEqual(try sent() - sentBefore, Double(size))

        let master = try metrics(cluster.masterURL)
        XCTAssertEqual(TestCluster.metricSample("tydfs_master_files", in: master), 1)
        XCTAssertEqual(TestCluster.metricSample("tydfs_master_files_committed_total", in: master), 1)
        XCTAssertEqual(TestCluster.metricSample("tydfs_master_bytes_committed_total", in: master), Double(size))
        XCTAssertEqual(TestCluster.metricSample("tydfs_master_datakeepers", labels: "state=\"alive\"", in: master), 3)
        XCTAssertEqual(TestCluster.metricSample("tydfs_master_datakeepers", labels: "state=\"dead\"", in: master), 0)
        XCTAssertEqual(TestCluster.metricSample("tydfs_master_under_replicated_chunks", in: master), 0)
        XCTAssertTrue(master.contains("tydfs_http_requests_total{http_route=\"\(Route.openUploads)\",http_request_method=\"POST\",http_response_status_code=\"200\"}"), master)
        XCTAssertTrue(master.contains("tydfs_http_request_duration_seconds_bucket"), master)

        // A dead datakeeper shows in the gauges at the next scrape.
        cluster.killDataKeeper("dk3")
        try cluster.waitUntil("dk3 counted dead", timeout: 10) {
            TestCluster.metricSample("tydfs_master_datakeepers", labels: "state=\"dead\"", in: try self.metrics(cluster.masterURL)) == 1
        }
    }

    func testDrainCopiesEveryChunkAwayBeforeRetiring() throws {
        let cluster = try TestCluster(datakeepers: 4)
        defer { cluster.shutdown() }
        for index in 0..<4 {
            try cluster.succeed(["put", try cluster.makeFile("f\(index)", size: 200_000, seed: UInt64(index)), "/d/f\(index)"])
        }
        let held = cluster.storedChunks(on: "dk1")
        XCTAssertFalse(held.isEmpty, "dk1 should hold some chunks of 16 chunks on 4 datakeepers at factor 3")

        let status = try cluster.json(DrainStatus.self, ["drain", "dk1"])
        XCTAssertEqual(status.state, .retired)
        XCTAssertEqual(status.chunksRemaining, 0)
        XCTAssertEqual(try cluster.nodes().nodes.first { $0.id.value == "dk1" }?.state, .retired)
        // Every chunk dk1 holds is intact on 3 other datakeepers.
        for chunk in held {
            let others = ["dk2", "dk3", "dk4"].filter { cluster.isIntact(chunk, on: $0) }
            XCTAssertEqual(others.count, 3, "chunk \(chunk) is on \(others) besides dk1")
        }
        // A retired datakeeper takes no new chunks.
        try cluster.succeed(["put", try cluster.makeFile("new", size: 200_000, seed: 9), "/d/new"])
        for chunk in try cluster.stat("/d/new").chunks {
            XCTAssertFalse(chunk.replicas.contains { $0.id.value == "dk1" }, "a new chunk went to the retired dk1")
        }
        // Switching it off loses nothing and leaves nothing under-replicated.
        cluster.killDataKeeper("dk1")
        XCTAssertEqual(try cluster.nodes().nodes.first { $0.id.value == "dk1" }?.state, .retired, "retired stays retired when off")
        try cluster.waitUntil("dk1 no longer heartbeating", timeout: 10) {
            try cluster.nodes().nodes.first { $0.id.value == "dk1" }?.alive == false
        }
        let report = try cluster.fsck()
        XCTAssertTrue(report.healthy)
        XCTAssertEqual(report.underReplicatedChunks, 0)
        XCTAssertEqual(report.missingChunks, 0)
        for index in 0..<4 {
            try cluster.succeed(["get", "/d/f\(index)", cluster.root + "/back\(index)"])
            XCTAssertEqual(try cluster.contents(cluster.root + "/back\(index)"), try cluster.contents(cluster.root + "/f\(index)"))
        }

        // An unknown id is a clear error; too few datakeepers left says why the drain waits.
        let unknown = try cluster.run(["drain", "dk9"])
        XCTAssertEqual(unknown.exitCode, 1)
        XCTAssertTrue(unknown.stderr.contains("no datakeeper dk9"), unknown.stderr)
        let blocked = try cluster.json(DrainStatus.self, ["drain", "dk2", "--no-wait"])
        XCTAssertEqual(blocked.state, .draining)
        XCTAssertNotNil(blocked.blockedBy)
        XCTAssertEqual(try cluster.json(DrainStatus.self, ["drain", "dk2", "--cancel"]).state, .alive)
    }

    func testLeavingOnSIGTERMAndMaintenanceMode() throws {
        // A heartbeat timeout far longer than the test's waits: only a leave can make a
        // datakeeper dead this fast.
        let cluster = try TestCluster(datakeepers: 4, heartbeatTimeoutSeconds: 60)
        defer { cluster.shutdown() }
        for index in 0..<3 {
            try cluster.succeed(["put", try cluster.makeFile("f\(index)", size: 200_000, seed: UInt64(index)), "/l/f\(index)"])
        }
        cluster.killDataKeeper("dk2", signal: SIGTERM)
        try cluster.waitUntil("dk2 dead after it left", timeout: 10) {
            try cluster.nodes().nodes.first { $0.id.value == "dk2" }?.state == .dead
        }
        let events = try JSONDecoder().decode(EventsResponse.self, from: try HTTP.request("GET", cluster.masterURL + Route.events, signer: try cluster.adminSigner()).body)
        XCTAssertTrue(events.events.contains { $0.kind == .datakeeperLeft && $0.message.contains("dk2") }, "\(events.events)")
        // Repair starts at once: every chunk back at its factor on the 3 others.
        try cluster.waitUntil("repaired without dk2", timeout: 20) { try cluster.fsck().underReplicatedChunks == 0 }

        // Back with --maintenance: it asks to be drained, and once drained it exits by itself.
        try cluster.startDataKeeper("dk2", extraArguments: ["--maintenance"])
        let process = try XCTUnwrap(cluster.dataKeeperProcess("dk2"))
        let deadline = Date().addingTimeInterval(30)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        XCTAssertFalse(process.isRunning, "a drained datakeeper in maintenance mode should exit")
        XCTAssertEqual(process.terminationStatus, 0)
        let after = try JSONDecoder().decode(EventsResponse.self, from: try HTTP.request("GET", cluster.masterURL + Route.events, signer: try cluster.adminSigner()).body)
        let kinds = after.events.filter { $0.message.contains("dk2") }.map(\.kind)
        XCTAssertTrue(kinds.contains(.drainStarted) && kinds.contains(.drainFinished), "\(kinds)")
        let gone = try XCTUnwrap(try cluster.nodes().nodes.first { $0.id.value == "dk2" })
        XCTAssertEqual(gone.state, .retired, "a retired datakeeper that left stays retired")
        XCTAssertFalse(gone.alive)
        XCTAssertTrue(try cluster.fsck().healthy)
    }

    func testSIGTERMDuringPut() throws {
        let cluster = try TestCluster(datakeepers: 4, chunkSize: "4MiB")
        defer { cluster.shutdown() }
        let big = try cluster.makeFile("big", size: 96 * 1024 * 1024)
        func temporaryFiles(_ id: String) -> [String] {
            (try? FileManager.default.contentsOfDirectory(atPath: cluster.dataDirectory(of: id) + "/tmp")) ?? []
        }

        // A datakeeper stopped mid-put finishes or aborts its transfers; the put completes on the others.
        let put = try cluster.start(["put", big, "/big"])
        try cluster.waitUntil("the put under way", timeout: 20) { cluster.storedChunkCount() >= 3 }
        cluster.killDataKeeper("dk1", signal: SIGTERM)
        put.waitUntilExit()
        if put.terminationStatus == 0 {
            // dk1 finished the chunks it had begun before it left; the master copies them to
            // the others at once.
            try cluster.waitUntil("every chunk back at its factor", timeout: 20) {
                try cluster.stat("/big").chunks.allSatisfy { $0.replicas.filter(\.alive).count == 3 }
            }
            try cluster.succeed(["get", "/big", cluster.root + "/big.back"])
            XCTAssertEqual(try cluster.contents(cluster.root + "/big.back"), try cluster.contents(big))
        } else {
            XCTAssertEqual(try cluster.run(["stat", "/big"]).exitCode, 1, "a failed put left a file behind")
        }
        XCTAssertEqual(temporaryFiles("dk1"), [], "dk1 left temporary files")

        // The client itself stopped mid-put: nothing is committed, and no datakeeper keeps a temporary file.
        let second = try cluster.start(["put", big, "/big2"])
        let stored = cluster.storedChunkCount()
        try cluster.waitUntil("the second put under way", timeout: 20) { cluster.storedChunkCount() > stored }
        kill(second.processIdentifier, SIGTERM)
        second.waitUntilExit()
        XCTAssertEqual(second.terminationStatus, 128 + SIGTERM, "an interrupted client exits with 128 + the signal")
        XCTAssertEqual(try cluster.run(["stat", "/big2"]).exitCode, 1)
        try cluster.waitUntil("no temporary files", timeout: 10) {
            ["dk2", "dk3", "dk4"].allSatisfy { temporaryFiles($0).isEmpty }
        }

        // A get stopped half-way leaves no partial file behind either.
        guard put.terminationStatus == 0 else { return }
        let folder = cluster.root + "/downloads"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let get = try cluster.start(["get", "/big", folder + "/big"])
        try cluster.waitUntil("the get under way", timeout: 20) {
            !((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).isEmpty || !get.isRunning
        }
        kill(get.processIdentifier, SIGTERM)
        get.waitUntilExit()
        let left = try FileManager.default.contentsOfDirectory(atPath: folder)
        if get.terminationStatus == 0 {
            XCTAssertEqual(left, ["big"], "a get that finished first leaves exactly its file")
        } else {
            XCTAssertEqual(get.terminationStatus, 128 + SIGTERM)
            XCTAssertEqual(left, [], "an interrupted get left \(left)")
        }
    }
}
