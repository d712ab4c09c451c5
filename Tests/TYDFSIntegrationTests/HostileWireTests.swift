import Foundation
import NIOConcurrencyHelpers
import TYDFSCore
import TYDFSProtocol
import TYDFSSecurity
import TYDFSTestSupport
import XCTest

/// What no HTTP library would send, sent to the master and to a datakeeper over raw TCP:
/// oversized headers, bodies shorter and longer than their `Content-Length`, bytes that are not
/// UTF-8. Each gets a 4xx or a closed connection, never a 5xx; the servers keep serving and no
/// stored byte changes. And concurrent puts, removes and gets of one path: every get returns one
/// whole version, and the path ends holding one whole version or nothing.
final class HostileWireTests: XCTestCase {
    /// A signed request as raw bytes: `head` is the request line's method and target.
    private func signed(_ method: String, _ target: String, body: [UInt8], signer: RequestSigner, declaredLength: Int? = nil) -> [UInt8] {
        var head = "\(method) \(target) HTTP/1.1\r\nHost: tydfs\r\nContent-Length: \(declaredLength ?? body.count)\r\n"
        for (name, value) in signer.headers(method: method, target: target, body: body, date: UnixClock.now) { head += "\(name): \(value)\r\n" }
        return Array((head + "\r\n").utf8) + body
    }

    private func assertNo5xx(_ answer: (received: [UInt8], closed: Bool), _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        let statuses = RawHTTP.statuses(answer.received)
        XCTAssertFalse(statuses.contains { $0 >= 500 }, "\(what): \(statuses)", file: file, line: line)
        XCTAssertTrue(answer.closed || !statuses.isEmpty, "\(what): neither an answer nor a closed connection", file: file, line: line)
    }

