import Foundation
import TYDFSCore
import TYDFSProtocol
import TYDFSTestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Real master and datakeeper processes on loopback, driven through the `tydfs` CLI.
final class RoundTripTests: XCTestCase {
    /// 64 KiB, the chunk size the test clusters use.
    let chunk = 64 * 1024

    func testFilesAroundTheChunkSizeRoundTripByteExactOnThreeDistinctDataKeepers() throws {
        let cluster = try TestCluster(datakeepers: 4)
        defer { cluster.shutdown() }
        let sizes = [0, 1, chunk - 1, chunk, chunk + 1, 5 * chunk + 12345]
        for (index, size) in sizes.enumerated() {
            let local = try cluster.makeFile("in-\(size)", size: size, seed: UInt64(index + 1))
            let remote = "/sizes/file-\(size).bin"
            let put = try cluster.succeed(["put", local, remote])
            XCTAssertTrue(put.stdoutText.contains(remote), put.stdoutText)
            XCTAssertEqual(put.stderr, "", "a put with enough datakeepers warns of nothing")

            let info = try cluster.stat(remote)
            XCTAssertEqual(info.sizeBytes, Int64(size))
            XCTAssertEqual(info.chunks.count, (size + chunk - 1) / chunk)
            XCTAssertFalse(info.underReplicated)
            XCTAssertEqual(info.checksum, "crc32c:" + hex32(CRC32C.checksum(try Data(contentsOf: URL(fileURLWithPath: local)))))
            for chunkInfo in info.chunks {
                XCTAssertEqual(chunkInfo.replicas.count, 3, "chunk \(chunkInfo.index) of \(size)")
                XCTAssertEqual(Set(chunkInfo.replicas.map(\.id)).count, 3, "replicas on distinct datakeepers")
                XCTAssertTrue(chunkInfo.replicas.allSatisfy(\.alive))
                for replica in chunkInfo.replicas {
                    XCTAssertEqual(cluster.storedFrame(chunkInfo.id, on: replica.id.value)?.frameBytes, Int(chunkInfo.sizeBytes) + 4,
                                   "framed chunk on \(replica.id)")
                }
            }

            let out = cluster.root + "/out-\(size)"
            try cluster.succeed(["get", remote, out])
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out)), try Data(contentsOf: URL(fileURLWithPath: local)), "size \(size)")
        }
        let listing = try cluster.json(ListResponse.self, ["ls", "/sizes"])
        XCTAssertEqual(listing.entries.map(\.path), sizes.map { "/sizes/file-\($0).bin" }.sorted())
        XCTAssertEqual(listing.entries.map(\.sizeBytes).reduce(0, +), Int64(sizes.reduce(0, +)))
    }

    func testStandardInputAndOutputStreamAcrossChunks() throws {
        let cluster = try TestCluster(datakeepers: 3)
        defer { cluster.shutdown() }
        for size in [0, chunk, 3 * chunk + 7] {
            let local = try cluster.makeFile("stdin-\(size)", size: size, seed: 99)
            try cluster.succeed(["put", "-", "/streamed/\(size)"], stdinFile: local)
            XCTAssertEqual(try cluster.stat("/streamed/\(size)").sizeBytes, Int64(size))
            let out = try cluster.succeed(["get", "/streamed/\(size)", "-"])
            XCTAssertEqual(out.stdout, try Data(contentsOf: URL(fileURLWithPath: local)), "size \(size)")
        }
        // Into a device or a FIFO: written into, never replaced by a file.
        let largest = "/streamed/\(3 * chunk + 7)"
        let device = cluster.root + "/null"
        XCTAssertEqual(mknod(device, S_IFCHR | 0o666, 1 << 8 | 3), 0)  // the test's own /dev/null
        try cluster.succeed(["get", largest, device])
        var status = stat()
        XCTAssertEqual(stat(device, &status), 0)
        XCTAssertEqual(status.st_mode & S_IFMT, S_IFCHR, "still the device")
        let fifo = cluster.root + "/pipe"
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let received = DataBox()
        let reader = Thread { received.data = FileHandle(forReadingAtPath: fifo)?.readDataToEndOfFile() ?? Data() }
        reader.start()
        try cluster.succeed(["get", largest, fifo])
        try cluster.waitUntil("the FIFO's reader to finish", timeout: 10) { received.data != nil }
        XCTAssertEqual(received.data, try Data(contentsOf: URL(fileURLWithPath: cluster.root + "/stdin-\(3 * chunk + 7)")))
    }

    /// A chunk larger than what a read holds in memory (`Limits.readPieceBytes`) goes to standard
    /// output through a spool file, verified whole first: a bad block on one replica is read
    /// from another, and the bytes are the stored ones.
    func testStandardOutputOfAChunkLargerThanAReadPiece() throws {
        let cluster = try TestCluster(datakeepers: 3, chunkSize: "65MiB", dataKeeperArguments: ["--scrub-interval", "1h"])
        defer { cluster.shutdown() }
        let local = try cluster.makeFile("large-chunk", size: (66 << 20) + 5, seed: 7)
        try cluster.succeed(["put", local, "/large-chunk"])
        let info = try cluster.stat("/large-chunk")
        XCTAssertEqual(info.chunks.map(\.sizeBytes), [65 << 20, (1 << 20) + 5])
        // The chunk is read in three ranges, each asked first of a different replica (in an
        // order the master picks by load): with a bad block in every range on two of them, at
        // least two ranges meet a bad replica, and all come whole from the third.
        let damaged = info.chunks[0].replicas.prefix(2).map(\.id.value)
        for id in damaged {
            for offset: UInt64 in [10 << 20, 30 << 20, 50 << 20] { try cluster.flipByte(of: info.chunks[0].id, on: id, at: offset) }
        }
        let out = try cluster.succeed(["get", "/large-chunk", "-"])
        XCTAssertTrue(out.stdout == (try Data(contentsOf: URL(fileURLWithPath: local))), "standard output differs from the file put")
        XCTAssertTrue(
            damaged.contains { id in cluster.logs(of: id).contains { $0.contains("corrupt chunk not served") } }, "no bad replica was met")
    }

    /// What a reader thread received, read once it has finished.
    private final class DataBox: @unchecked Sendable {
        private let lock = NSLock()
        private var stored: Data?
        var data: Data? {
            get { lock.withLock { stored } }
            set { lock.withLock { stored = newValue } }
        }
    }

    func testDefaultNamesLsStatRmAndOverwrite() throws {
        let cluster = try TestCluster(datakeepers: 3)
        defer { cluster.shutdown() }
        let local = try cluster.makeFile("report.txt", size: 1000)
        try cluster.succeed(["put", local])
        XCTAssertEqual(try cluster.stat("/report.txt").sizeBytes, 1000)

        let text = try cluster.succeed(["ls"]).stdoutText
        XCTAssertTrue(text.contains("1000"), text)
        XCTAssertTrue(text.contains("/report.txt"), text)
        XCTAssertTrue(try cluster.succeed(["stat", "/report.txt"]).stdoutText.contains("crc32c:"))

        let replacement = try cluster.makeFile("other", size: 3 * chunk, seed: 5)
        let refused = try cluster.run(["put", replacement, "/report.txt"])
        XCTAssertNotEqual(refused.exitCode, 0)
        XCTAssertTrue(refused.stderr.contains("already exists"), refused.stderr)
        XCTAssertEqual(try cluster.stat("/report.txt").sizeBytes, 1000, "a refused put changes nothing")
        try cluster.succeed(["put", "--overwrite", replacement, "/report.txt"])
        XCTAssertEqual(try cluster.stat("/report.txt").sizeBytes, Int64(3 * chunk))

        // get into a directory uses the remote name.
        let folder = cluster.root + "/downloads"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try cluster.succeed(["get", "/report.txt", folder])
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: folder + "/report.txt")), try Data(contentsOf: URL(fileURLWithPath: replacement)))

        let old = try cluster.stat("/report.txt")
        try cluster.succeed(["rm", "/report.txt"])
        let gone = try cluster.run(["stat", "/report.txt"])
        XCTAssertNotEqual(gone.exitCode, 0)
        XCTAssertEqual(try cluster.json(ListResponse.self, ["ls"]).entries.count, 0)
        // The removed file's chunks leave the datakeepers' disks in the background.
        try cluster.waitUntil("chunks of the removed file deleted", timeout: 10) {
            old.chunks.allSatisfy { chunk in
                chunk.replicas.allSatisfy { replica in
                    !cluster.holds(chunk.id, on: replica.id.value)
                }
            }
        }
    }

    func testMvRenamesFilesAndFoldersAtomicallyAndDurablyWithoutMovingData() throws {
        let cluster = try TestCluster(datakeepers: 3)
        defer { cluster.shutdown() }
        var files: [String: String] = [:]
        for (index, remote) in ["/dir/a", "/dir/sub/b", "/other/c"].enumerated() {
            files[remote] = try cluster.makeFile("mv-\(index)", size: 2 * chunk + index, seed: UInt64(40 + index))
            try cluster.succeed(["put", files[remote]!, remote])
        }
        let chunksBefore = try cluster.stat("/dir/sub/b").chunks.map(\.id)

        // A folder into an existing folder, then a file to a new name.
        let moved = try cluster.succeed(["mv", "/dir", "/other"])
        XCTAssertEqual(moved.stdoutText, "/dir -> /other/dir (2 files)\n")
        let renamed = try cluster.json(RenameResponse.self, ["mv", "/other/c", "/other/renamed"])
        XCTAssertEqual(renamed, RenameResponse(from: "/other/c", to: "/other/renamed", files: 1))
        XCTAssertEqual(try cluster.json(ListResponse.self, ["ls", "/other"]).entries.map(\.path), ["/other/dir", "/other/renamed"])
        XCTAssertEqual(try cluster.stat("/other/dir/sub/b").chunks.map(\.id), chunksBefore, "the same chunks: no data copied")
        XCTAssertNotEqual(try cluster.run(["stat", "/dir/a"]).exitCode, 0, "the old name is gone")

        // A taken name or a missing source changes nothing and says why.
        let taken = try cluster.run(["mv", "/other/renamed", "/other/dir/a"])
        XCTAssertNotEqual(taken.exitCode, 0)
        XCTAssertTrue(taken.stderr.contains("already exists"), taken.stderr)
        let missing = try cluster.run(["mv", "/nothing", "/x"])
        XCTAssertNotEqual(missing.exitCode, 0)
        XCTAssertTrue(missing.stderr.contains("no such file or directory"), missing.stderr)

        // Durable: a master killed right after still has the new names, and every byte reads back.
        cluster.killMaster(signal: SIGKILL)
        try cluster.startMaster()
        try cluster.waitUntil("datakeepers back", timeout: 10) { try cluster.aliveDataKeepers().count == 3 }
        for (old, new) in [("/dir/a", "/other/dir/a"), ("/dir/sub/b", "/other/dir/sub/b"), ("/other/c", "/other/renamed")] {
            let out = cluster.root + "/mv-out-" + new.split(separator: "/").last!
            try cluster.succeed(["get", new, out])
            XCTAssertEqual(try cluster.contents(out), try cluster.contents(files[old]!), new)
        }
    }

    func testDuSumsWhatIsBelowEachEntryAndCatPrintsAFile() throws {
        let cluster = try TestCluster(datakeepers: 3)
        defer { cluster.shutdown() }
        var sizes: [String: Int] = [:]
        for (index, (remote, size)) in [("/u/a", 3 * chunk + 1), ("/u/sub/b", 1000), ("/u/sub/deeper/c", 17)].enumerated() {
            try cluster.succeed(["put", try cluster.makeFile("du-\(index)", size: size, seed: UInt64(60 + index)), remote])
            sizes[remote] = size
        }
        struct Usage: Decodable { var path: String; var totalBytes: Int64; var entries: [ListEntry] }
        let usage = try cluster.json(Usage.self, ["du", "/u"])
        XCTAssertEqual(usage.totalBytes, Int64(sizes.values.reduce(0, +)))
        XCTAssertEqual(usage.entries.map(\.path), ["/u/a", "/u/sub"])
        XCTAssertEqual(usage.entries.map(\.sizeBytes), [Int64(3 * chunk + 1), 1017], "a folder counts everything below it")
        let text = try cluster.succeed(["du", "/u"]).stdoutText
        XCTAssertTrue(text.hasSuffix("  total\n") && text.contains("/u/sub/"), text)
        XCTAssertNotEqual(try cluster.run(["du", "/nothing"]).exitCode, 0)

        XCTAssertEqual(try cluster.succeed(["cat", "/u/a"]).stdout, try cluster.contents(cluster.root + "/du-0"))
        let missing = try cluster.run(["cat", "/u/nothing"])
        XCTAssertNotEqual(missing.exitCode, 0)
        XCTAssertTrue(missing.stderr.contains("no such file"), missing.stderr)
    }

    func testParallelDownloadReadsFromSeveralDataKeepers() throws {
        let cluster = try TestCluster(datakeepers: 4)
        defer { cluster.shutdown() }
        let local = try cluster.makeFile("wide", size: 12 * chunk, seed: 3)
        try cluster.succeed(["put", local, "/wide"])
        let before = Dictionary(uniqueKeysWithValues: try cluster.nodes().nodes.map { ($0.id.value, $0.chunksServed) })
        try cluster.succeed(["get", "/wide", cluster.root + "/wide.out"])
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: cluster.root + "/wide.out")), try Data(contentsOf: URL(fileURLWithPath: local)))
        var servers: [String] = []
        try cluster.waitUntil("all 12 chunk reads reported by heartbeats", timeout: 5) {
            let deltas = try cluster.nodes().nodes.map { ($0.id.value, $0.chunksServed - (before[$0.id.value] ?? 0)) }
            servers = deltas.filter { $0.1 > 0 }.map(\.0)
            return deltas.map(\.1).reduce(0, +) == 12
        }
        XCTAssertGreaterThanOrEqual(servers.count, 2, "one file was read from \(servers)")
    }
}
