import Foundation
import TYDFSCore
import TYDFSProtocol
import TYDFSTestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Every chunk returns to its replication factor on healthy datakeepers after crashes,
/// restarts, bit rot and lost files — checked with real processes and `tydfs fsck`.
final class SelfHealingTests: XCTestCase {
    let chunk = 64 * 1024

    /// Puts `count` files of mixed sizes (some of several chunks); returns remote → local path.
    private func putFiles(_ cluster: TestCluster, count: Int, prefix: String = "/data") throws -> [String: String] {
        var files: [String: String] = [:]
        for index in 0..<count {
            let size = [0, 1, 1000, chunk - 1, chunk, chunk + 1, 3 * chunk + 17, 7 * chunk][index % 8] + index
            let local = try cluster.makeFile("f\(index)", size: size, seed: UInt64(100 + index))
            try cluster.succeed(["put", local, "\(prefix)/f\(index)"])
            files["\(prefix)/f\(index)"] = local
        }
        return files
    }

    /// Waits until `condition` holds and fsck reports every chunk at exactly its factor;
    /// returns the seconds it took.
    @discardableResult
    private func waitForHealthy(
        _ cluster: TestCluster, within seconds: Double, _ what: String, once condition: () throws -> Bool = { true }
    ) throws -> Double {
        let started = Date()
        var last: FsckReport?
        do {
            try cluster.waitUntil(what, timeout: seconds, interval: 0.2) {
                guard try condition() else { return false }
                let report = try cluster.fsck()
                last = report
                return report.healthy && report.problems.isEmpty && report.healthyChunks == report.chunks
            }
        } catch {
            XCTFail("\(error); last fsck: \(String(describing: last?.problems.prefix(5)))")
            throw error
        }
        return Date().timeIntervalSince(started)
    }

    private func assertAllReadBack(_ cluster: TestCluster, _ files: [String: String], file: StaticString = #filePath, line: UInt = #line) throws {
        for (remote, local) in files {
            let out = cluster.root + "/check-" + remote.replacingOccurrences(of: "/", with: "_")
            try cluster.succeed(["get", remote, out])
            XCTAssertEqual(try cluster.contents(out), try cluster.contents(local), remote, file: file, line: line)
        }
    }

    /// Whether every live replica of every chunk of `files` is an intact chunk file.
    private func everyReplicaIsIntact(_ cluster: TestCluster, _ files: [String]) throws -> Bool {
        try files.allSatisfy { remote in
            try cluster.stat(remote).chunks.allSatisfy { chunkInfo in
                chunkInfo.replicas.filter(\.alive).allSatisfy {
                    cluster.isIntact(chunkInfo.id, on: $0.id.value)
                }
            }
        }
    }

    private func assertEveryReplicaOnDiskIsIntact(_ cluster: TestCluster, _ files: [String: String], file: StaticString = #filePath, line: UInt = #line) throws {
        for remote in files.keys {
            for chunkInfo in try cluster.stat(remote).chunks {
                XCTAssertEqual(chunkInfo.replicas.filter(\.alive).count, 3, "\(remote) #\(chunkInfo.index)", file: file, line: line)
                for replica in chunkInfo.replicas where replica.alive {
                    XCTAssertTrue(cluster.isIntact(chunkInfo.id, on: replica.id.value),
                                  "\(remote) #\(chunkInfo.index) on \(replica.id)", file: file, line: line)
                }
            }
        }
    }

