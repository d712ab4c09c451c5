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
/// slot is free again. (Stopped datakeepers are `HungDataKeeperTests`; a sender that stops
/// writing is dropped by the servers' 60 s idle timeout.)
final class StalledPeerTests: XCTestCase {
    private func inFlight(_ address: String, _ id: String) throws -> Double {
        let page = String(decoding: try HTTP.request("GET", "http://\(address)\(Route.metrics)").body, as: UTF8.self)
        let prefix = "tydfs_datakeeper_in_flight_transfers{datakeeper=\"\(id)\"} "
        return page.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { Double($0.dropFirst(prefix.count)) } ?? -1
    }

    func testAReaderThatStopsReadingIsDroppedWithinTheBound() throws {
        let cluster = try TestCluster(datakeepers: 3, chunkSize: "64MiB")
        defer { cluster.shutdown() }
        let big = try cluster.makeFile("big", size: 128 * 1024 * 1024)
        try cluster.succeed(["put", big, "/big"])
        let addresses = try cluster.nodes().nodes.map { ($0.id.value, $0.address) }
        func busy() throws -> Bool { try addresses.contains { try inFlight($0.1, $0.0) > 0 } }

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
}
