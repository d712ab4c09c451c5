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
        // Lengths around the three-way stretches of the hardware path (3 × 256 and 3 × 8192
        // bytes) and a block of 64 KiB, unaligned as well, so every stretch and join is crossed.
        let threeWay = [767, 768, 769, 1543, 24_575, 24_576, 24_577, 25_343, 49_152 + 768 + 5, 65_536, 65_537]
        for length in [0, 1, 7, 8, 9, 63, 64, 65, 1000, 4096, 100_003] + threeWay {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let oneShot = CRC32C.checksum(bytes)
            XCTAssertEqual(CRC32C.portableChecksum(bytes), oneShot, "length \(length)")
            if length > 3 {
                // The same bytes 3 bytes into the array's storage: loads that are not 8-aligned.
                var unaligned = CRC32C()
                bytes.withUnsafeBytes { unaligned.update(UnsafeRawBufferPointer(rebasing: $0[3...])) }
                XCTAssertEqual(unaligned.value, CRC32C.portableChecksum(Array(bytes[3...])), "length \(length), unaligned")
            }
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
    let block = Int(ChunkFrame.blockBytes)

    /// Feeds `frame` to a reader in pieces of the given sizes; returns the emitted data and the result.
    private func read(_ frame: [UInt8], dataBytes: Int64, pieces: [Int]) -> ([UInt8], Result<UInt32, Error>) {
        var reader = ChunkFrameReader(dataBytes: dataBytes)
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
            return (emitted, .success(try reader.finish()))
        } catch {
            return (emitted, .failure(error))
        }
    }

    private func random(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    func testAFrameOfAtMostOneBlockIsTheDataAndItsCRC32C() {
        // The format small chunks always had: unchanged by per-block checksums.
        for length in [0, 1, 9, block] {
            let data = random(length)
            let crc = CRC32C.checksum(data)
            XCTAssertEqual(ChunkFrame.frame(data), data + [UInt8(crc & 0xff), UInt8((crc >> 8) & 0xff), UInt8((crc >> 16) & 0xff), UInt8(crc >> 24)])
        }
    }

    func testSizesAroundBlockBoundariesInvertExactly() {
        let b = ChunkFrame.blockBytes
        let sizes: [Int64] = [0, 1, b - 1, b, b + 1, 2 * b, 3 * b - 5, 1024 * b, 1024 * b + 7, 64 * 1024 * 1024]
        for dataBytes in sizes {
            let frame = ChunkFrame.frameBytes(dataBytes: dataBytes)
            let blocks: Int64 = max(1, (dataBytes + b - 1) / b)
            XCTAssertEqual(frame - dataBytes, 4 * blocks, "data \(dataBytes)")
            XCTAssertEqual(ChunkFrame.dataBytes(frameBytes: frame), dataBytes, "frame \(frame)")
        }
        // Sizes no frame has are refused, e.g. one byte more or less than a whole frame of full blocks.
        XCTAssertNil(ChunkFrame.dataBytes(frameBytes: 3))
        XCTAssertNil(ChunkFrame.dataBytes(frameBytes: b + 5))  // b + 4 + 1: a second block needs 4 more bytes
        // The largest chunk's frame inverts; a longer file (damaged, or made up) is no frame, and
        // the arithmetic does not overflow at the end of an Int64.
        let largest = ChunkFrame.frameBytes(dataBytes: Limits.maxChunkSizeBytes)
        XCTAssertEqual(ChunkFrame.dataBytes(frameBytes: largest), Limits.maxChunkSizeBytes)
        for frame in [largest + 1, largest + 5, Int64.max - 65_539, Int64.max] { XCTAssertNil(ChunkFrame.dataBytes(frameBytes: frame)) }
        var valid = 0
        for frame in Int64(4)...(3 * b + 20) where ChunkFrame.dataBytes(frameBytes: frame) != nil { valid += 1 }
        // Past each of the 3 block boundaries in that span, the next block's checksum makes 4 sizes impossible.
        XCTAssertEqual(valid, Int(3 * b + 20) - 4 + 1 - 3 * 4, "every frame size but 4 after each block boundary is some data size")
    }

    func testEveryWayOfSplittingAFrameYieldsTheDataAndVerifies() throws {
        var generator = SystemRandomNumberGenerator()
        for length in [0, 1, 3, 4, 5, 100, block - 1, block, block + 1, 3 * block + 17] {
            let data = random(length)
            let frame = ChunkFrame.frame(data)
            for pieceSize in [1, 3, 4, 5, 1000, block, frame.count] where pieceSize > 16 || frame.count < 10_000 {
                let (emitted, result) = read(frame, dataBytes: Int64(length), pieces: Array(repeating: pieceSize, count: frame.count))
                XCTAssertEqual(emitted, data, "length \(length) pieces \(pieceSize)")
                XCTAssertEqual(try result.get(), CRC32C.checksum(data), "the whole data's CRC32C, combined from its blocks")
            }
            let randomPieces = (0..<frame.count).map { _ in Int.random(in: 1...9000, using: &generator) }
            XCTAssertEqual(read(frame, dataBytes: Int64(length), pieces: randomPieces).0, data)
        }
    }

    func testAFlippedByteInAnyBlockOrChecksumIsCaughtAndNamesTheBlock() {
        let data = random(3 * block + 100)
        let frame = ChunkFrame.frame(data)
        var positions = [0, block - 1, block, 2 * block + 7, 3 * block, 3 * block + 99]
        positions += (data.count..<frame.count).map { $0 }  // every checksum byte
        for position in positions {
            var corrupt = frame
            corrupt[position] ^= 0x10
            let (_, result) = read(corrupt, dataBytes: Int64(data.count), pieces: [5, 70_000, 11])
            XCTAssertThrowsError(try result.get(), "flip at \(position)") { error in
                XCTAssertEqual((error as? TYDFSError)?.code, .checksumMismatch)
                let blockIndex = position < data.count ? position / block : (position - data.count) / 4
                XCTAssertTrue((error as? TYDFSError)?.message.contains("block \(blockIndex) ") ?? false, "\(error)")
            }
        }
    }

    func testTruncatedAndOversizedFramesAreRejected() {
        let data: [UInt8] = [1, 2, 3, 4, 5, 6]
        let frame = ChunkFrame.frame(data)
        XCTAssertThrowsError(try read(Array(frame.prefix(3)), dataBytes: 6, pieces: [3]).1.get())
        XCTAssertThrowsError(try read(Array(frame.dropLast()), dataBytes: 6, pieces: [4]).1.get()) { error in
            XCTAssertEqual((error as? TYDFSError)?.code, .protocolViolation)
        }
        XCTAssertThrowsError(try read(frame, dataBytes: 5, pieces: [4]).1.get()) { error in
            XCTAssertEqual((error as? TYDFSError)?.code, .protocolViolation)
        }
        XCTAssertNoThrow(try read(frame, dataBytes: 6, pieces: [4]).1.get())
    }

    func testARangeOfWholeBlocksIsAFrameOfItsOwn() throws {
        // What a datakeeper serves for a range: the blocks' data and their checksums.
        let data = random(5 * block + 321)
        let frame = ChunkFrame.frame(data)
        for range in ChunkRange.split(dataBytes: Int64(data.count), parts: 3, minimumBytes: ChunkFrame.blockBytes) {
            let start = Int(range.offset), end = Int(range.offset + range.length)
            let trailerStart = data.count + 4 * Int(range.firstBlock)
            let sub = Array(data[start..<end]) + Array(frame[trailerStart..<(trailerStart + Int(ChunkFrame.trailerBytes(dataBytes: range.length)))])
            let (emitted, result) = read(sub, dataBytes: range.length, pieces: [4000])
            XCTAssertEqual(emitted, Array(data[start..<end]))
            XCTAssertEqual(try result.get(), CRC32C.checksum(data[start..<end]))
        }
    }
}

