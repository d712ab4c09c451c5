import Foundation
import TYDFSCore
import TYDFSProtocol
import TYDFSSecurity
import TYDFSTestSupport
import XCTest

/// Chunk batches (`PUT /v1/chunk-batch`) on real datakeepers: each chunk of a batch is allowed,
/// verified, stored and answered on its own, the batch goes down the whole pipeline, and a bad
/// request stores nothing. Small-file puts made together travel in batches.
final class ChunkBatchTests: XCTestCase {
    private struct Hop {
        var id: String
        var address: String
        var pipelineHop: PipelineHop { PipelineHop(id: id, address: address) }
    }

    private func hops(_ cluster: TestCluster) throws -> [Hop] {
        try cluster.nodes().nodes.sorted { $0.id.value < $1.id.value }.map { Hop(id: $0.id.value, address: $0.address) }
    }

    /// Sends `frames` as one batch to the first of `pipeline`, listing `chunks` (tokens made for `pipeline`).
    private func sendBatch(
        _ cluster: TestCluster, _ chunks: [(ChunkID, Int64)], frames: [UInt8], pipeline: [PipelineHop], header: String? = nil
    ) throws -> HTTP.Answer {
        let listed = try chunks.map { BatchedChunk(chunk: $0.0, dataBytes: $0.1, token: try cluster.token(.write, $0.0, pipeline: pipeline)) }
        return try HTTP.request("PUT", "http://\(pipeline[0].address)\(Route.chunkBatch)", bodyData: Data(frames), headers: [
            Header.chunks: header ?? BatchedChunk.encode(listed), Header.forward: PipelineHop.encode(Array(pipeline.dropFirst())),
        ])
    }

