import TYDFSCore
import XCTest

final class CRC32CTests: XCTestCase {
    func testKnownVectors() {
        // RFC 3720 (iSCSI) check value and test patterns.
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0, count: 32)), 0x8A91_36AA)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)), 0x62A8_AB43)
        XCTAssertEqual(CRC32C.checksum(Array(0..<32)), 0x46DD_794E)
        XCTAssertEqual(CRC32C.checksum([]), 0)
    }

    func testHardwareAndTablePathsAgreeAndStreamingEqualsOneShot() {
        var generator = SystemRandomNumberGenerator()
        for length in [0, 1, 7, 8, 9, 63, 64, 65, 1000, 4096, 100_003] {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let oneShot = CRC32C.checksum(bytes)
            XCTAssertEqual(CRC32C.portableChecksum(bytes), oneShot, "length \(length)")
            var streaming = CRC32C()
            var start = 0
            while start < length {
                let end = min(length, start + Int.random(in: 1...777, using: &generator))
                streaming.update(bytes[start..<end])
                start = end
            }
            XCTAssertEqual(streaming.value, oneShot, "length \(length)")
        }
    }
}

final class ChunkFrameTests: XCTestCase {
    /// Feeds `frame` to a reader in pieces of the given sizes; returns the emitted data and the result.
    private func read(_ frame: [UInt8], pieces: [Int], max: Int64? = nil, expected: Int64? = nil) -> ([UInt8], Result<UInt32, Error>) {
        var reader = ChunkFrameReader(maxFrameBytes: max ?? Int64(frame.count))
        var emitted: [UInt8] = []
        var start = 0
        do {
            for size in pieces where start < frame.count {
                let end = min(frame.count, start + size)
                try frame[start..<end].withUnsafeBytes { bytes in
                    try reader.consume(bytes) { emitted.append(contentsOf: $0) }
                }
                start = end
            }
            if start < frame.count {
                try frame[start...].withUnsafeBytes { bytes in try reader.consume(bytes) { emitted.append(contentsOf: $0) } }
            }
            return (emitted, .success(try reader.finish(expectedDataBytes: expected)))
        } catch {
            return (emitted, .failure(error))
        }
    }

    func testEveryWayOfSplittingAFrameYieldsTheDataAndVerifies() throws {
        var generator = SystemRandomNumberGenerator()
        for length in [0, 1, 3, 4, 5, 100, 4099] {
            let data = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let frame = data + ChunkFrame.trailer(CRC32C.checksum(data))
            for pieceSize in [1, 2, 3, 4, 5, 7, 1000, frame.count] {
                let (emitted, result) = read(frame, pieces: Array(repeating: pieceSize, count: frame.count), expected: Int64(length))
                XCTAssertEqual(emitted, data, "length \(length) pieces \(pieceSize)")
                XCTAssertEqual(try result.get(), CRC32C.checksum(data))
            }
            let randomPieces = (0..<frame.count).map { _ in Int.random(in: 1...9, using: &generator) }
            XCTAssertEqual(read(frame, pieces: randomPieces).0, data)
        }
    }

    func testAFlippedBitAnywhereIsDetected() {
        let data = Array("the quick brown fox jumps over the lazy dog".utf8)
        let frame = data + ChunkFrame.trailer(CRC32C.checksum(data))
        for position in 0..<frame.count {
            var corrupt = frame
            corrupt[position] ^= 0x10
            let (_, result) = read(corrupt, pieces: [5, 11, 2])
            XCTAssertThrowsError(try result.get(), "flip at \(position)") { error in
                XCTAssertEqual((error as? TYDFSError)?.code, .checksumMismatch)
            }
        }
    }

    func testTruncatedOversizedAndMissizedFramesAreRejected() {
        let data: [UInt8] = [1, 2, 3, 4, 5, 6]
        let frame = data + ChunkFrame.trailer(CRC32C.checksum(data))
        XCTAssertThrowsError(try read(Array(frame.prefix(3)), pieces: [3]).1.get())
        XCTAssertThrowsError(try read(Array(frame.dropLast()), pieces: [4]).1.get())
        XCTAssertThrowsError(try read(frame, pieces: [4], max: Int64(frame.count - 1)).1.get()) { error in
            XCTAssertEqual((error as? TYDFSError)?.code, .protocolViolation)
        }
        XCTAssertThrowsError(try read(frame, pieces: [4], expected: 7).1.get())
        XCTAssertNoThrow(try read(frame, pieces: [4], expected: 6).1.get())
    }
}

final class ChunkLayoutTests: XCTestCase {
    func testBoundariesAroundTheChunkSize() {
        let chunk: Int64 = 1000
        XCTAssertEqual(ChunkLayout.extents(fileBytes: 0, chunkBytes: chunk), [])
        XCTAssertEqual(ChunkLayout.extents(fileBytes: 1, chunkBytes: chunk).map(\.length), [1])
        XCTAssertEqual(ChunkLayout.extents(fileBytes: 999, chunkBytes: chunk).map(\.length), [999])
        XCTAssertEqual(ChunkLayout.extents(fileBytes: 1000, chunkBytes: chunk).map(\.length), [1000])
        XCTAssertEqual(ChunkLayout.extents(fileBytes: 1001, chunkBytes: chunk).map(\.length), [1000, 1])
        let many = ChunkLayout.extents(fileBytes: 5500, chunkBytes: chunk)
        XCTAssertEqual(many.map(\.offset), [0, 1000, 2000, 3000, 4000, 5000])
        XCTAssertEqual(many.map(\.index), Array(0..<6))
    }

    func testExtentsCoverEveryByteExactlyOnce() {
        for size in stride(from: Int64(0), through: 5000, by: 137) {
            for chunk in [Int64(1), 7, 1000, 4096] {
                let extents = ChunkLayout.extents(fileBytes: size, chunkBytes: chunk)
                XCTAssertEqual(extents.map(\.length).reduce(0, +), size)
                XCTAssertTrue(extents.allSatisfy { $0.length > 0 && $0.length <= chunk })
                XCTAssertNoThrow(try ChunkLayout.validate(lengths: extents.map(\.length), fileBytes: size, chunkBytes: chunk))
            }
        }
    }

    func testValidationRejectsCutsThatDoNotAddUp() {
        XCTAssertThrowsError(try ChunkLayout.validate(lengths: [1000, 1000], fileBytes: 1500, chunkBytes: 1000))
        XCTAssertThrowsError(try ChunkLayout.validate(lengths: [500, 1000], fileBytes: 1500, chunkBytes: 1000))
        XCTAssertThrowsError(try ChunkLayout.validate(lengths: [0], fileBytes: 0, chunkBytes: 1000))
        XCTAssertThrowsError(try ChunkLayout.validate(lengths: [], fileBytes: 1, chunkBytes: 1000))
        // Hostile sizes cost nothing and crash nothing.
        XCTAssertThrowsError(try ChunkLayout.validate(lengths: [], fileBytes: -1, chunkBytes: 1000))
        XCTAssertThrowsError(try ChunkLayout.validate(lengths: [], fileBytes: .max, chunkBytes: 1000))
        XCTAssertThrowsError(try ChunkLayout.validate(lengths: [1000, -1000, 1000], fileBytes: 1000, chunkBytes: 1000))
        XCTAssertNoThrow(try ChunkLayout.validate(lengths: [], fileBytes: 0, chunkBytes: 1000))
    }
}
