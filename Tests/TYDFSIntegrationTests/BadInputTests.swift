import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import NIOConcurrencyHelpers
import TYDFSCore
import TYDFSProtocol
import TYDFSSecurity
import TYDFSTestSupport
import XCTest

/// Every bad input gets one clear line on stderr, a non-zero exit code, and changes nothing.
final class BadInputTests: XCTestCase {
    private func assertFails(
        _ cluster: TestCluster, _ arguments: [String], mentioning fragment: String, master: Bool = true,
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let result = try cluster.run(arguments, master: master)
        XCTAssertNotEqual(result.exitCode, 0, "\(arguments) should fail", file: file, line: line)
        XCTAssertTrue(result.stderr.contains(fragment), "\(arguments): stderr \(result.stderr.debugDescription) should mention \(fragment)", file: file, line: line)
        let lines = result.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "\(arguments): one line, got \(result.stderr.debugDescription)", file: file, line: line)
        XCTAssertFalse(result.stderr.contains("Fatal error") || result.stderr.contains("Stack dump"), file: file, line: line)
    }

    func testMissingFilesTakenPathsAndMalformedPaths() throws {
        let cluster = try TestCluster(datakeepers: 3)
        defer { cluster.shutdown() }
        let local = try cluster.makeFile("x", size: 100)
        try cluster.succeed(["put", local, "/dir/x"])

        try assertFails(cluster, ["get", "/missing", cluster.root + "/out"], mentioning: "/missing: no such file")
        XCTAssertFalse(FileManager.default.fileExists(atPath: cluster.root + "/out"), "a failed get creates nothing")
        try assertFails(cluster, ["stat", "/missing"], mentioning: "no such file")
        try assertFails(cluster, ["rm", "/missing"], mentioning: "no such file")
        try assertFails(cluster, ["ls", "/missing"], mentioning: "no such file or directory")
        try assertFails(cluster, ["put", cluster.root + "/nope", "/nope"], mentioning: "no such local file")
        try assertFails(cluster, ["put", cluster.root, "/folder"], mentioning: "not a regular file")
        try assertFails(cluster, ["put", local, "/dir/x"], mentioning: "already exists")
        try assertFails(cluster, ["put", local, "/dir/x/y"], mentioning: "/dir/x is a file")
        try assertFails(cluster, ["put", local, "/dir"], mentioning: "is a directory")
        try assertFails(cluster, ["put", local, "/"], mentioning: "root")
        for (path, fragment) in [
            ("/a/../b", ".."), ("/a//b", "empty segment"), ("relative/path", "not absolute"), ("/a/", "empty segment"),
            ("/" + String(repeating: "n", count: 8000), "8000"),
        ] {
            try assertFails(cluster, ["put", local, path], mentioning: fragment)
            try assertFails(cluster, ["get", path, cluster.root + "/o"], mentioning: fragment)
            try assertFails(cluster, ["stat", path], mentioning: fragment)
        }
        // Nothing above changed the namespace.
        XCTAssertEqual(try cluster.json(ListResponse.self, ["ls", "/"]).entries.map(\.path), ["/dir"])
        XCTAssertEqual(try cluster.succeed(["get", "/dir/x", "-"]).stdout, try cluster.contents(local))

        // The longest path there may be (8,000 bytes, two-byte letters in it) is put, found,
        // listed, read and removed like any other.
        let folder = (0..<31).map { "/" + String(repeating: $0 % 2 == 0 ? "d" : "é", count: $0 % 2 == 0 ? 250 : 125) }.joined()
        let longest = folder + "/" + String(repeating: "f", count: 8000 - folder.utf8.count - 1)
        XCTAssertEqual(longest.utf8.count, Limits.maxPathBytes)
        try cluster.succeed(["put", local, longest])
        XCTAssertEqual(try cluster.stat(longest).path.value, longest)
        XCTAssertEqual(try cluster.json(ListResponse.self, ["ls", folder, "--json"]).entries.map(\.path), [longest])
        XCTAssertEqual(try cluster.succeed(["get", longest, "-"]).stdout, try cluster.contents(local))
        try cluster.succeed(["rm", longest])
        try assertFails(cluster, ["stat", longest], mentioning: "no such file")

        // A sparse local file may claim any size: past the chunks a file may have, a put is
        // refused before it sends a byte, and leaves nothing behind.
        let sparse = cluster.root + "/sparse"
        XCTAssertTrue(FileManager.default.createFile(atPath: sparse, contents: nil))
        XCTAssertEqual(truncate(sparse, off_t(Limits.maxChunksPerFile * (try ByteSize.parse(cluster.chunkSize)) + 1)), 0)
        try assertFails(cluster, ["put", sparse, "/sparse"], mentioning: "more than \(Limits.maxChunksPerFile) chunks")
        try assertFails(cluster, ["stat", "/sparse"], mentioning: "no such file")
        // A benchmark prefix too long for its file names is refused before anything is put.
        let bench = try cluster.run(["bench", "--files", "10", "--prefix", "/" + String(repeating: "p", count: 7998)])
        XCTAssertNotEqual(bench.exitCode, 0)
        XCTAssertTrue(bench.stderr.contains("--prefix is too long for 10 files"), bench.stderr)
    }

    func testMalformedRequestsToTheServersGetA400AndTheClusterKeepsServing() throws {
        let cluster = try TestCluster(datakeepers: 3)
        defer { cluster.shutdown() }
        let nodes = try cluster.nodes().nodes
        // Signed and with valid tokens: these are refused for what they say, not for who sends them.
        let admin = try cluster.adminSigner()
        let datakeeper = RequestSigner(cluster: try cluster.clusterSecret())
        let absent = ChunkID(high: 0xaaaa, low: 0xaaaa), unannounced = ChunkID(high: 0xbbbb, low: 0xbbbb)
        let pipeline = [PipelineHop(id: nodes[0].id.value, address: nodes[0].address)]
        let requests: [(String, String, String?, Int, RequestSigner?, [String: String])] = [
            ("GET", cluster.masterURL + "/v1/files?path=%2Fa%00b", nil, 400, admin, [:]),
            ("GET", cluster.masterURL + "/v1/files", nil, 400, admin, [:]),
            ("POST", cluster.masterURL + "/v1/uploads", "{not json", 400, admin, [:]),
            ("POST", cluster.masterURL + "/v1/uploads", #"{"path": "/a/../b", "overwrite": false}"#, 400, admin, [:]),
            ("POST", cluster.masterURL + "/v1/heartbeat", #"{"id": "bad id!"}"#, 400, datakeeper, [:]),
            ("POST", cluster.masterURL + "/v1/uploads/unknown/commit", #"{"sizeBytes": 0, "crc32c": 0, "chunks": []}"#, 404, admin, [:]),
            ("GET", "http://\(nodes[0].address)/v1/chunks/not-a-chunk-id", nil, 400, nil, [:]),
            ("GET", "http://\(nodes[0].address)/v1/chunks/\(absent)", nil, 404, nil, [Header.chunkToken: try cluster.token(.read, absent)]),
            ("PUT", "http://\(nodes[0].address)/v1/chunks/\(unannounced)", "no header", 400, nil,
             [Header.chunkToken: try cluster.token(.write, unannounced, pipeline: pipeline)]),
        ]
        for (method, url, body, status, signer, headers) in requests {
            let answer = try HTTP.request(method, url, body: body, headers: headers, signer: signer)
            XCTAssertEqual(answer.status, status, "\(method) \(url)")
            let error = try? JSONDecoder().decode(ErrorResponse.self, from: answer.body)
            XCTAssertNotNil(error, "\(method) \(url) answers a JSON error: \(String(decoding: answer.body, as: UTF8.self))")
            XCTAssertFalse(error?.error.message.isEmpty ?? true)
        }
        // Hostile numbers in a commit or a heartbeat are refused; the master stays up.
        let upload = try HTTP.request("POST", cluster.masterURL + "/v1/uploads", body: #"{"path": "/hostile", "overwrite": false}"#, signer: admin)
        XCTAssertEqual(upload.status, 200)
        let uploadID = try JSONDecoder().decode(UploadSession.self, from: upload.body).uploadID
        for size in ["-1", "9223372036854775807", "4611686018427387904"] {
            let commit = try HTTP.request("POST", cluster.masterURL + "/v1/uploads/\(uploadID)/commit",
                                          body: #"{"sizeBytes": \#(size), "crc32c": 0, "chunks": []}"#, signer: admin)
            XCTAssertEqual(commit.status, 400, "commit of size \(size)")
        }
        let heartbeat = try HTTP.request("POST", cluster.masterURL + "/v1/heartbeat", body: """
            {"id": "evil", "bootID": "b", "address": "127.0.0.1:1", "capacityBytes": 9223372036854775807, "usedBytes": -1, "chunkCount": 0,
             "inFlight": 0, "chunksServed": 0, "wantsToReport": false, "addedChunks": [], "removedChunks": [],
             "deletedChunks": [], "badChunks": [], "copiesDone": [], "copiesFailed": []}
            """, signer: datakeeper)
        XCTAssertEqual(heartbeat.status, 400)
        XCTAssertTrue(String(decoding: heartbeat.body, as: UTF8.self).contains("impossible"), "refused for its numbers, not its shape")
        XCTAssertFalse(try cluster.nodes().nodes.contains { $0.id.value == "evil" })
        // A chunk whose trailer does not match its data is refused and not stored.
        let id = ChunkID.random()
        var frame = ChunkFrame.frame(Array("some data".utf8))
        frame[0] ^= 1
        let corrupt = try HTTP.request("PUT", "http://\(nodes[0].address)/v1/chunks/\(id)", bodyData: Data(frame),
                                       headers: [Header.dataBytes: "9", Header.chunkToken: try cluster.token(.write, id, pipeline: pipeline)])
        XCTAssertEqual(corrupt.status, 422)
        XCTAssertFalse(cluster.holds(id, on: nodes[0].id.value))
        let local = try cluster.makeFile("ok", size: 5000)
        try cluster.succeed(["put", local, "/ok"])
        XCTAssertEqual(try cluster.succeed(["get", "/ok", "-"]).stdout, try cluster.contents(local))
    }

    func testFullDataKeepersRefuseAPutCleanlyAndKeepWhatTheyHold() throws {
        let cluster = try TestCluster(datakeepers: 0)
        defer { cluster.shutdown() }
        for id in ["dk1", "dk2", "dk3"] { try cluster.startDataKeeper(id, capacity: "300KiB") }
        try cluster.waitUntil("datakeepers alive", timeout: 10) { try cluster.aliveDataKeepers().count == 3 }
        let small = try cluster.makeFile("small", size: 100 * 1024, seed: 1)
        try cluster.succeed(["put", small, "/small"])
        let big = try cluster.makeFile("big", size: 2 * 1024 * 1024, seed: 2)
        let result = try cluster.run(["put", big, "/big"])
        XCTAssertNotEqual(result.exitCode, 0)
        XCTAssertTrue(result.stderr.contains("no room") || result.stderr.contains("can take"), result.stderr)
        XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
        XCTAssertEqual(try cluster.json(ListResponse.self, ["ls"]).entries.map(\.path), ["/small"], "no half file")
        XCTAssertEqual(try cluster.succeed(["get", "/small", "-"]).stdout, try cluster.contents(small))
        // The abandoned chunks are orphans: deleted after the grace period, freeing the room.
        try cluster.waitUntil("room freed", timeout: 15) {
            try cluster.nodes().nodes.allSatisfy { $0.usedBytes < 150 * 1024 }
        }
        try cluster.succeed(["put", small, "/again"])
    }

    func testNoMasterAndNoDataKeeper() throws {
        let cluster = try TestCluster(datakeepers: 0)
        defer { cluster.shutdown() }
        let local = try cluster.makeFile("x", size: 100)
        try assertFails(cluster, ["put", local, "/x"], mentioning: "no live datakeeper")
        try assertFails(cluster, ["ls", "--master", "http://127.0.0.1:1"], mentioning: "cannot reach the master at http://127.0.0.1:1", master: false)
        try assertFails(cluster, ["nodes", "--master", "not-a-url"], mentioning: "http://", master: false)
        XCTAssertEqual(try cluster.json(ListResponse.self, ["ls"]).entries.count, 0)
    }
}
