import Foundation
import TYDFSCore
import TYDFSProtocol
import TYDFSTestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Datakeepers and masters that die, and what the cluster does about it.
final class FailureTests: XCTestCase {
    let chunk = 64 * 1024

    func testAStoppedDataKeeperIsMarkedDeadWithinTheTimeoutAndGetsNoNewWork() throws {
        let cluster = try TestCluster(datakeepers: 4, heartbeatTimeoutSeconds: 2)
        defer { cluster.shutdown() }
        let local = try cluster.makeFile("before", size: 6 * chunk)
        try cluster.succeed(["put", local, "/before"])

        let stoppedAt = Date()
        cluster.killDataKeeper("dk2", signal: SIGKILL)
        try cluster.waitUntil("dk2 marked dead", timeout: 2 + 2) {
            try cluster.nodes().nodes.first { $0.id.value == "dk2" }?.alive == false
        }
        let detection = Date().timeIntervalSince(stoppedAt)
        XCTAssertLessThanOrEqual(detection, 2 + 1.5, "dead after \(detection) s with a 2 s timeout")
        let row = try cluster.succeed(["nodes"]).stdoutText.split(separator: "\n").first { $0.hasPrefix("dk2 ") }
        XCTAssertTrue(row?.contains("dead") ?? false, "nodes shows dk2 dead: \(row ?? "")")

        // New work skips it: every chunk of a new file lands on the three live datakeepers.
        let after = try cluster.makeFile("after", size: 6 * chunk, seed: 2)
        try cluster.succeed(["put", after, "/after"])
        for chunkInfo in try cluster.stat("/after").chunks {
            XCTAssertEqual(Set(chunkInfo.replicas.map(\.id.value)), ["dk1", "dk3", "dk4"])
        }
        // Files with replicas on the dead datakeeper still read back: readers fall back.
        try cluster.succeed(["get", "/before", cluster.root + "/before.out"])
        XCTAssertEqual(try cluster.contents(cluster.root + "/before.out"), try cluster.contents(local))
        let info = try cluster.stat("/before")
        for chunkInfo in info.chunks where chunkInfo.replicas.contains(where: { $0.id.value == "dk2" }) {
            XCTAssertEqual(chunkInfo.replicas.last?.id.value, "dk2", "the dead replica is ranked last")
            XCTAssertEqual(chunkInfo.replicas.last?.alive, false)
        }
    }

    func testAReaderFallsBackWhenTheReplicaItTriesFirstIsGoneButNotYetDeclaredDead() throws {
        let cluster = try TestCluster(datakeepers: 3, heartbeatTimeoutSeconds: 30)
        defer { cluster.shutdown() }
        let local = try cluster.makeFile("f", size: 4 * chunk)
        try cluster.succeed(["put", local, "/f"])
        try cluster.waitUntilIdle()
        cluster.killDataKeeper("dk1", signal: SIGKILL)
        // With a 30 s timeout the master still believes dk1 alive and offers it first for some chunks.
        XCTAssertTrue(try cluster.stat("/f").chunks.contains { $0.replicas.first?.id.value == "dk1" && $0.replicas.first?.alive == true })
        try cluster.succeed(["get", "/f", cluster.root + "/f.out"])
        XCTAssertEqual(try cluster.contents(cluster.root + "/f.out"), try cluster.contents(local))
        let streamed = try cluster.succeed(["get", "/f", "-"])
        XCTAssertEqual(streamed.stdout, try cluster.contents(local))
    }

    func testEveryCommittedFileSurvivesAMasterKilledWithSigkill() throws {
        let cluster = try TestCluster(datakeepers: 3)
        defer { cluster.shutdown() }
        var files: [String: String] = [:]
        for (index, size) in [0, 10, chunk + 1, 4 * chunk].enumerated() {
            let local = try cluster.makeFile("m\(index)", size: size, seed: UInt64(40 + index))
            try cluster.succeed(["put", local, "/kept/\(index)"])
            files["/kept/\(index)"] = local
        }
        try cluster.succeed(["rm", "/kept/0"])
        files["/kept/0"] = nil

        cluster.killMaster(signal: SIGKILL)
        let down = try cluster.run(["ls"])
        XCTAssertNotEqual(down.exitCode, 0)
        XCTAssertTrue(down.stderr.contains("cannot reach the master"), down.stderr)
        try cluster.startMaster()
        try cluster.waitUntil("datakeepers back", timeout: 10) { try cluster.aliveDataKeepers().count == 3 }

        let listed = try cluster.json(ListResponse.self, ["ls", "/kept"]).entries.map(\.path)
        XCTAssertEqual(listed, files.keys.sorted())
        for (remote, local) in files {
            let out = cluster.root + "/restored-" + remote.split(separator: "/").last!
            try cluster.succeed(["get", remote, out])
            XCTAssertEqual(try cluster.contents(out), try cluster.contents(local), remote)
            XCTAssertTrue(try cluster.stat(remote).chunks.allSatisfy { $0.replicas.filter(\.alive).count == 3 })
        }
    }