    func testKilledDataKeepersAreRepairedWithinTheTimeoutPlusTenSecondsTwiceOver() throws {
        let cluster = try TestCluster(datakeepers: 5, heartbeatTimeoutSeconds: 2)
        defer { cluster.shutdown() }
        let files = try putFiles(cluster, count: 30)
        try waitForHealthy(cluster, within: 5, "healthy before any failure")

        for victim in ["dk1", "dk2"] {
            cluster.killDataKeeper(victim, signal: SIGKILL)
            let seconds = try waitForHealthy(cluster, within: 2 + 10, "repair after \(victim) died") {
                try !cluster.aliveDataKeepers().contains(victim)
            }
            print("repair after kill -9 of \(victim): \(String(format: "%.1f", seconds)) s")
            let report = try cluster.fsck()
            XCTAssertTrue(report.healthy)
            try assertEveryReplicaOnDiskIsIntact(cluster, files)
            for remote in files.keys {
                XCTAssertFalse(try cluster.stat(remote).chunks.contains { chunkInfo in
                    chunkInfo.replicas.filter(\.alive).contains { $0.id.value == victim }
                })
            }
            try assertAllReadBack(cluster, files)
        }
        XCTAssertEqual(try cluster.aliveDataKeepers(), ["dk3", "dk4", "dk5"])
    }

    func testNodesShowsTheRepairWorkAndNoDataKeeperExceedsTheRepairLimit() throws {
        let cluster = try TestCluster(datakeepers: 4, chunkSize: "64KiB", heartbeatTimeoutSeconds: 2)
        cluster.masterArguments += ["--max-repairs-per-datakeeper", "1"]
        cluster.killMaster(signal: SIGTERM)
        try cluster.startMaster()
        defer { cluster.shutdown() }
        // The restarted master knows no datakeeper until each heartbeats again.
        try cluster.waitUntil("4 datakeepers alive", timeout: 20) { try cluster.aliveDataKeepers().count == 4 }
        let local = try cluster.makeFile("many", size: 24 * 64 * 1024, seed: 17)
        try cluster.succeed(["put", local, "/many"])
        cluster.killDataKeeper("dk1", signal: SIGKILL)
        var most = 0, total = 0
        // One copy per datakeeper at a time, each waiting for heartbeats: repair takes several
        // seconds, and every look at `tydfs nodes` meanwhile must respect the limit.
        try waitForHealthy(cluster, within: 30, "repair with one copy per datakeeper") {
            let nodes = try cluster.nodes().nodes
            most = max(most, nodes.map(\.repairCopies).max() ?? 0)
            total = max(total, nodes.map(\.repairCopies).reduce(0, +))
            return !nodes.contains { $0.id.value == "dk1" && $0.alive }
        }
        XCTAssertGreaterThan(total, 0, "tydfs nodes showed repair copies while they ran")
        XCTAssertEqual(most, 1, "no datakeeper took part in more than one copy at once")
        XCTAssertTrue(try cluster.succeed(["nodes"]).stdoutText.contains("REPAIRS"))
        try assertAllReadBack(cluster, ["/many": local])
    }

    func testTheChunksOfAnAbandonedUploadAreDeletedAfterTheGracePeriod() throws {
        let cluster = try TestCluster(datakeepers: 3, chunkSize: "256KiB")
        cluster.masterArguments += ["--upload-timeout", "2s"]
        cluster.killMaster(signal: SIGTERM)
        try cluster.startMaster()
        defer { cluster.shutdown() }
        let local = try cluster.makeFile("abandoned", size: 48 * 1024 * 1024, seed: 9)
        let put = try cluster.start(["put", local, "/abandoned"])
        try cluster.waitUntil("some chunks stored", timeout: 10) { cluster.storedChunkCount() > 0 }
        TestCluster.end(put, signal: SIGKILL)
        XCTAssertGreaterThan(cluster.storedChunkCount(), 0)
        // Upload timeout 2 s + orphan grace 1 s + chunk reports every 2 s.
        try cluster.waitUntil("the abandoned chunks deleted", timeout: 15) { cluster.storedChunkCount() == 0 }
        XCTAssertEqual(try cluster.json(ListResponse.self, ["ls"]).entries.count, 0)
    }

