import Foundation
import TYDFSCore
import TYDFSProtocol
import TYDFSTestSupport
import XCTest

/// Faults between separate hosts: the master and each datakeeper in a network namespace of its
/// own, joined by a bridge; a host is cut off by unplugging its cable, and healed. Every byte is
/// checked afterwards.
final class PartitionTests: XCTestCase {
    override func setUpWithError() throws {
        guard NetworkLab.isAvailable else {
            throw XCTSkip("SKIPPED LOUDLY: network namespaces cannot be created on this machine (needs root and iproute2), so the multi-host partition tests did not run")
        }
    }

    /// Every file's chunk ids, by path.
    private func referencedChunks(_ cluster: TestCluster, _ paths: [String]) throws -> Set<ChunkID> {
        Set(try paths.flatMap { try cluster.stat($0).chunks.map(\.id) })
    }

    func testADataKeeperPartitionedDuringWritesLosesNothingAndServesNothingStale() throws {
        let lab = try NetworkLab()
        let cluster = try TestCluster(datakeepers: 4, heartbeatTimeoutSeconds: 2, network: lab)
        defer {
            cluster.shutdown()
            lab.shutdown()
        }
        var expected: [String: String] = [:]
        for index in 0..<4 {
            expected["/p/f\(index)"] = try cluster.makeFile("f\(index)", size: 150_000, seed: UInt64(index))
            try cluster.succeed(["put", expected["/p/f\(index)"]!, "/p/f\(index)"])
        }
        let before = cluster.storedChunks(on: "dk1")
        XCTAssertFalse(before.isEmpty)

        try lab.cut("dk1")
        // Writes go on while dk1 is unreachable: new files, and an overwrite of a file dk1 holds.
        for index in 0..<3 {
            expected["/p/g\(index)"] = try cluster.makeFile("g\(index)", size: 150_000, seed: UInt64(10 + index))
            try cluster.succeed(["put", expected["/p/g\(index)"]!, "/p/g\(index)"])
        }
        expected["/p/f0"] = try cluster.makeFile("f0-new", size: 120_000, seed: 99)
        try cluster.succeed(["put", "--overwrite", expected["/p/f0"]!, "/p/f0"])
        try cluster.waitUntil("dk1 dead", timeout: 15) {
            try cluster.nodes().nodes.first { $0.id.value == "dk1" }?.alive == false
        }

        try lab.heal("dk1")
        try cluster.waitUntil("dk1 back", timeout: 15) {
            try cluster.nodes().nodes.first { $0.id.value == "dk1" }?.alive == true
        }
        // Back at the factor: nothing under, nothing over (dk1's returning replicas trimmed).
        try cluster.waitUntil("replication converged", timeout: 30) {
            let report = try cluster.fsck()
            return report.healthy && report.underReplicatedChunks == 0 && report.overReplicatedChunks == 0
        }
        for (path, local) in expected {
            let copy = cluster.root + "/back" + path.replacingOccurrences(of: "/", with: "_")
            try cluster.succeed(["get", path, copy])
            XCTAssertEqual(try cluster.contents(copy), try cluster.contents(local), "\(path) is not what was acknowledged")
        }
        // No stale replica stays to be served: dk1 ends up holding only chunks files reference
        // (the chunks of the overwritten /p/f0 it had are deleted).
        let referenced = try referencedChunks(cluster, Array(expected.keys))
        try cluster.waitUntil("dk1 holds no stale chunk", timeout: 30) { cluster.storedChunks(on: "dk1").isSubset(of: referenced) }
    }