    func testOversizedHeadersWrongLengthsAndInvalidUTF8GetA4xxOrAClosedConnectionNeverA5xx() throws {
        let cluster = try TestCluster(datakeepers: 3, dataKeeperArguments: ["--idle-timeout", "2s"], masterArguments: ["--idle-timeout", "2s"])
        defer { cluster.shutdown() }
        let local = try cluster.makeFile("kept", size: 200_000, seed: 8)
        try cluster.succeed(["put", local, "/kept"])
        let admin = try cluster.adminSigner()
        let master = String(cluster.masterURL.dropFirst("http://".count))
        let datakeeper = try XCTUnwrap(try cluster.nodes().nodes.first).address

        for server in [master, datakeeper] {
            // A megabyte of header.
            let huge = "GET \(Route.healthz) HTTP/1.1\r\nHost: tydfs\r\nX-Padding: \(String(repeating: "a", count: 1 << 20))\r\n\r\n"
            assertNo5xx(try RawHTTP.exchange(server, send: Array(huge.utf8), readSeconds: 5), "\(server): a 1 MiB header")
            // Many small headers (4,000 of them, 40 KB in all: under the size limit).
            let many = "GET \(Route.healthz) HTTP/1.1\r\nHost: tydfs\r\n" + (0..<4_000).map { "X-\($0): v\r\n" }.joined() + "\r\n"
            assertNo5xx(try RawHTTP.exchange(server, send: Array(many.utf8), readSeconds: 5), "\(server): 4,000 headers")
        }

        // A body shorter than declared: the server waits for the rest, then drops the connection
        // after its idle timeout (2 s here), having stored nothing.
        let started = Date()
        let short = signed("POST", Route.uploads, body: Array(#"{"path": "/short", "overwrite": false}"#.utf8), signer: admin, declaredLength: 1000)
        let shortAnswer = try RawHTTP.exchange(master, send: short, readSeconds: 15)
        assertNo5xx(shortAnswer, "master: a body shorter than declared")
        XCTAssertTrue(shortAnswer.closed)
        XCTAssertLessThan(Date().timeIntervalSince(started), 10, "the connection was held past the idle timeout")
        let chunk = ChunkID.random()
        let hop = PipelineHop(id: try XCTUnwrap(try cluster.nodes().nodes.first).id.value, address: datakeeper)
        var put = "PUT \(Route.chunk(chunk.value)) HTTP/1.1\r\nHost: tydfs\r\nContent-Length: \(ChunkFrame.frameBytes(dataBytes: 100_000))\r\n"
        put += "\(Header.dataBytes): 100000\r\n\(Header.chunkToken): \(try cluster.token(.write, chunk, pipeline: [hop]))\r\n\r\n"
        let partialChunk = try RawHTTP.exchange(datakeeper, send: Array(put.utf8) + [UInt8](repeating: 7, count: 5000), readSeconds: 15)
        assertNo5xx(partialChunk, "datakeeper: a chunk body shorter than declared")
        XCTAssertTrue(partialChunk.closed)
        XCTAssertFalse(cluster.holds(chunk, on: hop.id), "half a chunk must not be stored")

        // A body longer than declared: the extra bytes are read as a next request, and refused.
        var long = signed("POST", Route.uploads, body: Array(#"{"path": "/long", "overwrite": false}"#.utf8), signer: admin)
        long += Array("TRAILING GARBAGE THAT IS NOT A REQUEST\r\n\r\n".utf8)
        let longAnswer = try RawHTTP.exchange(master, send: long, readSeconds: 3)
        assertNo5xx(longAnswer, "master: a body longer than declared")
        XCTAssertEqual(RawHTTP.statuses(longAnswer.received).first, 200, "the declared body itself is a valid request")

        // Bytes that are not UTF-8, in a path and in a JSON body.
        let badPath = signed("GET", Route.files + "?path=%2F%FF%FE", body: [], signer: admin)
        let badPathAnswer = try RawHTTP.exchange(master, send: badPath, readSeconds: 3)
        XCTAssertEqual(RawHTTP.statuses(badPathAnswer.received).first, 400, "a path that is not UTF-8")
        let badJSON = signed("POST", Route.uploads, body: Array(#"{"path": "/"#.utf8) + [0xff, 0xfe, 0xc0] + Array(#"", "overwrite": false}"#.utf8), signer: admin)
        let badJSONAnswer = try RawHTTP.exchange(master, send: badJSON, readSeconds: 3)
        XCTAssertEqual(RawHTTP.statuses(badJSONAnswer.received).first, 400, "a JSON body that is not UTF-8")

        // Everyone still serves, and the stored file is unchanged.
        XCTAssertEqual(try cluster.succeed(["get", "/kept", "-"]).stdout, try cluster.contents(local))
        XCTAssertEqual(try cluster.aliveDataKeepers().count, 3)
    }

    func testConcurrentPutsRemovesAndGetsOfOnePathSeeOnlyWholeVersions() throws {
        let cluster = try TestCluster(datakeepers: 3)
        defer { cluster.shutdown() }
        // Versions of several chunks each (64 KiB chunks), so a mix of two would be visible.
        let versions = try (0..<3).map { try cluster.makeFile("v\($0)", size: 300_000 + $0 * 1000, seed: UInt64(60 + $0)) }
        let contents = try Set(versions.map { try cluster.contents($0) })
        let failures = NIOLockedValueBox<[String]>([])
        let deadline = Date().addingTimeInterval(6)
        DispatchQueue.concurrentPerform(iterations: 6) { worker in
            var round = 0
            while Date() < deadline {
                round += 1
                do {
                    switch (worker + round) % 3 {
                    case 0:
                        let put = try cluster.run(["put", "--overwrite", versions[(worker + round) % versions.count], "/contested"])
                        if put.exitCode != 0, !put.stderr.contains("tydfs:") { failures.withLockedValue { $0.append("put without a message: \(put.stderr)") } }
                    case 1:
                        let removed = try cluster.run(["rm", "/contested"])
                        if removed.exitCode != 0, !removed.stderr.contains("no such file") { failures.withLockedValue { $0.append("rm: \(removed.stderr)") } }
                    default:
                        let got = try cluster.run(["get", "/contested", "-"])
                        if got.exitCode == 0, !contents.contains(got.stdout) { failures.withLockedValue { $0.append("a get returned \(got.stdout.count) bytes no put wrote whole") } }
                        if got.exitCode != 0, !got.stderr.contains("tydfs:") { failures.withLockedValue { $0.append("get without a message: \(got.stderr)") } }
                    }
                } catch {
                    failures.withLockedValue { $0.append("\(error)") }
                }
            }
        }
        XCTAssertEqual(failures.withLockedValue { $0 }, [])
        let last = try cluster.run(["get", "/contested", "-"])
        if last.exitCode == 0 {
            XCTAssertTrue(contents.contains(last.stdout), "the path ends holding one whole version")
        } else {
            XCTAssertTrue(last.stderr.contains("no such file"), last.stderr)
        }
        let report = try cluster.fsck()
        XCTAssertTrue(report.healthy)
    }
}
