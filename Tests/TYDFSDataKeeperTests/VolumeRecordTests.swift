import Foundation
import NIOCore
@testable import TYDFSDataKeeper
import TYDFSCore
import XCTest

/// The volume record format: every damaged bit is caught, a torn tail is cut off at start-up and
/// costs nothing before it, damage in the middle costs nothing behind it.
final class VolumeRecordTests: XCTestCase {
    let a = ChunkID(high: 0xA, low: 1), b = ChunkID(high: 0xB, low: 2), c = ChunkID(high: 0xC, low: 3)

    func testAHeaderRoundTripsAndEveryKindOfBadHeaderIsRefused() {
        let header = VolumeRecord.Header(kind: .chunk, chunk: a, frameBytes: 4100)
        XCTAssertEqual(VolumeRecord.decode(VolumeRecord.encode(header)), header)
        XCTAssertEqual(VolumeRecord.decode(VolumeRecord.tombstone(a)), VolumeRecord.Header(kind: .tombstone, chunk: a, frameBytes: 0))
        XCTAssertNil(VolumeRecord.decode(VolumeRecord.encode(header).dropLast()), "too short")
        XCTAssertNil(VolumeRecord.decode([UInt8](repeating: 0, count: 32)), "zeros (a hole left by a crash)")
        let tooLarge = VolumeRecord.Header(kind: .chunk, chunk: a, frameBytes: Limits.volumeChunkMaxBytes + 1)
        XCTAssertNil(VolumeRecord.decode(VolumeRecord.encode(tooLarge)), "a frame no volume may hold")
    }

    /// A volume of records a, b, c in memory, with the offsets of each record.
    private func volume(_ data: [[UInt8]]) -> (bytes: [UInt8], offsets: [Int]) {
        var bytes: [UInt8] = [], offsets: [Int] = []
        for (chunk, payload) in zip([a, b, c], data) {
            offsets.append(bytes.count)
            let frame = StoreFixture.frame(payload)
            bytes += VolumeRecord.chunkHeader(chunk, frameBytes: Int64(frame.count)) + frame
        }
        return (bytes, offsets)
    }

    private func scan(_ bytes: [UInt8], blockBytes: Int = 64) throws -> ([VolumeScanner.Record], VolumeScanner.Result) {
        var records: [VolumeScanner.Record] = []
        let result = try VolumeScanner.scan(volumeBytes: Int64(bytes.count), blockBytes: blockBytes, read: { offset, count in
            Array(bytes[Int(offset)..<min(bytes.count, Int(offset) + count)])
        }) { records.append($0) }
        return (records, result)
    }

    func testABitFlippedAnywhereInARecordIsCaughtAndTheOtherRecordsSurvive() throws {
        let (bytes, offsets) = volume([StoreFixture.data(40, seed: 1), StoreFixture.data(27, seed: 2), StoreFixture.data(50, seed: 3)])
        let (clean, cleanResult) = try scan(bytes)
        XCTAssertEqual(clean.map(\.header.chunk), [a, b, c])
        XCTAssertEqual(cleanResult, VolumeScanner.Result(validBytes: Int64(bytes.count), damaged: []))
        for position in offsets[1]..<offsets[2] {
            for bit in 0..<8 {
                var damaged = bytes
                damaged[position] ^= UInt8(1 << bit)
                let (records, result) = try scan(damaged)
                XCTAssertEqual(result.validBytes, Int64(bytes.count), "byte \(position) bit \(bit): nothing behind it is cut off")
                XCTAssertEqual(records.first?.header.chunk, a)
                XCTAssertEqual(records.last?.header.chunk, c, "byte \(position) bit \(bit): the record after it survives")
                if position < offsets[1] + VolumeRecord.headerBytes {
                    XCTAssertEqual(records.map(\.header.chunk), [a, c], "a damaged header drops its record")
                    XCTAssertEqual(result.damaged, [Int64(offsets[1])..<Int64(offsets[2])])
                } else {
                    // The header is whole, so the record is found; its frame's trailer refuses it.
                    XCTAssertEqual(records.map(\.header.chunk), [a, b, c])
                    let start = offsets[1] + VolumeRecord.headerBytes
                    XCTAssertThrowsError(try ChunkTransfer.verifyFrame(ByteBuffer(bytes: damaged[start..<offsets[2]])),
                                         "byte \(position) bit \(bit)")
                }
            }
        }
    }

    func testEveryTruncationOfTheLastRecordIsATornTailAndTheRecordsBeforeItSurvive() throws {
        let (bytes, offsets) = volume([StoreFixture.data(40, seed: 1), StoreFixture.data(27, seed: 2), StoreFixture.data(50, seed: 3)])
        for end in (offsets[2] + 1)..<bytes.count {
            let (records, result) = try scan(Array(bytes[..<end]), blockBytes: 16)
            XCTAssertEqual(records.map(\.header.chunk), [a, b], "cut at \(end)")
            XCTAssertEqual(result, VolumeScanner.Result(validBytes: Int64(offsets[2]), damaged: []), "cut at \(end)")
        }
    }

    /// The same on disk, through the store: at every truncation point of the last record, a
    /// restart cuts the tail off, keeps the earlier chunks intact, and appends after them.
    func testTheStoreCutsATornTailOffAtStartAndKeepsWriting() async throws {
        let fixture = try StoreFixture()
        let first = StoreFixture.data(100, seed: 1), second = StoreFixture.data(4096, seed: 2), last = StoreFixture.data(60, seed: 3)
        try await fixture.put(a, first)
        try await fixture.put(b, second)
        try await fixture.put(c, last)
        let stored = await fixture.store.volumeLocation(of: c)
        let location = try XCTUnwrap(stored)
        let path = fixture.volumePath(location)
        let whole = try XCTUnwrap(FileManager.default.contents(atPath: path))
        let tailStart = Int(location.recordOffset)
        XCTAssertEqual(whole.count, tailStart + VolumeRecord.headerBytes + Int(location.frameBytes))
        // Every cut point; the reopen is what is being tested, so each gets its own restart.
        for end in stride(from: tailStart + 1, to: whole.count, by: 1) {
            try whole.prefix(end).write(to: URL(fileURLWithPath: path))
            try fixture.reopen()
            let held = await fixture.store.chunkIDs()
            XCTAssertEqual(held, [a, b], "cut at \(end)")
            XCTAssertEqual(FileManager.default.contents(atPath: path)?.count, tailStart, "the torn tail is truncated (cut at \(end))")
        }
        let firstIntact = try await fixture.holdsIntact(a, first)
        let secondIntact = try await fixture.holdsIntact(b, second)
        XCTAssertTrue(firstIntact && secondIntact)
        try await fixture.put(c, last)
        try fixture.reopen()
        let lastIntact = try await fixture.holdsIntact(c, last)
        XCTAssertTrue(lastIntact, "written again after the cut, and found after a restart")
        let heldAtEnd = await fixture.store.usage().chunkCount
        XCTAssertEqual(heldAtEnd, 3)
        try await fixture.tearDown()
    }
}
