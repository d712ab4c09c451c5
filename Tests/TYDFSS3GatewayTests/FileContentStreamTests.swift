import Crypto
import NIOCore
import TYDFSClient
import TYDFSCore
import TYDFSTestSupport
import XCTest

@testable import TYDFSS3Gateway

/// The source of the gateway's copies: which pieces it reads (pure), and that the bytes and MD5
/// it yields are the stored ones when pieces split chunks (a real cluster).
final class FileContentStreamTests: XCTestCase {
    /// Every piece lies in one chunk and within the bound, and the pieces cover the range in
    /// order, for random ranges and chunk sizes up to the largest a master accepts.
    func testPiecesCoverTheRangeInOrderEachInOneChunkAndBounded() {
        var generator = SeededGenerator(seed: 11)
        for _ in 0..<2000 {
            let chunkSizeBytes = [Limits.minChunkSizeBytes, 65536, 1 << 20, 64 << 20, Limits.maxChunkSizeBytes].randomElement(using: &generator)!
            let maxBytes = Int64.random(in: 65536...(128 << 20), using: &generator)
            let fileBytes = Int64.random(in: 0...(3 * chunkSizeBytes), using: &generator)
            let lower = Int64.random(in: 0...fileBytes, using: &generator)
            let range = lower..<Int64.random(in: lower...fileBytes, using: &generator)
            var rest = range
            while !rest.isEmpty {
                let piece = FileContentStream.nextPiece(of: rest, chunkSizeBytes: chunkSizeBytes, maxBytes: maxBytes)
                XCTAssertEqual(piece.lowerBound, rest.lowerBound)
                XCTAssertFalse(piece.isEmpty)
                XCTAssertLessThanOrEqual(piece.count, Int(maxBytes))
                XCTAssertEqual(piece.lowerBound / chunkSizeBytes, (piece.upperBound - 1) / chunkSizeBytes, "\(piece) crosses a chunk boundary")
                // Cut short only by the chunk's end, the bound or the range's end.
                XCTAssertTrue(
                    piece.upperBound % chunkSizeBytes == 0 || piece.count == maxBytes || piece.upperBound == range.upperBound,
                    "\(piece) of \(range) ends early")
                rest = piece.upperBound..<rest.upperBound
            }
        }
        // A whole chunk of the largest size, more than a ByteBuffer can hold, is read as 64 MiB pieces.
        let largest = 0..<Limits.maxChunkSizeBytes
        let first = FileContentStream.nextPiece(of: largest, chunkSizeBytes: Limits.maxChunkSizeBytes, maxBytes: Limits.readPieceBytes)
        XCTAssertEqual(first, 0..<Limits.readPieceBytes)
        // A chunk of the default size is one piece.
        XCTAssertEqual(FileContentStream.nextPiece(of: 0..<(200 << 20), chunkSizeBytes: 64 << 20, maxBytes: Limits.readPieceBytes), 0..<(64 << 20))
    }

    /// Copies read in pieces smaller than a chunk, not aligned to checksum blocks, of a whole
    /// file, of a range across chunks, and of two files one after the other: the bytes and the
    /// MD5 are the stored ones.
    func testPiecesSmallerThanAChunkYieldTheStoredBytesAndTheirMD5() async throws {
        let cluster = try TestCluster(datakeepers: 3, chunkSize: "4MiB")
        defer { cluster.shutdown() }
        let client = try TYDFSClient(masterURL: cluster.masterURL, signer: try cluster.adminSigner())
        do {
            var generator = SeededGenerator(seed: 7)
            let first = (0..<(10 << 20) + 123).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let second = (0..<(3 << 20) + 9).map { _ in UInt8.random(in: 0...255, using: &generator) }
            _ = try await client.put(bytes: ByteBuffer(bytes: first), to: try RemotePath("/first"), overwrite: false)
            _ = try await client.put(bytes: ByteBuffer(bytes: second), to: try RemotePath("/second"), overwrite: false)
            // As the gateway does: a stat hands out the chunk tokens a read needs.
            let firstFile = try await client.stat(try RemotePath("/first"))
            let secondFile = try await client.stat(try RemotePath("/second"))
            let pieceBytes: Int64 = (1 << 20) + 4099

            func drain(_ stream: FileContentStream, readingUpTo count: Int) async throws -> [UInt8] {
                var bytes: [UInt8] = []
                while true {
                    let buffer = try await stream.read(upTo: count)
                    if buffer.readableBytes == 0 { return bytes }
                    XCTAssertLessThanOrEqual(buffer.readableBytes, count)
                    bytes += buffer.readableBytesView
                }
            }
            func md5(_ bytes: [UInt8]) -> String { Hex.encode(Insecure.MD5.hash(data: bytes)) }

            let whole = FileContentStream(client: client, file: firstFile, range: 0..<firstFile.sizeBytes, pieceBytes: pieceBytes)
            let wholeBytes = try await drain(whole, readingUpTo: 300_000)
            XCTAssertEqual(wholeBytes.count, first.count)
            XCTAssertTrue(wholeBytes == first, "the whole file read in pieces differs from what was stored")
            XCTAssertEqual(whole.md5Hex, md5(first))

            let range: Range<Int64> = (3 << 20) + 5..<(9 << 20) + 7
            let part = FileContentStream(client: client, file: firstFile, range: range, pieceBytes: pieceBytes)
            let partBytes = try await drain(part, readingUpTo: 1 << 20)
            XCTAssertTrue(partBytes == Array(first[Int(range.lowerBound)..<Int(range.upperBound)]), "the range read in pieces differs")
            XCTAssertEqual(part.md5Hex, md5(Array(first[Int(range.lowerBound)..<Int(range.upperBound)])))

            let both = FileContentStream(client: client, files: [firstFile, secondFile], pieceBytes: pieceBytes)
            let bothBytes = try await drain(both, readingUpTo: 65536)
            XCTAssertTrue(bothBytes == first + second, "two files read in pieces differ from the two stored")
            XCTAssertEqual(both.md5Hex, md5(first + second))

            // A chunk whose bytes do not make the checksum the file names (here the file's
            // checksum is altered) ends the stream with an error before its last piece, whether
            // it is read in pieces (checked here) or in one (checked by the client's read).
            var altered = firstFile
            altered.chunks[1].crc32c = "00000000"
            for pieceBytes in [pieceBytes, Limits.readPieceBytes] {
                let stream = FileContentStream(client: client, file: altered, range: 0..<altered.sizeBytes, pieceBytes: pieceBytes)
                var handedOut = 0
                do {
                    while true {
                        let buffer = try await stream.read(upTo: 1 << 20)
                        if buffer.readableBytes == 0 { break }
                        handedOut += buffer.readableBytes
                    }
                    XCTFail("a chunk that does not match its checksum was copied in pieces of \(pieceBytes)")
                } catch let error as TYDFSError {
                    XCTAssertEqual(error.code, .checksumMismatch, error.message)
                }
                XCTAssertLessThan(handedOut, 2 * (4 << 20), "the mismatched chunk was handed out whole")
                // The error stands: the stream does not go on past it.
                do {
                    _ = try await stream.read(upTo: 1 << 20)
                    XCTFail("a read after the error went on")
                } catch let error as TYDFSError {
                    XCTAssertEqual(error.code, .checksumMismatch, error.message)
                }
                XCTAssertNil(stream.md5Hex)
            }
        } catch {
            try await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }
}
