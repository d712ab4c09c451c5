import Foundation
import TYDFSCore
import TYDFSProtocol
import TYDFSTestSupport
import XCTest

/// Chunks large enough to be read in ranges from several replicas at once (16 MiB chunks: two
/// ranges of 8 MiB each), each range verified block by block.
final class RangeReadTests: XCTestCase {
    let chunk = 16 * 1024 * 1024
    let block = Int(ChunkFrame.blockBytes)

    func testRangesOfChunksRoundTripByteExactAroundEveryBlockAndChunkBoundary() throws {
        let cluster = try TestCluster(datakeepers: 3, chunkSize: "16MiB")
        defer { cluster.shutdown() }
        for (index, size) in [chunk - 1, chunk + 1, 2 * chunk + block + 7].enumerated() {
            let local = try cluster.makeFile("in-\(size)", size: size, seed: UInt64(index + 20))
            let remote = "/ranges/\(size)"
            try cluster.succeed(["put", local, remote])
            let info = try cluster.stat(remote)
            for chunkInfo in info.chunks {
                for replica in chunkInfo.replicas {
                    XCTAssertEqual(cluster.storedFrame(chunkInfo.id, on: replica.id.value)?.frameBytes,
                                   Int(ChunkFrame.frameBytes(dataBytes: chunkInfo.sizeBytes)), "a checksum per block on disk")
                    XCTAssertTrue(cluster.isIntact(chunkInfo.id, on: replica.id.value))
                }
            }
            try cluster.waitUntilIdle()
            let before = try servedCounts(cluster)
            try cluster.succeed(["get", remote, cluster.root + "/out-\(size)"])
            XCTAssertEqual(try cluster.contents(cluster.root + "/out-\(size)"), try cluster.contents(local), "size \(size)")
            // Every chunk of at least two ranges' worth was read as ranges, from different datakeepers.
            let ranges = info.chunks.map { ChunkRange.split(dataBytes: $0.sizeBytes, parts: 3, minimumBytes: Limits.minimumRangeBytes).count }
            XCTAssertGreaterThan(ranges.max() ?? 0, 1, "size \(size) is read in ranges")
            var deltas: [String: Int64] = [:]
            try cluster.waitUntil("every range read reported by heartbeats", timeout: 5) {
                deltas = try servedCounts(cluster).mapValues { $0 } .reduce(into: [:]) { $0[$1.key] = $1.value - (before[$1.key] ?? 0) }
                return deltas.values.reduce(0, +) == Int64(ranges.reduce(0, +))
            }
            XCTAssertGreaterThanOrEqual(deltas.values.filter { $0 > 0 }.count, 2, "ranges of one file came from \(deltas)")
            XCTAssertEqual(try cluster.succeed(["get", remote, "-"]).stdout, try cluster.contents(local), "size \(size) to standard output")
        }
    }

    func testAFlippedByteInABlockIsCaughtAndItsRangeIsReadFromAnotherReplica() throws {
        // No scrubbing, so the reader is the one to meet the damage.
        let cluster = try TestCluster(datakeepers: 3, chunkSize: "16MiB", dataKeeperArguments: ["--scrub-interval", "1h"])
        defer { cluster.shutdown() }
        let local = try cluster.makeFile("rot", size: chunk, seed: 31)
        try cluster.succeed(["put", local, "/rot"])
        try cluster.waitUntilIdle()
        let target = try cluster.stat("/rot").chunks[0]
        // The first range (blocks 0–127) is read first from the first replica listed, the second
        // (blocks 128–255) from the second: damage one block in each of them.
        let first = target.replicas[0].id.value, second = target.replicas[1].id.value
        try cluster.flipByte(of: target.id, on: first, at: UInt64(5 * block + 77))
        try cluster.flipByte(of: target.id, on: second, at: UInt64(200 * block + 3))
        XCTAssertFalse(cluster.isIntact(target.id, on: first))
        XCTAssertFalse(cluster.isIntact(target.id, on: second))

        let get = try cluster.succeed(["get", "--verbose", "/rot", cluster.root + "/rot.out"])
        XCTAssertEqual(try cluster.contents(cluster.root + "/rot.out"), try cluster.contents(local))
        XCTAssertTrue(get.stderr.contains("replica failed, trying the next"), get.stderr)
        // The datakeepers that held bad blocks took them out of service and told the master,
        // which has both replaced from the good copy.
        try cluster.waitUntil("the bad replicas replaced", timeout: 20, interval: 0.2) {
            let chunkInfo = try cluster.stat("/rot").chunks[0]
            let live = chunkInfo.replicas.filter(\.alive)
            return live.count == 3 && live.allSatisfy { cluster.isIntact(chunkInfo.id, on: $0.id.value) }
        }
        for victim in [first, second] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: cluster.dataDirectory(of: victim) + "/corrupt/\(target.id.value)"),
                          "the bad copy on \(victim) is kept aside, not served")
        }
    }

    private func servedCounts(_ cluster: TestCluster) throws -> [String: Int64] {
        Dictionary(uniqueKeysWithValues: try cluster.nodes().nodes.map { ($0.id.value, $0.chunksServed) })
    }
}
