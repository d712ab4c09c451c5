import Foundation
import NIOConcurrencyHelpers
import TYDFSCore
import TYDFSProtocol
import TYDFSTestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The master's group commit under fire: concurrent puts, a master killed among them.
final class GroupCommitTests: XCTestCase {
    func testAMasterKilledDuringSixteenConcurrentPutsKeepsEveryAcknowledgedFileAndNoHalfFile() throws {
        let cluster = try TestCluster(datakeepers: 3, chunkSize: "4KiB")
        defer { cluster.shutdown() }
        // Files of one to three chunks, so a half-committed file would show as a missing chunk.
        let sources = try (0..<16).map { try cluster.makeFile("w\($0)", size: 4096 * (1 + $0 % 3) - 100, seed: UInt64($0 + 1)) }
        let acknowledged = NIOLockedValueBox<[String: String]>([:])
        let stop = NIOLockedValueBox(false)
        let started = Date()
        // The master dies once two rounds of puts are acknowledged (however long that takes on a
        // loaded machine), with the next ones under way.
        DispatchQueue.global().async {
            while acknowledged.withLockedValue({ $0.count }) < 32, Date().timeIntervalSince(started) < 60 { usleep(20_000) }
            cluster.killMaster(signal: SIGKILL)
            stop.withLockedValue { $0 = true }
        }
        DispatchQueue.concurrentPerform(iterations: 16) { worker in
            var round = 0
            while !stop.withLockedValue({ $0 }) {
                let remote = "/k/w\(worker)-\(round)"
                if let result = try? cluster.run(["put", sources[worker], remote]), result.exitCode == 0 {
                    acknowledged.withLockedValue { $0[remote] = sources[worker] }
                }
                round += 1
            }
        }
        let acked = acknowledged.withLockedValue { $0 }
        XCTAssertGreaterThanOrEqual(acked.count, 32, "puts were acknowledged before the kill (\(Date().timeIntervalSince(started)) s)")
        try cluster.startMaster()
        try cluster.waitUntil("3 datakeepers alive again", timeout: 20) { try cluster.aliveDataKeepers().count == 3 }
        let listed = try cluster.json(ListResponse.self, ["ls", "/k"]).entries.map(\.path)
        for remote in acked.keys {
            XCTAssertTrue(listed.contains(remote), "acknowledged \(remote) survived the kill")
        }
        // Every file visible, acknowledged or not, is whole: a half-committed file cannot read back.
        for remote in listed {
            let worker = Int(remote.dropFirst("/k/w".count).split(separator: "-")[0])!
            let out = cluster.root + "/out-" + remote.replacingOccurrences(of: "/", with: "_")
            try cluster.succeed(["get", remote, out])
            XCTAssertEqual(try cluster.contents(out), try cluster.contents(sources[worker]), "\(remote) reads back byte-exact")
        }
    }
}