    func testARestartedDataKeeperLosesItsExtraReplicasAndTheChunksOfFilesDeletedMeanwhile() throws {
        let cluster = try TestCluster(datakeepers: 4, heartbeatTimeoutSeconds: 2)
        defer { cluster.shutdown() }
        let files = try putFiles(cluster, count: 8)
        let onDK1 = try files.keys.flatMap { remote in
            try cluster.stat(remote).chunks.filter { $0.replicas.contains { $0.id.value == "dk1" } }.map { (remote, $0.id) }
        }
        XCTAssertFalse(onDK1.isEmpty)
        cluster.killDataKeeper("dk1", signal: SIGKILL)
        try waitForHealthy(cluster, within: 12, "repair while dk1 is down") { try !cluster.aliveDataKeepers().contains("dk1") }

        let deleted = ["/data/f1", "/data/f6", "/data/f7"]
        let deletedChunks = try deleted.flatMap { try cluster.stat($0).chunks.map(\.id) }
        for remote in deleted { try cluster.succeed(["rm", remote]) }
        let kept = files.filter { !deleted.contains($0.key) }

        try cluster.startDataKeeper("dk1")
        try cluster.waitUntil("dk1 alive", timeout: 5) { try cluster.aliveDataKeepers().contains("dk1") }
        try waitForHealthy(cluster, within: 15, "extra replicas trimmed")
        try cluster.waitUntil("deleted files' chunks gone from dk1", timeout: 10) {
            deletedChunks.allSatisfy { !cluster.holds($0, on: "dk1") }
        }
        try cluster.waitUntil("no deletion left pending", timeout: 10) {
            try cluster.nodes().nodes.allSatisfy { $0.pendingDeletions == 0 }
        }
        let report = try cluster.fsck()
        XCTAssertEqual(report.overReplicatedChunks, 0)
        XCTAssertEqual(report.healthyChunks, report.chunks)
        for remote in kept.keys {
            for chunkInfo in try cluster.stat(remote).chunks {
                XCTAssertEqual(chunkInfo.replicas.count, 3, "exactly 3 replicas of \(remote) #\(chunkInfo.index)")
            }
        }
        try assertEveryReplicaOnDiskIsIntact(cluster, kept)
        try assertAllReadBack(cluster, kept)
    }

    func testAFlippedByteIsServedAroundAndTheBadReplicaIsReplaced() throws {
        let cluster = try TestCluster(datakeepers: 4)
        defer { cluster.shutdown() }
        let local = try cluster.makeFile("rot", size: 3 * chunk + 100, seed: 11)
        try cluster.succeed(["put", local, "/rot"])
        let target = try cluster.stat("/rot").chunks[1]
        let victim = target.replicas[0].id.value
        try cluster.flipByte(of: target.id, on: victim, at: 1000)
        XCTAssertFalse(cluster.isIntact(target.id, on: victim))

        // The reader never gets the bad bytes, wherever it reads from.
        XCTAssertEqual(try cluster.succeed(["get", "/rot", "-"]).stdout, try cluster.contents(local))
        try waitForHealthy(cluster, within: 10, "the bad replica replaced") { try everyReplicaIsIntact(cluster, ["/rot"]) }
        try assertEveryReplicaOnDiskIsIntact(cluster, ["/rot": local])
        XCTAssertTrue(FileManager.default.fileExists(atPath: cluster.dataDirectory(of: victim) + "/corrupt/\(target.id.value)"),
                      "the bad copy is kept aside, not served")
        try assertAllReadBack(cluster, ["/rot": local])
    }

    func testADataKeeperBackWithAnEmptyDiskNeverCausesGoodReplicasToBeTrimmed() throws {
        let cluster = try TestCluster(datakeepers: 4, heartbeatTimeoutSeconds: 2)
        defer { cluster.shutdown() }
        let files = try putFiles(cluster, count: 8)
        cluster.killDataKeeper("dk1", signal: SIGKILL)
        try waitForHealthy(cluster, within: 12, "repair while dk1 is down") { try !cluster.aliveDataKeepers().contains("dk1") }
        let before = ["dk2", "dk3", "dk4"].map(cluster.storedChunks(on:))
        // dk1 returns under its old name with its disk wiped: its recorded replicas are gone.
        try cluster.wipeChunks(on: "dk1")
        try cluster.startDataKeeper("dk1")
        try cluster.waitUntil("dk1 reported", timeout: 5) { try cluster.aliveDataKeepers().contains("dk1") }
        Thread.sleep(forTimeInterval: 2)
        let after = ["dk2", "dk3", "dk4"].map(cluster.storedChunks(on:))
        for (old, new) in zip(before, after) { XCTAssertTrue(old.isSubset(of: new), "a good replica was deleted: \(old.subtracting(new))") }
        try waitForHealthy(cluster, within: 10, "healthy with dk1 back")
        try assertEveryReplicaOnDiskIsIntact(cluster, files)
    }

