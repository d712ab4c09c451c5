import Foundation
import TYDFSProtocol
import TYDFSTestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// A peer that stops mid-transfer on the reading side: a client stopped (SIGSTOP) in the middle
/// of a get no longer holds the datakeepers' responses once `Limits.unacknowledgedSendSeconds`
/// (20 s) has passed: the kernel drops the connection (`TCP_USER_TIMEOUT`) and the transfer
/// slot is free again. A client stopped in the middle of a put (a sender that stops writing) is
/// dropped by every datakeeper of its pipeline once `--idle-timeout` has passed. (Stopped
/// datakeepers are `HungDataKeeperTests`.)
final class StalledPeerTests: XCTestCase {
    /// Whether any of the datakeepers at `addresses` (id, address) has a transfer under way.
    private func transfersInFlight(_ cluster: TestCluster, _ addresses: [(String, String)]) throws -> Bool {
        try addresses.contains { id, address in
            try (cluster.dataKeeperMetric("tydfs_datakeeper_in_flight_transfers", of: id, at: address) ?? -1) > 0
        }
    }


    func testAReaderThatStopsReadingIsDroppedWithinTheBound() throws {
        let cluster = try TestCluster(datakeepers: 3, chunkSize: "64MiB")
        defer { cluster.shutdown() }
        let big = try cluster.makeFile("big", size: 128 * 1024 * 1024)
        try cluster.succeed(["put", big, "/big"])
        let addresses = try cluster.nodes().nodes.map { ($0.id.value, $0.address) }
        func busy() throws -> Bool { try transfersInFlight(cluster, addresses) }

        let reader = try cluster.start(["get", "/big", cluster.root + "/big.back"])
        try cluster.waitUntil("the get reading", timeout: 20, interval: 0.02) { try busy() }
        kill(reader.processIdentifier, SIGSTOP)
        defer {
            kill(reader.processIdentifier, SIGKILL)
            kill(reader.processIdentifier, SIGCONT)
        }
        let stopped = Date()
        // Responses bigger than the sockets' buffers are now stuck on the datakeepers' side.
        Thread.sleep(forTimeInterval: 2)
        XCTAssertTrue(try busy(), "the stopped reader's responses should be stuck on the datakeepers")
        try cluster.waitUntil("every transfer slot free again", timeout: 45, interval: 0.5) { try !busy() }
        let waited = Date().timeIntervalSince(stopped)
        XCTAssertLessThan(waited, 40, "a stopped reader held a datakeeper for \(waited) s")
        // The datakeepers serve others all along.
        try cluster.succeed(["put", try cluster.makeFile("small", size: 1000), "/small"])
        try cluster.succeed(["get", "/small", cluster.root + "/small.back"])
    }

    func testAWriterThatStopsWritingIsDroppedAfterTheIdleTimeoutAndLeavesNothingBehind() throws {
        let cluster = try TestCluster(
            datakeepers: 3, chunkSize: "64MiB", heartbeatTimeoutSeconds: 10,
            dataKeeperArguments: ["--idle-timeout", "2s"], masterArguments: ["--idle-timeout", "2s"])
        defer { cluster.shutdown() }
        let addresses = try cluster.nodes().nodes.map { ($0.id.value, $0.address) }
        func busy() throws -> Bool { try transfersInFlight(cluster, addresses) }
        func temporaries() throws -> [String] {
            try addresses.flatMap { id, _ in try FileManager.default.contentsOfDirectory(atPath: cluster.dataDirectory(of: id) + "/tmp") }
        }

        let big = try cluster.makeFile("big", size: 256 * 1024 * 1024)
        let writer = try cluster.start(["put", big, "/big"])
        try cluster.waitUntil("the put sending", timeout: 20, interval: 0.01) { try busy() }
        kill(writer.processIdentifier, SIGSTOP)
        defer {
            kill(writer.processIdentifier, SIGKILL)
            kill(writer.processIdentifier, SIGCONT)
        }
        let stopped = Date()
        try cluster.waitUntil("every transfer slot free again", timeout: 30, interval: 0.1) { try !busy() }
        let waited = Date().timeIntervalSince(stopped)
        XCTAssertLessThan(waited, 8, "a stopped writer held a datakeeper for \(waited) s with --idle-timeout 2s")
        // The half-received chunk's temporary file is gone on every hop, and nothing was committed.
        try cluster.waitUntil("no temporary chunk file left", timeout: 5) { try temporaries().isEmpty }
        XCTAssertNotEqual(try cluster.run(["stat", "/big"]).exitCode, 0, "an unfinished put must not be visible")
        // The datakeepers serve others all along.
        let small = try cluster.makeFile("small", size: 1000)
        try cluster.succeed(["put", small, "/small"])
        XCTAssertEqual(try cluster.succeed(["get", "/small", "-"]).stdout, try cluster.contents(small))
    }

    func testAMasterStoppedInTheMiddleOfAPutHoldsItOnlyWhileStoppedAndDeclaresNoOneDead() throws {
        let cluster = try TestCluster(datakeepers: 3, chunkSize: "256KiB")
        defer { cluster.shutdown() }
        let local = try cluster.makeFile("big", size: 48 * 1024 * 1024, seed: 5)
        let put = try cluster.start(["put", local, "/big"])
        try cluster.waitUntil("the first chunks stored", timeout: 20, interval: 0.02) { cluster.storedChunkCount() >= 3 }
        // Longer than the heartbeat timeout (2 s): when it wakes, every datakeeper's last heartbeat
        // is old, and the ones queued in its sockets are not read yet.
        cluster.pauseMaster()
        Thread.sleep(forTimeInterval: 5)
        cluster.resumeMaster()
        put.waitUntilExit()
        XCTAssertEqual(put.terminationStatus, 0, "the put goes on once the master answers again: \(cluster.logs(of: "cli").last ?? "")")
        XCTAssertTrue(try cluster.stat("/big").chunks.allSatisfy { $0.replicas.count == 3 }, "every chunk at the full factor")
        try cluster.succeed(["get", "/big", cluster.root + "/big.back"])
        XCTAssertEqual(try cluster.contents(cluster.root + "/big.back"), try cluster.contents(local))
        // The master's own pause is no reason to declare anyone dead and repair: it knows it paused.
        XCTAssertTrue(cluster.logs(of: "master").joined().contains("the master was not running for a while"))
        let events = try JSONDecoder().decode(
            EventsResponse.self, from: try HTTP.request("GET", cluster.masterURL + Route.events, signer: try cluster.adminSigner()).body)
        XCTAssertFalse(events.events.contains { $0.kind == .datakeeperDead }, "after its own pause: \(events.events.map(\.message))")
    }
}
