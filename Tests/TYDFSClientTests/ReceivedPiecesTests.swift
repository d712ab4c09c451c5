import NIOCore
import TYDFSCore
import TYDFSTestSupport
import XCTest

@testable import TYDFSClient

/// `ReceivedPieces`, the sink that keeps verified data as it arrived: whatever order and
/// overlap ranges are written in (a range read again from another replica rewrites what it
/// covers), it hands out the same bytes as a write into memory would hold.
final class ReceivedPiecesTests: XCTestCase {
    /// Random runs of writes, each a run of pieces of random sizes at a random offset, some
    /// overlapping earlier ones, against a byte array written the same way; then random spans.
    func testWritesInAnyOrderAndOverlapReadBackAsMemoryWouldHoldThem() async throws {
        var random = SeededGenerator(seed: 11)
        for _ in 0..<200 {
            let size = Int.random(in: 1...300, using: &random)
            var memory = [UInt8](repeating: 0, count: size)
            let sink = ReceivedPieces()
            var covered = [Bool](repeating: false, count: size)
            var version: UInt8 = 1
            while covered.contains(false) || Bool.random(using: &random) {
                let start = Int.random(in: 0..<size, using: &random)
                let end = Int.random(in: (start + 1)...size, using: &random)
                var pieces: [ByteBuffer] = []
                var position = start
                while position < end {
                    let length = min(end - position, Int.random(in: 1...40, using: &random))
                    let bytes = (0..<length).map { UInt8(truncatingIfNeeded: Int(version) &* 31 &+ position &+ $0) }
                    memory.replaceSubrange(position..<(position + length), with: bytes)
                    // A slice of a larger buffer, as received pieces are.
                    var buffer = ByteBuffer(bytes: [0xEE, 0xEE] + bytes + [0xEE])
                    buffer.moveReaderIndex(forwardBy: 2)
                    pieces.append(buffer.getSlice(at: buffer.readerIndex, length: length)!)
                    position += length
                }
                try await sink.write(pieces, at: Int64(start))
                for index in start..<end { covered[index] = true }
                version &+= 1
            }
            for _ in 0..<10 {
                let start = Int.random(in: 0..<size, using: &random)
                let count = Int.random(in: 0...(size - start), using: &random)
                let pieces = try sink.pieces(from: Int64(start), count: Int64(count))
                XCTAssertEqual(pieces.flatMap { Array($0.readableBytesView) }, Array(memory[start..<(start + count)]))
                XCTAssertFalse(pieces.contains { $0.readableBytes == 0 }, "no empty piece")
            }
        }
    }

    /// A piece that would keep a much larger buffer alive (a small chunk's slice of a batched
    /// read's body) is copied out; one that fills most of its buffer is kept as it is.
    func testAPieceOfAMuchLargerBufferIsCopiedOutAndAFullOneIsKept() async throws {
        let body = ByteBuffer(bytes: [UInt8](repeating: 3, count: 1 << 20))
        let full = ByteBuffer(bytes: [UInt8](repeating: 4, count: 65536))
        let sink = ReceivedPieces()
        try await sink.write([body.getSlice(at: 4096, length: 1000)!, full], at: 0)
        let pieces = try sink.pieces(from: 0, count: 1000 + 65536)
        XCTAssertEqual(pieces.map(\.readableBytes), [1000, 65536])
        XCTAssertLessThan(pieces[0].storageCapacity, 1 << 20, "the slice of the 1 MiB body was copied out")
        XCTAssertEqual(pieces[0].readableBytesView.first, 3)
        let address = { (buffer: ByteBuffer) in buffer.withUnsafeReadableBytes { $0.baseAddress } }
        XCTAssertEqual(address(pieces[1]), address(full), "a buffer it fills is not copied")
    }

    func testBytesThatNeverArrivedAreAnErrorNotAShortAnswer() async throws {
        let sink = ReceivedPieces()
        try await sink.write([ByteBuffer(bytes: [1, 2, 3])], at: 0)
        try await sink.write([ByteBuffer(bytes: [7, 8])], at: 5)
        XCTAssertEqual(try sink.pieces(from: 0, count: 3).flatMap { Array($0.readableBytesView) }, [1, 2, 3])
        XCTAssertEqual(try sink.pieces(from: 5, count: 2).flatMap { Array($0.readableBytesView) }, [7, 8])
        XCTAssertThrowsError(try sink.pieces(from: 2, count: 4))
        XCTAssertThrowsError(try sink.pieces(from: 6, count: 2))
    }
}
