import Foundation
import TYDFSProtocol
import TYDFSTestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// `tydfs put -r` and `get -r`: whole folders in one process, byte-exact, and one bad file
/// reported by name without stopping the others.
final class FolderTransferTests: XCTestCase {
    /// Relative path → size: nested folders, empty files, spaces, non-ASCII, a file over a chunk.
    let tree: [String: Int] = [
        "a.txt": 1000,
        "empty": 0,
        "with space.bin": 70_000,
        "ünïcødé 文件.txt": 10,
        "sub/deeper/x": 5000,
        "sub/empty too": 0,
        "sub/名前 two/y z": 3,
    ]
    /// Folders holding nothing, kept as folders both ways.
    let emptyFolders = ["hollow", "sub/hollow tóo/deeper"]

    private func makeTree(_ cluster: TestCluster, at folder: String, seed: UInt64 = 1) throws {
        for (index, (relative, size)) in tree.sorted(by: { $0.key < $1.key }).enumerated() {
            let path = folder + "/" + relative
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            let made = try cluster.makeFile("tmp-\(index)", size: size, seed: seed + UInt64(index))
            try FileManager.default.moveItem(atPath: made, toPath: path)
        }
        for relative in emptyFolders { try FileManager.default.createDirectory(atPath: folder + "/" + relative, withIntermediateDirectories: true) }
    }

    /// Regular files below `folder`, by relative path, with their bytes.
    private func files(below folder: String) throws -> [String: Data] {
        var found: [String: Data] = [:]
        let enumerator = try XCTUnwrap(FileManager.default.enumerator(atPath: folder))
        while let relative = enumerator.nextObject() as? String {
            var isDirectory: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: folder + "/" + relative, isDirectory: &isDirectory)
            if !isDirectory.boolValue { found[relative] = try Data(contentsOf: URL(fileURLWithPath: folder + "/" + relative)) }
        }
        return found
    }

    func testFoldersRoundTripByteExactWithNestedFoldersEmptyFilesAndUnusualNames() throws {
        let cluster = try TestCluster(datakeepers: 3)
        defer { cluster.shutdown() }
        let source = cluster.root + "/source"
        try makeTree(cluster, at: source)

        let put = try cluster.succeed(["put", "-r", source, "/up", "--concurrency", "3"])
        XCTAssertTrue(put.stdoutText.hasPrefix("put -r: \(tree.count) files, "), put.stdoutText)
        XCTAssertTrue(put.stdoutText.contains("files/s); 2 empty folders"), put.stdoutText)
        XCTAssertEqual(put.stderr, "", "no progress line when stderr is not a terminal")
        for (relative, size) in tree {
            XCTAssertEqual(try cluster.stat("/up/" + relative).sizeBytes, Int64(size), relative)
        }

        let target = cluster.root + "/target"
        let get = try cluster.succeed(["get", "-r", "/up", target, "--concurrency", "5"])
        XCTAssertTrue(get.stdoutText.hasPrefix("get -r: \(tree.count) files, "), get.stdoutText)
        XCTAssertTrue(get.stdoutText.contains("; 2 empty folders"), get.stdoutText)
        let original = try files(below: source)
        XCTAssertEqual(original.count, tree.count)
        XCTAssertEqual(try files(below: target), original, "every file comes back byte-exact under its own name")
        for relative in emptyFolders {
            XCTAssertEqual(try cluster.json(ListResponse.self, ["ls", "/up/" + relative]).entries.count, 0, "\(relative) made, and empty")
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: target + "/" + relative), [], relative)
        }
        // An empty folder alone, both ways.
        try FileManager.default.createDirectory(atPath: cluster.root + "/bare", withIntermediateDirectories: false)
        XCTAssertTrue(try cluster.succeed(["put", "-r", cluster.root + "/bare", "/bare"]).stdoutText.contains("; 1 empty folder"))
        XCTAssertEqual(try cluster.json(ListResponse.self, ["ls", "/bare"]).entries.count, 0)
        try cluster.succeed(["get", "-r", "/bare", cluster.root + "/bare-back"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: cluster.root + "/bare-back"), [])

        // A subfolder alone, into a folder that exists and holds an older copy (replaced, as by get).
        try Data("old".utf8).write(to: URL(fileURLWithPath: target + "/x"))
        try cluster.succeed(["get", "-r", "/up/sub/deeper", target])
        XCTAssertEqual(try cluster.contents(target + "/x"), original["sub/deeper/x"])
    }

    func testAFailingFileIsNamedTheOthersSucceedAndTheExitCodeIsNonZero() throws {
        let cluster = try TestCluster(datakeepers: 3)
        defer { cluster.shutdown() }
        let source = cluster.root + "/source"
        try makeTree(cluster, at: source)
        // Already stored with other bytes: refused without --overwrite.
        let older = try cluster.makeFile("older", size: 77, seed: 42)
        try cluster.succeed(["put", older, "/up/a.txt"])
        // Not a regular file: cannot be uploaded (and must not be opened: a FIFO would block).
        XCTAssertEqual(mkfifo(source + "/sub/a pipe", 0o644), 0)

        let put = try cluster.run(["put", "-r", source, "/up"])
        XCTAssertEqual(put.exitCode, 1)
        XCTAssertTrue(put.stderr.contains("\(source)/a.txt: /up/a.txt already exists"), put.stderr)
        XCTAssertTrue(put.stderr.contains("\(source)/sub/a pipe"), put.stderr)
        XCTAssertTrue(put.stdoutText.contains("put -r: \(tree.count - 1) files, "), put.stdoutText)
        XCTAssertTrue(put.stdoutText.contains("; 2 failed"), put.stdoutText)
        XCTAssertEqual(try cluster.stat("/up/a.txt").sizeBytes, 77, "the refused file is left as it was")
        for (relative, size) in tree where relative != "a.txt" {
            XCTAssertEqual(try cluster.stat("/up/" + relative).sizeBytes, Int64(size), relative)
        }

        let overwrite = try cluster.run(["put", "-r", "--overwrite", source, "/up"])
        XCTAssertEqual(overwrite.exitCode, 1, "the FIFO still fails")
        XCTAssertFalse(overwrite.stderr.contains("already exists"), overwrite.stderr)
        XCTAssertEqual(try cluster.stat("/up/a.txt").sizeBytes, Int64(tree["a.txt"]!))

        // A download whose local target cannot be replaced (a folder with something in it).
        let target = cluster.root + "/target"
        try FileManager.default.createDirectory(atPath: target + "/empty/blocker", withIntermediateDirectories: true)
        let get = try cluster.run(["get", "-r", "/up", target])
        XCTAssertEqual(get.exitCode, 1)
        XCTAssertTrue(get.stderr.contains("/up/empty: "), get.stderr)
        XCTAssertTrue(get.stdoutText.contains("get -r: \(tree.count - 1) files, "), get.stdoutText)
        XCTAssertEqual(try cluster.contents(target + "/sub/deeper/x"), try cluster.contents(source + "/sub/deeper/x"))

        let missing = try cluster.run(["get", "-r", "/nothing-here", target])
        XCTAssertEqual(missing.exitCode, 1)
        XCTAssertTrue(missing.stderr.contains("/nothing-here: no such file or directory"), missing.stderr)
    }
}
