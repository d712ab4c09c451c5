import Foundation
import TYDFSCore
import TYDFSProtocol
import XCTest

/// The compact form of lookup and batch answers carries exactly what the JSON form does, and
/// anything malformed (cut off, padded, of another version, counting more items than fit, not
/// UTF-8) is a `protocolViolation`, never a crash or a wrong answer; a value its type refuses (a
/// relative path) is refused as that type refuses it.
final class CompactCodecTests: XCTestCase {
    private func sample() throws -> LookupResponse {
        let replicas = try [
            DataKeeperAddress(id: DataKeeperID("dk1"), address: "127.0.0.1:7001", alive: true),
            DataKeeperAddress(id: DataKeeperID("dk-2.b_c"), address: "[::1]:7002", alive: false),
        ]
        let file = try FileInfo(
            path: RemotePath("/dir/naïve file ✓.txt"), sizeBytes: 70_000_000_000, mtimeMillis: -5, checksum: "crc32c:0a1b2c3d",
            chunkSizeBytes: 64 << 20, replication: 3, underReplicated: true,
            chunks: [
                ChunkInfo(index: 0, id: ChunkID(high: .max, low: 1), sizeBytes: 64 << 20, crc32c: "crc32c:ffffffff", replicas: replicas, token: "t0.abc"),
                ChunkInfo(index: 1, id: ChunkID(high: 0, low: 0), sizeBytes: 0, crc32c: "crc32c:00000000", replicas: [], token: nil),
            ],
            attributes: ["content-type": "text/plain", "x-amz-meta-ü": ""])
        let empty = try FileInfo(
            path: RemotePath("/e"), sizeBytes: 0, mtimeMillis: 0, checksum: "crc32c:00000000", chunkSizeBytes: 1, replication: 1,
            underReplicated: false, chunks: [])
        return LookupResponse(answers: [
            LookupResponse.Answer(.success(file)), LookupResponse.Answer(.failure(TYDFSError(.notFound, "/x: no such file"))),
            LookupResponse.Answer(.success(empty)), LookupResponse.Answer(.failure(TYDFSError(.forbidden, "é"))),
        ])
    }