    func testADataKeeperRestartedWithAWipedDiskBeforeItWasMissedIsNotTrustedUntilItReports() throws {
        // A 30 s timeout: the master never sees dk1 dead; only its new boot id says it restarted.
        let cluster = try TestCluster(datakeepers: 4, heartbeatTimeoutSeconds: 30)
        defer { cluster.shutdown() }
        let files = try putFiles(cluster, count: 6)
        try waitForHealthy(cluster, within: 40, "healthy after the puts (one heartbeat timeout of safe mode first)")
        let before = ["dk2", "dk3", "dk4"].map(cluster.storedChunks(on:))
        XCTAssertFalse(cluster.storedChunks(on: "dk1").isEmpty)
        cluster.killDataKeeper("dk1", signal: SIGKILL)
        try cluster.wipeChunks(on: "dk1")
        try cluster.startDataKeeper("dk1")
        try waitForHealthy(cluster, within: 15, "dk1's lost replicas re-created") { try everyReplicaIsIntact(cluster, Array(files.keys)) }
        let after = ["dk2", "dk3", "dk4"].map(cluster.storedChunks(on:))
        for (old, new) in zip(before, after) { XCTAssertTrue(old.isSubset(of: new), "a good replica was deleted: \(old.subtracting(new))") }
        try assertEveryReplicaOnDiskIsIntact(cluster, files)
    }

    func testAReaderOfStandardOutputGetsTheRightBytesFromAnotherReplicaWhenTheFirstIsCorrupt() throws {
        // Chunks larger than the client's 1 MiB write buffer, and no scrubbing: the reader meets
        // the bad replicas itself, after bytes of the chunk have already arrived.
        let cluster = try TestCluster(datakeepers: 3, chunkSize: "4MiB", dataKeeperArguments: ["--scrub-interval", "1h"])
        defer { cluster.shutdown() }
        let local = try cluster.makeFile("big", size: 9 * 1024 * 1024, seed: 31)
        try cluster.succeed(["put", local, "/big"])
        try cluster.waitUntilIdle()
        let info = try cluster.stat("/big")
        try cluster.waitUntilIdle()
        // The two replicas ranked first for each chunk rot; only the last one is good.
        for chunkInfo in info.chunks {
            for replica in chunkInfo.replicas.prefix(2) {
                try cluster.flipByte(of: chunkInfo.id, on: replica.id.value, at: UInt64(chunkInfo.sizeBytes) - 10)
            }
        }
        XCTAssertEqual(try cluster.succeed(["get", "/big", "-"]).stdout, try cluster.contents(local))
        for chunkInfo in info.chunks {
            let first = chunkInfo.replicas[0].id.value
            XCTAssertTrue(FileManager.default.fileExists(atPath: cluster.dataDirectory(of: first) + "/corrupt/\(chunkInfo.id.value)"),
                          "the replica read first for chunk \(chunkInfo.index) was found bad while serving and set aside")
        }
    }

    func testTheScrubberFindsBitRotNobodyReadsAndAChunkFileDeletedByHand() throws {
        let cluster = try TestCluster(datakeepers: 4)
        defer { cluster.shutdown() }
        let files = try putFiles(cluster, count: 4)
        let chunks = try cluster.stat("/data/f3").chunks
        let rotten = chunks[0], lost = chunks[1]
        try cluster.flipByte(of: rotten.id, on: rotten.replicas[1].id.value, at: 10)
        try cluster.destroy(lost.id, on: lost.replicas[2].id.value)

        let seconds = try waitForHealthy(cluster, within: 10, "scrubber finds and repairs both") {
            try everyReplicaIsIntact(cluster, Array(files.keys))
        }
        print("scrub detection and repair: \(String(format: "%.1f", seconds)) s")
        try assertEveryReplicaOnDiskIsIntact(cluster, files)
        try assertAllReadBack(cluster, files)
    }

