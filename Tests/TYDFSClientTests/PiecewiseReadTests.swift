import NIOCore
import TYDFSCore
import TYDFSProtocol
import TYDFSTestSupport
import XCTest

@testable import TYDFSClient

/// The client's streaming read in pieces smaller than a chunk, on a real cluster: what a chunk
/// larger than `Limits.readPieceBytes` gets. No delivery holds more than a piece, the bytes are
/// the stored ones for any range, a bad block on a replica is read from another, and a chunk
/// whose pieces do not make the checksum the file names fails the read.
final class PiecewiseReadTests: XCTestCase {
    private static let pieceBytes: Int64 = 1 << 20

    /// What `read` delivered for `range` in pieces of `pieceBytes`, failing when one delivery
    /// holds more than that.
    private func read(
        _ client: TYDFSClient, _ info: FileInfo, _ range: Range<Int64>?, pieceBytes: Int64 = pieceBytes,
        file: StaticString = #filePath, line: UInt = #line
    ) async throws -> [UInt8] {
        var bytes: [UInt8] = []
        try await client.read(info, range: range, pieceBytes: pieceBytes) { pieces in
            let delivered = pieces.reduce(0) { $0 + $1.readableBytes }
            XCTAssertLessThanOrEqual(delivered, Int(pieceBytes), "one delivery held more than a piece", file: file, line: line)
            for piece in pieces { bytes += piece.readableBytesView }
        }
        return bytes
    }