    private func json(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    private func decode(_ bytes: [UInt8]) throws -> LookupResponse {
        try bytes.withUnsafeBytes { try CompactCodec.decode(LookupResponse.self, from: $0) }
    }

    func testALookupAnswerReadsBackAsItsJSONWould() throws {
        let response = try sample()
        let bytes = CompactCodec.encode(response)
        XCTAssertEqual(try json(try decode(bytes)), try json(response))
        XCTAssertEqual(try decode(CompactCodec.encode(LookupResponse(answers: []))).answers.count, 0)
    }

    private func roundTrip<Message: CompactCodable & Encodable & Decodable>(_ message: Message) throws -> Message {
        try CompactCodec.encode(message).withUnsafeBytes { try CompactCodec.decode(Message.self, from: $0) }
    }

    func testBatchedOpenCommitAndChunkWriteAnswersReadBackAsTheirJSONWould() throws {
        let file = try XCTUnwrap(try sample().answers[0].file)
        let targets = try [DataKeeperAddress(id: DataKeeperID("dk3"), address: "10.0.0.3:1", alive: true)]
        let opens = OpenUploadsResponse(answers: [
            BatchAnswer(.success(UploadSession(
                uploadID: "u1", chunkSizeBytes: 4096, replication: 3,
                firstChunk: ChunkAllocation(chunkID: ChunkID(high: 9, low: 8), targets: targets, replication: 3, token: "w.1")))),
            BatchAnswer(.success(UploadSession(
                uploadID: "u2", chunkSizeBytes: 1, replication: 1,
                firstChunk: ChunkAllocation(chunkID: ChunkID(high: 0, low: 1), targets: [], replication: 2, token: nil)))),
            BatchAnswer(.success(UploadSession(uploadID: "u3", chunkSizeBytes: 1, replication: 1, committed: file))),
            BatchAnswer(.failure(TYDFSError(.alreadyExists, "/a exists"))),
        ])
        XCTAssertEqual(try json(try roundTrip(opens)), try json(opens))
        let commits = CommitUploadsResponse(answers: [BatchAnswer(.success(file)), BatchAnswer(.failure(TYDFSError(.uploadUnknown, "no upload u9")))])
        XCTAssertEqual(try json(try roundTrip(commits)), try json(commits))
        let writes = BatchResponse<ChunkWriteResult>(answers: [
            BatchAnswer(.success(ChunkWriteResult(stored: try [DataKeeperID("a"), DataKeeperID("b")], dataBytes: 7, crc32c: .max, failures: ["c: gone", "d: ✗"]))),
            BatchAnswer(.success(ChunkWriteResult(stored: [], dataBytes: 0, crc32c: 0, failures: []))),
            BatchAnswer(.failure(TYDFSError(.checksumMismatch, "block 0"))),
        ])
        XCTAssertEqual(try json(try roundTrip(writes)), try json(writes))
        for length in 0..<(CompactCodec.encode(opens).count) {
            XCTAssertThrowsError(try Array(CompactCodec.encode(opens).prefix(length)).withUnsafeBytes { try CompactCodec.decode(OpenUploadsResponse.self, from: $0) })
        }
    }

    func testLookupOpenAndCommitRequestsReadBackAsTheirJSONWould() throws {
        let lookup = LookupRequest(items: try [LookupRequest.Item(path: RemotePath("/a b/ü"), inspect: true), LookupRequest.Item(path: RemotePath("/c"), inspect: false)])
        XCTAssertEqual(try json(try roundTrip(lookup)), try json(lookup))
        let adopted = try [
            CommittedChunk(index: 0, id: ChunkID(high: 1, low: 2), sizeBytes: 5, crc32c: 7, replicas: [DataKeeperID("dk1"), DataKeeperID("dk2")], token: "w.x"),
            CommittedChunk(index: 3, id: ChunkID(high: .max, low: 0), sizeBytes: 0, crc32c: .max, replicas: []),
        ]
        let opens = OpenUploadsRequest(items: try [
            CreateUploadRequest(path: RemotePath("/f"), overwrite: true, firstChunkBytes: 4096, commitID: "c1", adopt: adopted),
            CreateUploadRequest(path: RemotePath("/g"), overwrite: false),
            CreateUploadRequest(path: RemotePath("/h"), overwrite: false, firstChunkBytes: nil, commitID: nil, adopt: []),
        ])
        XCTAssertEqual(try json(try roundTrip(opens)), try json(opens))
        let commits = CommitUploadsRequest(items: [
            UploadCommit(uploadID: "u1", commit: CommitUploadRequest(sizeBytes: 5, crc32c: 9, chunks: adopted, attributes: ["content-type": "a/b", "x": ""])),
            UploadCommit(uploadID: "u2", commit: CommitUploadRequest(sizeBytes: 0, crc32c: 0, chunks: [])),
        ])
        XCTAssertEqual(try json(try roundTrip(commits)), try json(commits))
        let bytes = CompactCodec.encode(commits)
        for length in 0..<bytes.count {
            XCTAssertThrowsError(try Array(bytes.prefix(length)).withUnsafeBytes { try CompactCodec.decode(CommitUploadsRequest.self, from: $0) })
        }
    }

    func testAListingReadsBackAsItsJSONWouldAndCutOffAnywhereIsRefused() throws {
        let listing = ListResponse(
            path: "/dir", entries: [
                ListEntry(path: "/dir/naïve file ✓.txt", isDirectory: false, sizeBytes: 70_000_000_000, mtimeMillis: -5, checksum: "crc32c:0a1b2c3d",
                          attributes: ["posix-mode": "100644", "x-amz-meta-ü": ""]),
                ListEntry(path: "/dir/sub", isDirectory: true, sizeBytes: 0, mtimeMillis: 1_700_000_000_000),
                ListEntry(path: "/dir/made", isDirectory: true, sizeBytes: 12, mtimeMillis: 0, attributes: [:]),
            ],
            attributes: ["posix-mode": "40700"], mtimeMillis: 1_700_000_000_001, subdirectoryCount: 2)
        XCTAssertEqual(try json(try roundTrip(listing)), try json(listing))
        let bare = ListResponse(path: "/", entries: [])
        XCTAssertEqual(try json(try roundTrip(bare)), try json(bare), "absent fields stay absent")
        let bytes = CompactCodec.encode(listing)
        for length in 0..<bytes.count {
            XCTAssertThrowsError(try Array(bytes.prefix(length)).withUnsafeBytes { try CompactCodec.decode(ListResponse.self, from: $0) }) {
                XCTAssertEqual(($0 as? TYDFSError)?.code, .protocolViolation)
            }
        }
        XCTAssertThrowsError(try (bytes + [0]).withUnsafeBytes { try CompactCodec.decode(ListResponse.self, from: $0) }, "a byte past the end")
        // A page that more follow carries the name to go on from, last, so that a client from
        // before paging (which never asks for a page) reads every answer it gets as before. Cut
        // off just before that name, a page reads as the same entries, whole: that one cut only
        // HTTP's framing (Content-Length) refuses. Every other cut is refused here.
        var page = listing
        page.nextAfter = "naïve file ✓.txt"
        XCTAssertEqual(try json(try roundTrip(page)), try json(page))
        let pageBytes = CompactCodec.encode(page)
        XCTAssertEqual(Array(pageBytes.prefix(bytes.count)), bytes)
        for length in 0..<pageBytes.count where length != bytes.count {
            XCTAssertThrowsError(try Array(pageBytes.prefix(length)).withUnsafeBytes { try CompactCodec.decode(ListResponse.self, from: $0) }) {
                XCTAssertEqual(($0 as? TYDFSError)?.code, .protocolViolation, "cut to \(length) bytes")
            }
        }
    }

    func testAnythingMalformedIsAProtocolViolation() throws {
        let bytes = CompactCodec.encode(try sample())
        func assertRefused(_ bytes: [UInt8], _ what: String) {
            XCTAssertThrowsError(try decode(bytes), what) { XCTAssertEqual(($0 as? TYDFSError)?.code, .protocolViolation, "\(what): \($0)") }
        }
        // Cut off anywhere.
        for length in 0..<bytes.count { assertRefused(Array(bytes.prefix(length)), "cut to \(length) bytes") }
        assertRefused(bytes + [0], "a byte past the end")
        assertRefused([2] + bytes.dropFirst(), "another version")
        // A count of answers far beyond what the bytes hold.
        assertRefused([1, 0xff, 0xff, 0xff, 0xff], "4 billion answers")
        assertRefused([1, 0, 0, 0, 1, 7] + [UInt8](repeating: 0, count: 8), "an answer of an unknown kind")
        // An error answer whose code is not UTF-8.
        assertRefused([1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0xff, 0, 0, 0, 0], "a string that is not UTF-8")
        // A boolean that is neither 0 nor 1 (the first file's `underReplicated`).
        var badBool = bytes
        let flag = 1 + 4 + 1 + 4 + "/dir/naïve file ✓.txt".utf8.count + 8 + 8 + 4 + "crc32c:0a1b2c3d".utf8.count + 8 + 8
        XCTAssertEqual(badBool[flag], 1)
        badBool[flag] = 2
        assertRefused(badBool, "a boolean of 2")
    }

    func testAnInvalidPathIsRefused() throws {
        var bytes: [UInt8] = [1, 0, 0, 0, 1, 0]
        let path = Array("relative".utf8)
        bytes += [0, 0, 0, UInt8(path.count)] + path
        XCTAssertThrowsError(try decode(bytes)) { XCTAssertEqual(($0 as? TYDFSError)?.code, .invalidArgument, "\($0)") }
    }
}