    func testTheMasterPartitionedFromEveryDataKeeperDeletesNothingAndResumes() throws {
        let lab = try NetworkLab()
        let cluster = try TestCluster(datakeepers: 3, heartbeatTimeoutSeconds: 2, network: lab)
        defer {
            cluster.shutdown()
            lab.shutdown()
        }
        var expected: [String: String] = [:]
        for index in 0..<4 {
            expected["/q/f\(index)"] = try cluster.makeFile("f\(index)", size: 150_000, seed: UInt64(index))
            try cluster.succeed(["put", expected["/q/f\(index)"]!, "/q/f\(index)"])
        }
        let held = ["dk1", "dk2", "dk3"].map { cluster.storedChunks(on: $0) }

        // Longer than the heartbeat timeout: the master sees every datakeeper die.
        try lab.cut("m")
        Thread.sleep(forTimeInterval: cluster.heartbeatTimeoutSeconds * 2.5)
        try lab.heal("m")
        try cluster.waitUntil("every datakeeper back", timeout: 20) { try cluster.aliveDataKeepers().count == 3 }
        // Give a repair storm, if there were one, time to act.
        Thread.sleep(forTimeInterval: 3)
        for (index, id) in ["dk1", "dk2", "dk3"].enumerated() {
            XCTAssertEqual(cluster.storedChunks(on: id), held[index], "\(id) lost or gained chunks after the partition healed")
        }
        let report = try cluster.fsck()
        XCTAssertTrue(report.healthy)
        XCTAssertEqual(report.underReplicatedChunks, 0)
        XCTAssertEqual(report.overReplicatedChunks, 0)
        // Service resumes: a new put and every old file.
        expected["/q/after"] = try cluster.makeFile("after", size: 100_000, seed: 42)
        try cluster.succeed(["put", expected["/q/after"]!, "/q/after"])
        for (path, local) in expected {
            let copy = cluster.root + "/back" + path.replacingOccurrences(of: "/", with: "_")
            try cluster.succeed(["get", path, copy])
            XCTAssertEqual(try cluster.contents(copy), try cluster.contents(local), path)
        }
    }
}

/// One datakeeper behind a slow, lossy link (200 ms and 5 % loss on its way out, as netem would
/// make them): transfers through it complete, and reads go to the healthy replicas.
final class SlowLinkTests: XCTestCase {
    func testASlowLossyLinkOnOneDataKeeperCompletesTransfersAndReadsPreferTheHealthyReplicas() throws {
        guard NetworkLab.isAvailable else {
            throw XCTSkip("SKIPPED LOUDLY: network namespaces cannot be created on this machine (needs root and iproute2), so the slow-link test did not run")
        }
        let lab = try NetworkLab()
        // Heartbeats cross the slow link too: a timeout well above its delays keeps dk1 alive.
        let cluster = try TestCluster(datakeepers: 4, heartbeatTimeoutSeconds: 10, network: lab)
        defer {
            cluster.shutdown()
            lab.shutdown()
        }
        var expected: [String: String] = [:]
        for index in 0..<6 {
            expected["/s/f\(index)"] = try cluster.makeFile("f\(index)", size: 150_000, seed: UInt64(index))
            try cluster.succeed(["put", expected["/s/f\(index)"]!, "/s/f\(index)"])
        }
        XCTAssertFalse(cluster.storedChunks(on: "dk1").isEmpty)
        let dk1 = try XCTUnwrap(try cluster.nodes().nodes.first { $0.id.value == "dk1" }).address

        try lab.slow("dk1", delayMilliseconds: 200, lossPercent: 5)
        // Writes complete, pipelines through dk1 included, each at the full factor.
        for index in 0..<3 {
            expected["/s/g\(index)"] = try cluster.makeFile("g\(index)", size: 150_000, seed: UInt64(10 + index))
            try cluster.succeed(["put", expected["/s/g\(index)"]!, "/s/g\(index)"])
            XCTAssertTrue(try cluster.stat("/s/g\(index)").chunks.allSatisfy { $0.replicas.count == 3 })
        }
        // Reads: every byte back, and dk1 serves (almost) none of them although it holds most.
        let heldByDK1 = try expected.keys.map { try cluster.stat($0).chunks.filter { $0.replicas.contains { $0.id.value == "dk1" } }.count }.reduce(0, +)
        let servedBefore = try XCTUnwrap(try cluster.dataKeeperMetric("tydfs_datakeeper_chunks_sent_total", of: "dk1", at: dk1))
        var slowest = 0.0
        for (path, local) in expected {
            let copy = cluster.root + "/back" + path.replacingOccurrences(of: "/", with: "_")
            let started = Date()
            try cluster.succeed(["get", path, copy])
            slowest = max(slowest, Date().timeIntervalSince(started))
            XCTAssertEqual(try cluster.contents(copy), try cluster.contents(local), path)
        }
        let servedBySlow = try XCTUnwrap(try cluster.dataKeeperMetric("tydfs_datakeeper_chunks_sent_total", of: "dk1", at: dk1)) - servedBefore
        XCTAssertGreaterThan(heldByDK1, 10, "dk1 should hold a good share of the chunks read")
        XCTAssertLessThanOrEqual(Int(servedBySlow), heldByDK1 / 10, "dk1 served \(servedBySlow) of the \(heldByDK1) chunk reads it could have")
        XCTAssertLessThan(slowest, 5, "the slowest get took \(slowest) s")

        try lab.unslow("dk1")
        let report = try cluster.fsck()
        XCTAssertTrue(report.healthy)
        XCTAssertEqual(report.underReplicatedChunks, 0)
    }
}