    func testAFileStoredOnTwoDataKeepersReachesThreeWhenAThirdArrives() throws {
        let cluster = try TestCluster(datakeepers: 2, replication: 3)
        defer { cluster.shutdown() }
        let local = try cluster.makeFile("two", size: 4 * chunk + 3, seed: 4)
        let put = try cluster.succeed(["put", local, "/two"])
        XCTAssertTrue(put.stderr.contains("under-replicated"), put.stderr)
        let before = try cluster.fsck()
        XCTAssertTrue(before.healthy, "under-replicated is not missing")
        XCTAssertEqual(before.underReplicatedChunks, 5)
        XCTAssertTrue(try cluster.run(["fsck"]).stdoutText.contains("UNDER_REPLICATED"))

        try cluster.startDataKeeper("dk3")
        try waitForHealthy(cluster, within: 10, "the third replica copied")
        try assertEveryReplicaOnDiskIsIntact(cluster, ["/two": local])
    }

    func testRepairNeverCopiesFromACorruptReplicaAndKeepsTheLastGoodOne() throws {
        let cluster = try TestCluster(datakeepers: 4, heartbeatTimeoutSeconds: 2)
        defer { cluster.shutdown() }
        let local = try cluster.makeFile("last", size: 2 * chunk, seed: 21)
        try cluster.succeed(["put", local, "/last"])
        let target = try cluster.stat("/last").chunks[0]
        let holders = target.replicas.map(\.id.value)
        // Two of three replicas rot: the third is the only good source.
        try cluster.flipByte(of: target.id, on: holders[0], at: 5)
        try cluster.flipByte(of: target.id, on: holders[1], at: 50_000)
        try waitForHealthy(cluster, within: 15, "both bad replicas replaced from the last good one") {
            try everyReplicaIsIntact(cluster, ["/last"])
        }
        try assertEveryReplicaOnDiskIsIntact(cluster, ["/last": local])
        XCTAssertTrue(cluster.holds(target.id, on: holders[2]), "the good replica stayed")
        try assertAllReadBack(cluster, ["/last": local])
    }

    func testWhenEveryReplicaIsGoneFsckSaysWhichFileLostDataAndFailsThenRecovers() throws {
        let cluster = try TestCluster(datakeepers: 3, heartbeatTimeoutSeconds: 2)
        defer { cluster.shutdown() }
        let local = try cluster.makeFile("gone", size: 100, seed: 2)
        try cluster.succeed(["put", local, "/dir/gone"])
        for id in ["dk1", "dk2", "dk3"] { cluster.killDataKeeper(id, signal: SIGKILL) }
        try cluster.waitUntil("all dead", timeout: 5) { try cluster.aliveDataKeepers().isEmpty }
        let result = try cluster.run(["fsck", "/dir"])
        XCTAssertEqual(result.exitCode, 1)
        XCTAssertTrue(result.stdoutText.contains("MISSING DATA in /dir/gone"), result.stdoutText)
        let failedGet = try cluster.run(["get", "/dir/gone", cluster.root + "/o"])
        XCTAssertNotEqual(failedGet.exitCode, 0)
        XCTAssertTrue(failedGet.stderr.contains("no replica on a live datakeeper") || failedGet.stderr.contains("could not be read"), failedGet.stderr)
        for id in ["dk1", "dk2", "dk3"] { try cluster.startDataKeeper(id) }
        try waitForHealthy(cluster, within: 10, "holders back")
        XCTAssertEqual(try cluster.run(["fsck"]).exitCode, 0)
        XCTAssertEqual(try cluster.succeed(["get", "/dir/gone", "-"]).stdout, try cluster.contents(local))
    }
}
