import Foundation
import NIOConcurrencyHelpers
@testable import TYDFSDataKeeper
import TYDFSCore
import TYDFSFileIO
import XCTest

/// Numbers, not pass/fail: durable 4 KiB writes per second through the store (volume path vs
/// file-per-chunk path) and the index's memory and start-up time for 3,000,000 chunks.
/// Skipped unless `TYDFS_BENCHMARK=1`:
///
///     TYDFS_BENCHMARK=1 /work/tybuild test --filter StoreBenchmarkTests
final class StoreBenchmarkTests: XCTestCase {
    override func setUpWithError() throws {
        try XCTSkipUnless(ProcessInfo.processInfo.environment["TYDFS_BENCHMARK"] == "1", "set TYDFS_BENCHMARK=1 to measure")
    }

    private func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    func testDurableSmallWritesPerSecond() async throws {
        let writers = 16, perWriter = 125
        let data = StoreFixture.data(4096, seed: 1)
        let frame = StoreFixture.frame(data)
        for path in ["volume", "own file"] {
            let syncs = NIOLockedValueBox(0)
            let fixture = try StoreFixture(syncVolume: { file in
                try await file.dataSync()
                syncs.withLockedValue { $0 += 1 }
            })
            let started = ContinuousClock.now
            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in 0..<writers {
                    group.addTask {
                        for index in 0..<perWriter {
                            let chunk = ChunkID(high: UInt64(writer), low: UInt64(index))
                            try await fixture.store.reserve(chunk, frameBytes: Int64(frame.count))
                            let body = StoreFixture.body(frame, pieces: 1)
                            if path == "volume" {
                                _ = try await fixture.transfer.storeInVolume(chunk, dataBytes: 4096, from: body, forwarding: nil, expectedCRC: nil)
                            } else {
                                _ = try await fixture.transfer.storeInOwnFile(chunk, dataBytes: 4096, from: body, forwarding: nil, expectedCRC: nil)
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            let elapsed = seconds(ContinuousClock.now - started)
            let total = writers * perWriter
            print(String(format: "BENCH %@: %d durable 4 KiB writes, %d writers: %.2f s, %.0f writes/s, %d volume syncs",
                         path, total, writers, elapsed, Double(total) / elapsed, syncs.withLockedValue { $0 }))
            try await fixture.tearDown()
        }
    }

    private func residentBytes() -> (current: Int, peak: Int) {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        func field(_ name: String) -> Int {
            let line = status.split(separator: "\n").first { $0.hasPrefix(name + ":") } ?? ""
            return (Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) * 1024
        }
        return (field("VmRSS"), field("VmHWM"))
    }

    func testIndexMemoryAndStartUpTimeForThreeMillionChunks() async throws {
        let held = 3_000_000
        let fixture = try StoreFixture()
        // The generator: 3M records of empty chunks (frame = the 4-byte trailer) written straight
        // into a volume, plus one more chunk in ten deleted again by a tombstone, as a restart
        // would find them.
        let trailer = ChunkFrame.frame([])
        let path = fixture.store.volumePath(1)
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: nil))
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: path))
        var buffer: [UInt8] = []
        buffer.reserveCapacity(4 << 20)
        var records = 0
        for index in 0..<held {
            let chunk = ChunkID(high: UInt64(index) &* 0x9E37_79B9_7F4A_7C15, low: UInt64(index))
            buffer += VolumeRecord.chunkHeader(chunk, frameBytes: 4) + trailer
            records += 1
            if index % 10 == 0 {
                let deleted = ChunkID(high: ~chunk.high, low: chunk.low)
                buffer += VolumeRecord.chunkHeader(deleted, frameBytes: 4) + trailer + VolumeRecord.tombstone(deleted)
                records += 2
            }
            if buffer.count >= 4 << 20 {
                try handle.write(contentsOf: buffer)
                buffer.removeAll(keepingCapacity: true)
            }
        }
        try handle.write(contentsOf: buffer)
        try handle.close()
        buffer = []
        let volumeBytes = LocalFileSystem.fileSize(path) ?? 0
        let before = residentBytes()
        let started = ContinuousClock.now
        try fixture.reopen()
        let elapsed = seconds(ContinuousClock.now - started)
        let after = residentBytes()
        let count = await fixture.store.usage().chunkCount
        print(String(format: "BENCH index: %d records (%d MiB volume), %d chunks held, start-up scan %.2f s, RSS %d → %d MiB (+%d MiB), peak %d MiB",
                     records, volumeBytes >> 20, count, elapsed, before.current >> 20, after.current >> 20,
                     (after.current - before.current) >> 20, after.peak >> 20))
        XCTAssertEqual(count, held)
        try await fixture.tearDown()
    }
}
