import Foundation
import TYDFSProtocol
import TYDFSTestSupport
import XCTest

/// `mkdir` and `rmdir` as a user runs them: empty directories exist, survive a master restart and
/// a rename, and `rmdir` refuses a directory that holds anything.
final class DirectoryTests: XCTestCase {
    private func entries(_ cluster: TestCluster, _ path: String) throws -> [String] {
        try cluster.json(ListResponse.self, ["ls", path, "--json"]).entries.map { "\($0.path)\($0.isDirectory ? "/" : "")" }
    }

    private func fails(_ cluster: TestCluster, _ arguments: [String], _ fragment: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let result = try cluster.run(arguments)
        XCTAssertEqual(result.exitCode, 1, "\(arguments)", file: file, line: line)
        XCTAssertTrue(result.stderr.contains(fragment), "\(arguments): \(result.stderr)", file: file, line: line)
    }

    func testEmptyDirectoriesExistUntilRemovedAndSurviveARestartAndARename() throws {
        let cluster = try TestCluster(datakeepers: 3)
        defer { cluster.shutdown() }
        let local = try cluster.makeFile("x", size: 1000)

        let made = try cluster.json(DirectoryResponse.self, ["mkdir", "/bucket", "--json"])
        XCTAssertEqual(made, DirectoryResponse(path: "/bucket", created: true))
        XCTAssertEqual(try entries(cluster, "/"), ["/bucket/"])
        XCTAssertEqual(try entries(cluster, "/bucket"), [])
        try fails(cluster, ["mkdir", "/bucket"], "/bucket already exists")
        XCTAssertEqual(try cluster.json(DirectoryResponse.self, ["mkdir", "-p", "/bucket", "--json"]).created, false)

        // A file put and removed below it leaves it; a file cannot take its place.
        try cluster.succeed(["put", local, "/bucket/x"])
        try fails(cluster, ["rmdir", "/bucket"], "/bucket is not empty (it holds /bucket/x)")
        try cluster.succeed(["rm", "/bucket/x"])
        XCTAssertEqual(try entries(cluster, "/"), ["/bucket/"])
        try fails(cluster, ["put", local, "/bucket"], "cannot create /bucket: it is a directory")

        // Directories cannot stand where files are.
        try cluster.succeed(["put", local, "/f"])
        try fails(cluster, ["mkdir", "/f"], "/f already exists as a file")
        try fails(cluster, ["mkdir", "-p", "/f/g"], "cannot create /f/g: /f is a file, not a directory")
        try fails(cluster, ["rmdir", "/f"], "/f is a file, not a directory")
        try fails(cluster, ["rmdir", "/missing"], "/missing: no such directory")
        try fails(cluster, ["rmdir", "/"], "the root / cannot be removed")

        // Parents are made as needed; a rename carries empty directories along.
        try cluster.succeed(["mkdir", "-p", "/a/b/c"])
        try cluster.succeed(["mkdir", "/a/empty"])
        try cluster.succeed(["put", local, "/a/b/y"])
        XCTAssertEqual(try cluster.json(RenameResponse.self, ["mv", "/a", "/z", "--json"]).files, 1)
        XCTAssertEqual(try entries(cluster, "/z"), ["/z/b/", "/z/empty/"])
        XCTAssertEqual(try entries(cluster, "/z/b"), ["/z/b/c/", "/z/b/y"])

        // The master keeps them in its database.
        cluster.killMaster()
        try cluster.startMaster()
        XCTAssertEqual(try entries(cluster, "/"), ["/bucket/", "/f", "/z/"])
        XCTAssertEqual(try entries(cluster, "/z/b/c"), [])
        XCTAssertEqual(try cluster.succeed(["get", "/z/b/y", "-"]).stdout, try cluster.contents(local))

        try cluster.succeed(["rmdir", "/bucket"])
        try cluster.succeed(["rmdir", "/z/b/c"])
        try cluster.succeed(["rm", "/z/b/y"])
        XCTAssertEqual(try entries(cluster, "/z"), ["/z/empty/"], "/z/b was only implied: it went with its last entry")
        try fails(cluster, ["ls", "/bucket"], "no such file or directory")
    }
}