    private func data(_ count: Int, seed: UInt8) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) } }

    func testEachChunkOfABatchIsStoredOnTheWholePipelineOrAnsweredWithItsOwnError() throws {
        // The chunks sent here belong to no file: a long orphan grace keeps them while they are looked at.
        let cluster = try TestCluster(datakeepers: 3, masterArguments: ["--orphan-grace", "1h"])
        defer { cluster.shutdown() }
        let hops = try hops(cluster)
        let pipeline = hops.map(\.pipelineHop)

        // Three good chunks of different sizes around a fourth whose data does not match its checksums.
        let sizes: [Int64] = [1, 4096, 60_000, Limits.batchedChunkMaxBytes]
        let chunks = sizes.map { (ChunkID.random(), $0) }
        var frames: [[UInt8]] = sizes.enumerated().map { ChunkFrame.frame(data(Int($0.element), seed: UInt8($0.offset))) }
        frames[1][10] ^= 0xff
        let answer = try sendBatch(cluster, chunks, frames: frames.flatMap { $0 }, pipeline: pipeline)
        XCTAssertEqual(answer.status, 200, String(decoding: answer.body, as: UTF8.self))
        let answers = try JSONDecoder().decode(BatchResponse<ChunkWriteResult>.self, from: answer.body).answers
        XCTAssertEqual(answers.count, 4)
        for index in [0, 2, 3] {
            let result = try answers[index].get()
            XCTAssertEqual(result.stored.map(\.value), hops.map(\.id), "chunk \(index) on the whole pipeline, in order")
            XCTAssertEqual(result.failures, [])
            XCTAssertEqual(result.dataBytes, sizes[index])
            XCTAssertEqual(result.crc32c, CRC32C.checksum(data(Int(sizes[index]), seed: UInt8(index))))
            for hop in hops { XCTAssertTrue(cluster.isIntact(chunks[index].0, on: hop.id), "chunk \(index) on \(hop.id)") }
        }
        XCTAssertEqual(answers[1].error?.code, TYDFSError.Code.checksumMismatch.rawValue)
        for hop in hops { XCTAssertFalse(cluster.holds(chunks[1].0, on: hop.id), "a corrupt chunk is stored nowhere") }

        // The same chunk again: already stored, refused on its own; a new one beside it is stored.
        let fresh = (ChunkID.random(), Int64(100))
        let again = try sendBatch(cluster, [chunks[0], fresh], frames: ChunkFrame.frame(data(1, seed: 0)) + ChunkFrame.frame(data(100, seed: 9)), pipeline: pipeline)
        let againAnswers = try JSONDecoder().decode(BatchResponse<ChunkWriteResult>.self, from: again.body).answers
        XCTAssertEqual(againAnswers[0].error?.code, TYDFSError.Code.alreadyExists.rawValue)
        XCTAssertEqual(try againAnswers[1].get().stored.count, 3)

        // A next hop that cannot be reached: this hop stores each chunk and says which hops failed.
        let dead = PipelineHop(id: "dk9", address: "127.0.0.1:1")
        let cut = (ChunkID.random(), Int64(10))
        let cutAnswer = try sendBatch(cluster, [cut], frames: ChunkFrame.frame(data(10, seed: 3)), pipeline: [pipeline[0], dead, pipeline[1]])
        let cutResult = try JSONDecoder().decode(BatchResponse<ChunkWriteResult>.self, from: cutAnswer.body).answers[0].get()
        XCTAssertEqual(cutResult.stored.map(\.value), [hops[0].id])
        XCTAssertEqual(cutResult.failures.count, 2, "\(cutResult.failures)")
        XCTAssertTrue(cutResult.failures[0].hasPrefix("dk9 (127.0.0.1:1)"), "\(cutResult.failures)")
        XCTAssertTrue(cluster.holds(cut.0, on: hops[0].id))
        XCTAssertFalse(cluster.holds(cut.0, on: hops[1].id))

        // Bad requests store nothing at all.
        let refused = (ChunkID.random(), Int64(10))
        let frame = ChunkFrame.frame(data(10, seed: 4))
        let malformed = try sendBatch(cluster, [refused], frames: frame, pipeline: pipeline, header: "not-a-chunk-list")
        XCTAssertEqual(malformed.status, 400)
        let short = try sendBatch(cluster, [refused, (ChunkID.random(), 10)], frames: frame, pipeline: pipeline)
        XCTAssertEqual(short.status, 400, "a body shorter than the frames listed")
        let tooBig = try sendBatch(cluster, [(refused.0, Limits.batchedChunkMaxBytes + 1)], frames: frame, pipeline: pipeline)
        XCTAssertEqual(tooBig.status, 400, "a chunk too large for a batch")
        // Chunks refused at the first hop go no further, and do not stop the others: a token
        // for another chunk, a token naming other hops, no token.
        let allowed = (ChunkID.random(), Int64(10)), otherHops = (ChunkID.random(), Int64(10)), unsigned = (ChunkID.random(), Int64(10))
        let mixed = try [
            BatchedChunk(chunk: allowed.0, dataBytes: 10, token: try cluster.token(.write, allowed.0, pipeline: pipeline)),
            BatchedChunk(chunk: refused.0, dataBytes: 10, token: try cluster.token(.write, ChunkID.random(), pipeline: pipeline)),
            BatchedChunk(chunk: otherHops.0, dataBytes: 10, token: try cluster.token(.write, otherHops.0, pipeline: [pipeline[0], pipeline[2], pipeline[1]])),
            BatchedChunk(chunk: unsigned.0, dataBytes: 10, token: ""),
        ]
        let mixedAnswer = try sendBatch(cluster, [], frames: Array(repeating: frame, count: 4).flatMap { $0 }, pipeline: pipeline, header: BatchedChunk.encode(mixed))
        XCTAssertEqual(mixedAnswer.status, 200, String(decoding: mixedAnswer.body, as: UTF8.self))
        let mixedAnswers = try JSONDecoder().decode(BatchResponse<ChunkWriteResult>.self, from: mixedAnswer.body).answers
        XCTAssertEqual(try mixedAnswers[0].get().stored.count, 3)
        XCTAssertEqual(mixedAnswers.dropFirst().map(\.error?.code), [TYDFSError.Code.forbidden, .forbidden, .unauthenticated].map(\.rawValue))
        for hop in hops {
            XCTAssertTrue(cluster.holds(allowed.0, on: hop.id))
            for chunk in [refused.0, otherHops.0, unsigned.0] { XCTAssertFalse(cluster.holds(chunk, on: hop.id), "a refused chunk on \(hop.id)") }
        }
        // Nothing allowed at all: refused whole, as a single chunk would be.
        let noneAllowed = try sendBatch(cluster, [refused], frames: frame, pipeline: pipeline, header: "\(refused.0.value):10:")
        XCTAssertEqual(noneAllowed.status, 401, "no token")
        for hop in hops { XCTAssertFalse(cluster.holds(refused.0, on: hop.id)) }
        XCTAssertEqual(try cluster.aliveDataKeepers().count, 3)
    }

    /// A next hop from before chunk batches answers the batch route 404, as any server without a
    /// route does; it then gets each chunk of the batch in a request of its own, and stores them.
    func testABatchIsForwardedChunkByChunkToADataKeeperWithoutTheRoute() throws {
        let cluster = try TestCluster(datakeepers: 1, masterArguments: ["--orphan-grace", "1h"])
        defer { cluster.shutdown() }
        let first = try XCTUnwrap(try hops(cluster).first)
        // The old datakeeper: a chunk PUT is stored (and logged); any other route is missing.
        let script = """
            import http.server, json, sys
            class Old(http.server.BaseHTTPRequestHandler):
                def do_PUT(self):
                    body = self.rfile.read(int(self.headers['Content-Length']))
                    if self.path.startswith('/v1/chunks/'):
                        status, answer = 200, {"stored": ["old"], "dataBytes": int(self.headers['\(Header.dataBytes)']), "crc32c": 0, "failures": []}
                        with open(sys.argv[1], 'a') as log: log.write("single %s %d\\n" % (self.path.split('/')[-1], len(body)))
                    else:
                        status, answer = 404, {"error": {"code": "not_found", "message": "no route " + self.path}}
                    data = json.dumps(answer).encode()
                    self.send_response(status)
                    self.send_header('Content-Type', 'application/json')
                    self.send_header('Content-Length', str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                def log_message(self, *arguments): pass
            server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Old)
            print(server.server_address[1], flush=True)
            server.serve_forever()
            """
        let old = Process()
        old.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        // Singles are logged to a file, written before each answer: the old datakeeper's standard
        // output, read after it ended, was once found empty in CI although it had answered.
        let singlesLog = FileManager.default.temporaryDirectory.appendingPathComponent("tydfs-old-dk-\(UUID().uuidString).log")
        defer { try? FileManager.default.removeItem(at: singlesLog) }
        old.arguments = ["python3", "-c", script, singlesLog.path]
        let output = Pipe()
        old.standardOutput = output
        try old.run()
        defer { old.terminate(); old.waitUntilExit() }
        var printed = ""
        while !printed.contains("\n") {
            let more = output.fileHandleForReading.availableData
            XCTAssertFalse(more.isEmpty, "the old datakeeper did not start")
            if more.isEmpty { return }
            printed += String(decoding: more, as: UTF8.self)
        }
        let port = try XCTUnwrap(Int(printed.split(separator: "\n")[0]))
        let pipeline = [first.pipelineHop, PipelineHop(id: "old", address: "127.0.0.1:\(port)")]

        let chunks = [(ChunkID.random(), Int64(10)), (ChunkID.random(), Int64(5000))]
        let frames = ChunkFrame.frame(data(10, seed: 1)) + ChunkFrame.frame(data(5000, seed: 2))
        let answer = try sendBatch(cluster, chunks, frames: frames, pipeline: pipeline)
        XCTAssertEqual(answer.status, 200, String(decoding: answer.body, as: UTF8.self))
        let results = try JSONDecoder().decode(BatchResponse<ChunkWriteResult>.self, from: answer.body).answers.map { try $0.get() }
        XCTAssertEqual(results.map(\.stored), [[first.id, "old"], [first.id, "old"]].map { $0.map { try! DataKeeperID($0) } })
        XCTAssertEqual(results.map(\.failures), [[], []])
        for chunk in chunks { XCTAssertTrue(cluster.holds(chunk.0, on: first.id)) }
        old.terminate()
        old.waitUntilExit()
        let singles = try String(contentsOf: singlesLog, encoding: .utf8)
            .split(separator: "\n").filter { $0.hasPrefix("single ") }.map(String.init).sorted()
        XCTAssertEqual(singles, chunks.map { "single \($0.0.value) \(ChunkFrame.frameBytes(dataBytes: $0.1))" }.sorted())
    }

    /// A batched read (`GET /v1/chunk-batch`) answers each chunk as a read of it alone would: its
    /// frame, or its own status (not held, a token for another chunk or for writing, no token,
    /// another size than held, a corrupt frame, which is then taken out of service). The frames
    /// served come one after another, in the order asked. A malformed list is refused whole.
    func testABatchedReadAnswersEachChunkAsItsOwnRead() throws {
        let cluster = try TestCluster(datakeepers: 1, masterArguments: ["--orphan-grace", "1h"])
        defer { cluster.shutdown() }
        let hop = try XCTUnwrap(try hops(cluster).first)
        let sizes: [Int64] = [4096, Limits.batchedChunkMaxBytes, 10, 20, 30, 40, 50]
        let stored = sizes.map { (ChunkID.random(), $0) }
        let frames = sizes.enumerated().map { ChunkFrame.frame(data(Int($0.element), seed: UInt8($0.offset))) }
        XCTAssertEqual(try sendBatch(cluster, stored, frames: frames.flatMap { $0 }, pipeline: [hop.pipelineHop]).status, 200)
        try cluster.flipByte(of: stored[5].0, on: hop.id, at: 3)

        func read(_ header: String) throws -> HTTP.Answer {
            try HTTP.request("GET", "http://\(hop.address)\(Route.chunkBatch)", headers: [Header.chunks: header])
        }
        func reading(_ chunk: (ChunkID, Int64), dataBytes: Int64? = nil, token: String? = nil) throws -> BatchedChunk {
            BatchedChunk(chunk: chunk.0, dataBytes: dataBytes ?? chunk.1, token: try token ?? cluster.token(.read, chunk.0))
        }
        let asked = try [
            reading(stored[0]), reading((ChunkID.random(), 10)), reading(stored[1]),
            reading(stored[2], token: try cluster.token(.read, stored[3].0)), reading(stored[3], dataBytes: 21),
            reading(stored[4], token: ""), reading(stored[5]),
            reading(stored[6], token: try cluster.token(.write, stored[6].0, pipeline: [hop.pipelineHop])),
        ]
        let answer = try read(BatchedChunk.encode(asked))
        XCTAssertEqual(answer.status, 200, String(decoding: answer.body, as: UTF8.self))
        XCTAssertEqual(answer.header(Header.chunkStatuses), "200,404,200,403,400,401,422,403")
        XCTAssertEqual([UInt8](answer.body), frames[0] + frames[1], "the frames of the chunks served, in order")
        try cluster.waitUntil("the corrupt chunk is taken out of service", timeout: 10) { !cluster.holds(stored[5].0, on: hop.id) }
        XCTAssertTrue(cluster.isIntact(stored[0].0, on: hop.id))

        let many = try (0...Limits.maxChunksPerBatch).map { _ in try reading((ChunkID.random(), 10)) }
        for header in [
            "", "not-a-chunk-list", BatchedChunk.encode([asked[0], asked[0]]), BatchedChunk.encode(many),
            BatchedChunk.encode([try reading(stored[1], dataBytes: Limits.batchedChunkMaxBytes + 1)]),
        ] {
            XCTAssertEqual(try read(header).status, 400, header)
        }
        XCTAssertEqual(try cluster.aliveDataKeepers().count, 1)
    }

    /// `get` of a small file whose chunk is corrupt on two of its three datakeepers: whichever
    /// replica a batched read asks first, the file reads back intact, and the good replica keeps
    /// the chunk. (The fallback itself, replica by replica, is shown with scripted datakeepers in
    /// `MasterStateTests.testABatchedReadNotServedFallsBackReplicaByReplicaAndAsksForEachChunkOnce`.)
    func testAChunkABatchedReadDoesNotServeIsReadFromAnotherReplica() throws {
        let cluster = try TestCluster(datakeepers: 3)
        defer { cluster.shutdown() }
        let local = try cluster.makeFile("small", size: 3000)
        try cluster.succeed(["put", local, "/small"])
        let chunk = try XCTUnwrap(try cluster.stat("/small").chunks.first)
        let holders = chunk.replicas.map(\.id.value).sorted()
        XCTAssertEqual(holders.count, 3)
        for holder in holders.prefix(2) { try cluster.flipByte(of: chunk.id, on: holder, at: 100) }
        try cluster.succeed(["get", "/small", cluster.root + "/back"])
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: cluster.root + "/back")), try Data(contentsOf: URL(fileURLWithPath: local)))
        try cluster.succeed(["get", "/small", cluster.root + "/again"])
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: cluster.root + "/again")), try Data(contentsOf: URL(fileURLWithPath: local)))
        // Whichever was asked is out of service; the good one still holds the chunk.
        XCTAssertTrue(cluster.isIntact(chunk.id, on: holders[2]))
    }

    /// `put -r` of small files: their chunks go down their pipelines in batches, and every file
    /// reads back byte for byte.
    func testSmallFilesPutTogetherTravelInBatches() throws {
        let cluster = try TestCluster(datakeepers: 3)
        defer { cluster.shutdown() }
        let folder = cluster.root + "/small"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let files = 48
        for index in 0..<files {
            try Data(data(100 + index * 997, seed: UInt8(index))).write(to: URL(fileURLWithPath: "\(folder)/f\(index)"))
        }
        try cluster.succeed(["put", "-r", folder, "/small", "--concurrency", "16"])
        try cluster.succeed(["get", "-r", "/small", cluster.root + "/back", "--concurrency", "16"])
        for index in 0..<files {
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: "\(cluster.root)/back/f\(index)")), Data(data(100 + index * 997, seed: UInt8(index))))
        }
        for index in 0..<files {
            let info = try cluster.stat("/small/f\(index)")
            for chunk in info.chunks { XCTAssertEqual(chunk.replicas.count, 3, "f\(index) chunk \(chunk.index): \(chunk.replicas.map(\.id))") }
        }
        /// Chunk batches answered 200 by all datakeepers together, for `method`.
        func batches(_ method: String) throws -> Double {
            var count = 0.0
            for hop in try hops(cluster) {
                let page = String(decoding: try HTTP.request("GET", "http://\(hop.address)\(Route.metrics)").body, as: UTF8.self)
                count += TestCluster.metricSample(
                    "tydfs_http_requests_total", labels: "http_route=\"\(Route.chunkBatch)\",http_request_method=\"\(method)\",http_response_status_code=\"200\"", in: page) ?? 0
            }
            return count
        }
        // Every batch reaches all 3 datakeepers; fewer batches than files means some carried several.
        let writes = try batches("PUT")
        XCTAssertGreaterThan(writes, 0, "small chunks went in batches")
        XCTAssertLessThan(writes, Double(3 * files), "some batch carried several chunks")
        // The get -r read them in batches too, each from one replica.
        let reads = try batches("GET")
        XCTAssertGreaterThan(reads, 0, "small chunks were read in batches")
        XCTAssertLessThanOrEqual(reads, Double(files), "one replica read per file at most")
    }
}
