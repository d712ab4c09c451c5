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
        // 2,500 chunks on each datakeeper: three heartbeat answers' worth of deletion orders each.
        let local = try cluster.makeFile("big", size: 2500 * 4096)
        try cluster.succeed(["put", local, "/big"])
        let before = try cluster.nodes().nodes.map(\.chunkCount)
        XCTAssertEqual(before, [2500, 2500, 2500])
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