    func testWithTooFewDataKeepersAPutStoresWhatItCanAndSaysSo() throws {
        let cluster = try TestCluster(datakeepers: 2, replication: 3)
        defer { cluster.shutdown() }
        let local = try cluster.makeFile("few", size: 2 * chunk + 5)
        let put = try cluster.succeed(["put", local, "/few"])
        XCTAssertTrue(put.stderr.contains("under-replicated"), put.stderr)
        let info = try cluster.stat("/few")
        XCTAssertTrue(info.underReplicated)
        XCTAssertTrue(info.chunks.allSatisfy { $0.replicas.count == 2 })
        XCTAssertTrue(try cluster.succeed(["stat", "/few"]).stdoutText.contains("UNDER-REPLICATED"))
        try cluster.succeed(["get", "/few", cluster.root + "/few.out"])
        XCTAssertEqual(try cluster.contents(cluster.root + "/few.out"), try cluster.contents(local))
    }

    func testADataKeeperKilledDuringAPutDoesNotLoseTheFileOrStopTheCluster() throws {
        let cluster = try TestCluster(datakeepers: 4, chunkSize: "256KiB")
        defer { cluster.shutdown() }
        let local = try cluster.makeFile("big", size: 48 * 1024 * 1024, seed: 7)
        let put = try cluster.start(["put", local, "/big"])
        try cluster.waitUntil("the first chunks stored", timeout: 20, interval: 0.02) { cluster.storedChunkCount() >= 3 }
        XCTAssertTrue(put.isRunning, "the put should still be running when the datakeeper dies")
        cluster.killDataKeeper("dk1", signal: SIGKILL)
        put.waitUntilExit()
        XCTAssertEqual(put.terminationStatus, 0, "the put retries chunks on the live datakeepers")
        // Three live datakeepers remain, so every chunk was acknowledged by three: a chunk whose
        // pipeline lost dk1 (first, middle or last hop) was sent again without it. A chunk stored
        // on dk1 before it died keeps dk1 in its list, and once dk1 is declared dead (2 s) the
        // repair adds a fourth entry: so count the live replicas other than dk1.
        let info = try cluster.stat("/big")
        for chunk in info.chunks {
            let stored = chunk.replicas.map(\.id.value)
            XCTAssertGreaterThanOrEqual(stored.count, 3, "chunk \(chunk.index) stored on \(stored)")
            XCTAssertLessThanOrEqual(stored.filter { $0 != "dk1" }.count, 3, "chunk \(chunk.index) stored on \(stored)")
        }
        try cluster.waitUntil("every chunk on three live datakeepers", timeout: 30) {
            try cluster.stat("/big").chunks.allSatisfy { $0.replicas.filter { $0.alive && $0.id.value != "dk1" }.count == 3 }
        }
        try cluster.succeed(["get", "/big", cluster.root + "/big.out"])
        XCTAssertEqual(try cluster.contents(cluster.root + "/big.out"), try cluster.contents(local))
        // And the cluster keeps serving others.
        let small = try cluster.makeFile("small", size: 1000)
        try cluster.succeed(["put", small, "/small"])
        XCTAssertEqual(try cluster.succeed(["get", "/small", "-"]).stdout, try cluster.contents(small))
    }

    func testADataKeeperKilledDuringAGetIsReadAround() throws {
        let cluster = try TestCluster(datakeepers: 4, chunkSize: "256KiB", heartbeatTimeoutSeconds: 30)
        defer { cluster.shutdown() }
        let local = try cluster.makeFile("read", size: 160 * 1024 * 1024, seed: 12)
        try cluster.succeed(["put", local, "/read"])
        let target = cluster.root + "/read.out"
        let get = try cluster.start(["get", "/read", target])
        // The get has begun once its temporary file exists next to the target.
        try cluster.waitUntil("the get to start", timeout: 20, interval: 0.01) {
            (try FileManager.default.contentsOfDirectory(atPath: cluster.root)).contains { $0.hasPrefix(".read.out.tydfs-") }
        }
        XCTAssertTrue(get.isRunning, "the get should still be running when the datakeeper dies")
        // The master still lists dk1 as alive (30 s timeout): the client meets the failure itself.
        cluster.killDataKeeper("dk1", signal: SIGKILL)
        get.waitUntilExit()
        XCTAssertEqual(get.terminationStatus, 0)
        XCTAssertEqual(try cluster.contents(target), try cluster.contents(local))
    }

    func testAnInterruptedPutLeavesNoFileBehind() throws {
        let cluster = try TestCluster(datakeepers: 3, chunkSize: "256KiB")
        defer { cluster.shutdown() }
        let local = try cluster.makeFile("interrupted", size: 48 * 1024 * 1024, seed: 8)
        let put = try cluster.start(["put", local, "/interrupted"])
        try cluster.waitUntil("the first chunks stored", timeout: 20, interval: 0.02) { cluster.storedChunkCount() >= 3 }
        XCTAssertTrue(put.isRunning)
        TestCluster.end(put, signal: SIGKILL)
        let stat = try cluster.run(["stat", "/interrupted"])
        XCTAssertNotEqual(stat.exitCode, 0)
        XCTAssertTrue(stat.stderr.contains("no such file"), stat.stderr)
        XCTAssertEqual(try cluster.json(ListResponse.self, ["ls"]).entries.count, 0)
        // The path is free for the next try.
        let small = try cluster.makeFile("small", size: 10)
        try cluster.succeed(["put", small, "/interrupted"])
    }
}