final class ChunkRangeTests: XCTestCase {
    let b = ChunkFrame.blockBytes

    func testSplitsCoverTheChunkInWholeBlocksAndKeepSmallChunksWhole() {
        for (dataBytes, parts, minimum) in [(Int64(1), 3, b), (b, 3, b), (10 * b + 1, 3, b), (64 * 1024 * 1024, 3, 8 * 1024 * 1024),
                                           (3 * b, 5, b), (7 * b, 3, 4 * b), (100 * b, 1, b)] {
            let ranges = ChunkRange.split(dataBytes: dataBytes, parts: parts, minimumBytes: minimum)
            XCTAssertEqual(ranges.first?.offset, 0)
            XCTAssertEqual(ranges.reduce(0) { $0 + $1.length }, dataBytes, "\(dataBytes) in \(parts)")
            for (a, next) in zip(ranges, ranges.dropFirst()) { XCTAssertEqual(a.offset + a.length, next.offset) }
            XCTAssertLessThanOrEqual(ranges.count, parts)
            XCTAssertTrue(ranges.allSatisfy { $0.offset % self.b == 0 })
            for range in ranges { XCTAssertNoThrow(try ChunkRange.validated(offset: range.offset, length: range.length, dataBytes: dataBytes)) }
            if ranges.count > 1 { XCTAssertTrue(ranges.dropLast().allSatisfy { $0.length >= minimum }, "\(ranges)") }
        }
        XCTAssertEqual(ChunkRange.split(dataBytes: 64 * 1024 * 1024, parts: 3, minimumBytes: 8 * 1024 * 1024).count, 3)
        XCTAssertEqual(ChunkRange.split(dataBytes: 9 * 1024 * 1024, parts: 3, minimumBytes: 8 * 1024 * 1024).count, 1)
    }

    func testRangesThatAreNotWholeBlocksInsideTheChunkAreRefused() {
        let dataBytes = 3 * b + 10
        for (offset, length) in [(Int64(1), b), (0, b - 1), (0, 0), (-b, b), (3 * b, 11), (0, 4 * b), (Int64.max - 5, 10)] {
            XCTAssertThrowsError(try ChunkRange.validated(offset: offset, length: length, dataBytes: dataBytes), "\(offset)+\(length)") { error in
                XCTAssertEqual((error as? TYDFSError)?.code, .invalidArgument)
            }
        }
        XCTAssertNoThrow(try ChunkRange.validated(offset: 3 * b, length: 10, dataBytes: dataBytes))
        XCTAssertNoThrow(try ChunkRange.validated(offset: b, length: 2 * b, dataBytes: dataBytes))
    }
}

final class CRC32CCombineTests: XCTestCase {
    func testCombiningTwoPartsEqualsTheCRC32COfTheWhole() {
        var generator = SystemRandomNumberGenerator()
        for (a, bLength) in [(0, 0), (0, 5), (5, 0), (1, 1), (100, 65_536), (65_536, 65_536), (12_345, 99_999), (3, 1 << 20)] {
            let first = (0..<a).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let second = (0..<bLength).map { _ in UInt8.random(in: 0...255, using: &generator) }
            XCTAssertEqual(CRC32C.combine(CRC32C.checksum(first), CRC32C.checksum(second), length2: Int64(bLength)),
                           CRC32C.checksum(first + second), "\(a) + \(bLength)")
        }
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