/// A datakeeper whose disk fills while files are written (a small tmpfs as its disk): every put
/// still completes at the full factor on the others, and the full datakeeper keeps serving what
/// it holds.
final class FullDiskTests: XCTestCase {
    private func run(_ program: String, _ arguments: [String]) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }

    func testADataKeeperWhoseDiskFillsTakesNoMoreAndKeepsServing() throws {
        let cluster = try TestCluster(datakeepers: 3)
        let disk = cluster.dataDirectory(of: "dk4")
        try FileManager.default.createDirectory(atPath: disk, withIntermediateDirectories: true)
        guard try run("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=3m", "tmpfs", disk]) == 0 else {
            cluster.shutdown()
            throw XCTSkip("SKIPPED LOUDLY: cannot mount a tmpfs here (needs root), so the full-disk test did not run")
        }
        defer {
            cluster.killDataKeeper("dk4")
            _ = try? run("/usr/bin/umount", [disk])
            cluster.shutdown()
        }
        try cluster.startDataKeeper("dk4")
        try cluster.waitUntil("4 datakeepers", timeout: 10) { try cluster.aliveDataKeepers().count == 4 }

        // 24 files of 4 chunks at factor 3: about 18 MiB of replicas, 4.5 MiB a datakeeper if
        // spread evenly, more than dk4's 3 MiB.
        var files: [String: String] = [:]
        for index in 0..<24 {
            files["/full/f\(index)"] = try cluster.makeFile("f\(index)", size: 256 * 1024, seed: UInt64(index))
            try cluster.succeed(["put", files["/full/f\(index)"]!, "/full/f\(index)"])
        }
        let report = try cluster.fsck()
        XCTAssertTrue(report.healthy)
        XCTAssertEqual(report.underReplicatedChunks, 0, "every chunk has its 3 replicas, on the datakeepers with room")
        let onFullDisk = cluster.storedFrames(on: "dk4")
        XCTAssertFalse(onFullDisk.isEmpty, "dk4 took chunks until it was full")
        let node = try XCTUnwrap(try cluster.nodes().nodes.first { $0.id.value == "dk4" })
        XCTAssertTrue(node.alive)
        XCTAssertLessThanOrEqual(node.usedBytes, 3 * 1024 * 1024)
        // It still serves every chunk it holds, each intact.
        for chunk in onFullDisk.keys {
            XCTAssertTrue(cluster.isIntact(chunk, on: "dk4"))
            let answer = try HTTP.request("GET", "http://\(node.address)\(Route.chunk(chunk.value))",
                                          headers: [Header.chunkToken: try cluster.token(.read, chunk)])
            XCTAssertEqual(answer.status, 200, "dk4 did not serve chunk \(chunk)")
            XCTAssertEqual(answer.body.count, onFullDisk[chunk]?.frameBytes)
        }
        for (path, local) in files {
            try cluster.succeed(["get", path, cluster.root + "/back"])
            XCTAssertEqual(try cluster.contents(cluster.root + "/back"), try cluster.contents(local), path)
        }
    }

    /// A get into a local disk that fills: each get fails naming its target and the disk's
    /// error, the file it would have replaced is left whole, and no partial file stays behind;
    /// a small file (read into memory, then written in one go) and a large one (written range by
    /// range) alike, and `get -r` names every file that failed.
    func testAGetIntoAFullLocalDiskFailsNamingTheTargetAndLeavesNothingBehind() throws {
        let cluster = try TestCluster(datakeepers: 3, chunkSize: "256KiB")
        let disk = cluster.root + "/local"
        try FileManager.default.createDirectory(atPath: disk, withIntermediateDirectories: true)
        guard try run("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", disk]) == 0 else {
            cluster.shutdown()
            throw XCTSkip("SKIPPED LOUDLY: cannot mount a tmpfs here (needs root), so the full-disk get test did not run")
        }
        defer {
            _ = try? run("/usr/bin/umount", [disk])
            cluster.shutdown()
        }
        let small = try cluster.makeFile("small", size: 300 * 1024, seed: 3)
        let large = try cluster.makeFile("large", size: 3 * 1024 * 1024, seed: 4)
        try cluster.succeed(["put", small, "/in/small"])
        try cluster.succeed(["put", large, "/in/large"])
        // 740 KiB of the 1 MiB taken: no room for a file of 300 KiB.
        let kept = Data(repeating: 7, count: 40 * 1024)
        try kept.write(to: URL(fileURLWithPath: disk + "/small"))
        try Data(repeating: 1, count: 700 * 1024).write(to: URL(fileURLWithPath: disk + "/filler"))

        for (remote, target) in [("/in/small", disk + "/small"), ("/in/large", disk + "/large")] {
            let result = try cluster.run(["get", remote, target])
            XCTAssertNotEqual(result.exitCode, 0, "get \(remote) into a full disk should fail")
            XCTAssertTrue(result.stderr.contains("cannot write to \(target)"), "stderr: \(result.stderr)")
            XCTAssertTrue(result.stderr.contains("No space left on device"), "stderr: \(result.stderr)")
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, "one line: \(result.stderr)")
        }
        XCTAssertEqual(try cluster.contents(disk + "/small"), kept, "the file a failed get would have replaced is left as it was")
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: disk)), ["small", "filler"], "no partial file is left")

        let folder = try cluster.run(["get", "-r", "/in", disk + "/tree"])
        XCTAssertNotEqual(folder.exitCode, 0)
        for name in ["small", "large"] {
            XCTAssertTrue(folder.stderr.contains("cannot write to \(disk)/tree/\(name)"), "stderr: \(folder.stderr)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: disk + "/tree"), [], "no partial file is left")

        // With room again, the same gets succeed.
        try FileManager.default.removeItem(atPath: disk + "/filler")
        try FileManager.default.removeItem(atPath: disk + "/tree")
        try cluster.succeed(["get", "/in/small", disk + "/small"])
        XCTAssertEqual(try cluster.contents(disk + "/small"), try cluster.contents(small))
    }

    /// A device that is full (`/dev/full`), written into and never replaced: one line naming it
    /// and the reason, and a non-zero exit.
    func testAGetIntoAFullDeviceFailsNamingIt() throws {
        let cluster = try TestCluster(datakeepers: 3, chunkSize: "256KiB")
        defer { cluster.shutdown() }
        try cluster.succeed(["put", try cluster.makeFile("large", size: 3 * 1024 * 1024, seed: 4), "/in/large"])
        let device = try cluster.run(["get", "/in/large", "/dev/full"])
        XCTAssertNotEqual(device.exitCode, 0, "get into /dev/full should fail")
        XCTAssertTrue(device.stderr.contains("cannot write to /dev/full: ") && device.stderr.contains("No space left on device"), device.stderr)
        XCTAssertEqual(device.stderr.split(separator: "\n").count, 1, "one line: \(device.stderr)")
    }
}