    func testPiecesDeliverTheStoredBytesForAnyRangeAndNoMoreThanAPieceAtOnce() async throws {
        // No scrubbing: the bad blocks below must be met by reads, not set aside first.
        let cluster = try TestCluster(datakeepers: 3, chunkSize: "4MiB", dataKeeperArguments: ["--scrub-interval", "1h"])
        defer { cluster.shutdown() }
        let client = try TYDFSClient(masterURL: cluster.masterURL, signer: try cluster.adminSigner())
        do {
            var generator = SeededGenerator(seed: 23)
            // Three whole chunks of 4 MiB and a last one of 1 MiB and a bit, not block-aligned.
            let stored = (0..<(13 << 20) + 4321).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let path = try RemotePath("/pieces")
            _ = try await client.put(bytes: ByteBuffer(bytes: stored), to: path, overwrite: false)
            let info = try await client.stat(path)
            XCTAssertEqual(info.chunks.count, 4)

            let whole = try await read(client, info, nil)
            XCTAssertTrue(whole == stored, "the whole file read in pieces differs from what was stored")
            // Ranges starting and ending inside blocks, across pieces and chunks, and within one block.
            var ranges: [Range<Int64>] = [
                5..<7, (1 << 20) - 3..<(1 << 20) + 3, (4 << 20) - 70_000..<(8 << 20) + 70_000, (12 << 20) + 1..<Int64(stored.count),
            ]
            for _ in 0..<20 {
                let lower = Int64.random(in: 0..<Int64(stored.count), using: &generator)
                ranges.append(lower..<Int64.random(in: (lower + 1)...Int64(stored.count), using: &generator))
            }
            for range in ranges {
                let bytes = try await read(client, info, range)
                XCTAssertTrue(bytes == Array(stored[Int(range.lowerBound)..<Int(range.upperBound)]), "bytes \(range) differ")
            }

            // Bad blocks in every piece of chunk 1 on two of its replicas: each piece is read
            // from the third, whichever replica is asked first. A replica asked for a bad block
            // refuses it and logs so (at least one was asked: pieces start at different
            // replicas), which shows the reads went past a bad replica.
            let chunk = info.chunks[1]
            let victims = chunk.replicas.prefix(2).map(\.id.value)
            XCTAssertEqual(victims.count, 2)
            for victim in victims {
                for pieceStart in stride(from: 0, to: 4 << 20, by: Int(Self.pieceBytes)) {
                    try cluster.flipByte(of: chunk.id, on: victim, at: UInt64(pieceStart) + 100)
                }
            }
            // A fresh client, which has timed no replica: it asks them in the order the master
            // gives, rotated per piece, not quickest first.
            let fresh = try TYDFSClient(masterURL: cluster.masterURL, signer: try cluster.adminSigner())
            let afterRot: [UInt8]
            do {
                afterRot = try await read(fresh, info, (4 << 20)..<(8 << 20))
            } catch {
                try await fresh.shutdown()
                throw error
            }
            try await fresh.shutdown()
            XCTAssertTrue(afterRot == Array(stored[(4 << 20)..<(8 << 20)]), "a chunk with bad blocks on two replicas was read wrong")
            XCTAssertTrue(
                victims.contains { cluster.logs(of: $0).contains { $0.contains("corrupt chunk not served") } }, "no read met a bad replica")

            // Pieces that verify block by block but do not make the chunk the file names (here:
            // the file's checksum for the chunk is not the one stored) fail a read of the whole
            // chunk before its last piece is delivered, as a whole-chunk read fails before any.
            var altered = info
            altered.chunks[0].crc32c = "00000000"
            var delivered = 0
            do {
                try await client.read(altered, range: 0..<(4 << 20), pieceBytes: Self.pieceBytes) { pieces in
                    delivered += pieces.reduce(0) { $0 + $1.readableBytes }
                }
                XCTFail("a chunk whose pieces do not make its checksum was read without an error")
            } catch let error as TYDFSError {
                XCTAssertEqual(error.code, .checksumMismatch, error.message)
            }
            XCTAssertEqual(delivered, 3 << 20, "all but the last piece are delivered, the last is held back")
            do {
                _ = try await read(client, altered, 0..<(4 << 20), pieceBytes: Limits.readPieceBytes)
                XCTFail("a chunk that does not match its checksum was read whole without an error")
            } catch let error as TYDFSError {
                XCTAssertEqual(error.code, .checksumMismatch, error.message)
            }
            // A part of the chunk is checked block by block only.
            let part = try await read(client, altered, 0..<(2 << 20))
            XCTAssertTrue(part == Array(stored[0..<(2 << 20)]))
        } catch {
            try await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }

    /// A piece of 16 MiB and more is read in parts from several replicas at once, each placed
    /// at its offset in the piece.
    func testALargePieceIsReadInPartsFromSeveralReplicas() async throws {
        let cluster = try TestCluster(datakeepers: 3, chunkSize: "32MiB")
        defer { cluster.shutdown() }
        let client = try TYDFSClient(masterURL: cluster.masterURL, signer: try cluster.adminSigner())
        do {
            // Bytes with no short period (a part placed at another part's offset shows), cheap to
            // make in a debug build.
            let stored = (0..<(40 << 20) + 99).map { UInt8(truncatingIfNeeded: (UInt64($0) &* 0x9E37_79B9_7F4A_7C15) >> 56) }
            let path = try RemotePath("/parts")
            _ = try await client.put(bytes: ByteBuffer(bytes: stored), to: path, overwrite: false)
            let info = try await client.stat(path)
            // Chunk 0 in pieces of 24 MiB (3 parts of 8 MiB) and 8 MiB; chunk 1 (8 MiB) whole.
            let pieceBytes: Int64 = 24 << 20
            XCTAssertEqual(ChunkRange.split(dataBytes: pieceBytes, parts: 3, minimumBytes: Limits.minimumRangeBytes).count, 3)
            let whole = try await read(client, info, nil, pieceBytes: pieceBytes)
            XCTAssertTrue(whole == stored, "a file read in pieces of parts differs from what was stored")
            let range: Range<Int64> = 12_345..<(30 << 20) + 7
            let part = try await read(client, info, range, pieceBytes: pieceBytes)
            XCTAssertTrue(part == Array(stored[Int(range.lowerBound)..<Int(range.upperBound)]), "bytes \(range) differ")
        } catch {
            try await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }
}
