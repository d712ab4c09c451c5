import Foundation
import TYDFSCore
import TYDFSProtocol
import TYDFSTestSupport
import XCTest

/// Deleting many chunks at once happens beside the heartbeats, never inside them.
final class LargeRemoveTests: XCTestCase {
    func testALargeRmDoesNotDelayHeartbeatsAndEveryChunkIsDeleted() throws {
        let cluster = try TestCluster(datakeepers: 3, chunkSize: "4KiB", heartbeatTimeoutSeconds: 5)
        defer { cluster.shutdown() }
        // 1,200 chunks on each datakeeper: more than one heartbeat answer's worth of deletion
        // orders each (`Limits.deletionsPerHeartbeat`).
        let local = try cluster.makeFile("big", size: 1200 * 4096)
        try cluster.succeed(["put", local, "/big"])
        let before = try cluster.nodes().nodes.map(\.chunkCount)
        XCTAssertEqual(before, [1200, 1200, 1200])
        try cluster.succeed(["rm", "/big"])
        var worstSilence = 0.0
        try cluster.waitUntil("every chunk deleted", timeout: 60, interval: 0.05) {
            let nodes = try cluster.nodes().nodes
            worstSilence = max(worstSilence, nodes.map(\.secondsSinceHeartbeat).max() ?? 0)
            XCTAssertTrue(nodes.allSatisfy(\.alive), "no datakeeper is declared dead while it deletes")
            return nodes.allSatisfy { $0.chunkCount == 0 && $0.pendingDeletions == 0 }
        }
        // Heartbeats go every second (a loaded 2-core machine may delay one a little); a heartbeat
        // loop that waited for thousands of deletions would show here.
        XCTAssertLessThan(worstSilence, 3.0, "the longest silence between heartbeats while deleting was \(worstSilence) s")
        XCTAssertEqual(cluster.storedChunkCount(), 0, "no chunk is left on any disk")
    }
}
