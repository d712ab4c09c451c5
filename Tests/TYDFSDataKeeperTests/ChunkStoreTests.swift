import Foundation
import NIOConcurrencyHelpers
import NIOCore
@testable import TYDFSDataKeeper
import TYDFSCore
import TYDFSFileIO
import XCTest

/// Group commit, tombstones, quarantine and the change log of the chunk store, on a real disk.
final class ChunkStoreTests: XCTestCase {
    // MARK: - Group commit

    func testVolumeFileNamesAreNumbersBelowTheLast() {
        XCTAssertEqual(ChunkStore.volumeNumber(fileName: "1.vol"), 1)
        XCTAssertEqual(ChunkStore.volumeNumber(fileName: "4294967294.vol"), 4_294_967_294)
        // No volume could follow it: a file of that name (made by hand) is not one.
        XCTAssertNil(ChunkStore.volumeNumber(fileName: "4294967295.vol"))
        XCTAssertNil(ChunkStore.volumeNumber(fileName: "4294967296.vol"))
        XCTAssertNil(ChunkStore.volumeNumber(fileName: "1.tmp"))
    }

    /// A file in `chunks/` longer than any chunk's frame (damage, or made by hand, here sparse)
    /// is no chunk: start-up leaves it out of the chunks and of the space held.
    func testAFileLongerThanAnyChunkIsNotTakenForOne() async throws {
        let fixture = try StoreFixture()
        let chunk = ChunkID(high: 9, low: 9)
        let path = "\(fixture.directory)/chunks/\(chunk.value.prefix(2))/\(chunk.value)"
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: nil))
        XCTAssertEqual(truncate(path, off_t(ChunkFrame.frameBytes(dataBytes: Limits.maxChunkSizeBytes) + 1)), 0)
        try fixture.reopen()
        let held = await fixture.store.contains(chunk)
        let usage = await fixture.store.usage()
        XCTAssertFalse(held)
        XCTAssertEqual(usage.usedBytes, 0)
        XCTAssertEqual(usage.chunkCount, 0)
        try await fixture.tearDown()
    }

    func testWritersArrivingDuringASyncFormTheNextBatch() {
        var commit = GroupCommit<String>()
        XCTAssertEqual(commit.requestSync("a"), ["a"], "a lone writer is synced at once")
        XCTAssertNil(commit.requestSync("b"), "a sync runs: b waits")
        XCTAssertNil(commit.requestSync("c"))
        var (done, next) = commit.syncFinished()
        XCTAssertEqual(done, ["a"])
        XCTAssertEqual(next, ["b", "c"], "the waiting writers are synced together, right away")
        XCTAssertNil(commit.requestSync("d"), "d arrived during b and c's sync: not covered by it")
        (done, next) = commit.syncFinished()
        XCTAssertEqual(done, ["b", "c"])
        XCTAssertEqual(next, ["d"])
        (done, next) = commit.syncFinished()
        XCTAssertEqual(done, ["d"])
        XCTAssertNil(next)
        XCTAssertFalse(commit.isSyncing)
        XCTAssertEqual(commit.requestSync("e"), ["e"])
    }

    /// What the injected sync saw: for each sync that ended, how many bytes of the volume it
    /// covered (the volume's size when it started).
    final class SyncLedger: Sendable {
        private let covered = NIOLockedValueBox<[String: Int64]>([:])
        private let count = NIOLockedValueBox(0)

        var syncs: Int { count.withLockedValue { $0 } }
        func coveredBytes(of path: String) -> Int64 { covered.withLockedValue { $0[path] ?? 0 } }

        func sync(_ file: LocalFile) async throws {
            let size = try await file.size()
            try await Task.sleep(for: .milliseconds(3))
            try await file.dataSync()
            count.withLockedValue { $0 += 1 }
            covered.withLockedValue { $0[file.path] = max($0[file.path] ?? 0, size) }
        }
    }

    func testConcurrentSmallWritesAreAcknowledgedOnlyAfterASyncCoveringThemAndShareSyncs() async throws {
        let ledger = SyncLedger()
        let fixture = try StoreFixture(syncVolume: { try await ledger.sync($0) })
        let writes = 200
        let chunks = (0..<writes).map { ChunkID(high: 7, low: UInt64($0)) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, chunk) in chunks.enumerated() {
                group.addTask {
                    try await fixture.put(chunk, StoreFixture.data(4096 + index, seed: UInt64(index)), pieces: 1 + index % 5)
                    // Acknowledged: a sync that started after the record was written has ended.
                    let stored = await fixture.store.volumeLocation(of: chunk)
                    let location = try XCTUnwrap(stored)
                    let recordEnd = Int64(location.recordOffset) + Int64(VolumeRecord.headerBytes) + Int64(location.frameBytes)
                    XCTAssertGreaterThanOrEqual(ledger.coveredBytes(of: fixture.volumePath(location)), recordEnd,
                                                "chunk \(index) acknowledged before a sync covered it")
                }
            }
            try await group.waitForAll()
        }
        print("group commit: \(writes) concurrent writes, \(ledger.syncs) syncs")
        XCTAssertLessThan(ledger.syncs, writes / 2, "concurrent writers share syncs")
        try fixture.reopen()
        let heldAfterRestart = await fixture.store.usage().chunkCount
        XCTAssertEqual(heldAfterRestart, writes)
        for (index, chunk) in chunks.enumerated() {
            let intact = try await fixture.holdsIntact(chunk, StoreFixture.data(4096 + index, seed: UInt64(index)))
            XCTAssertTrue(intact, "chunk \(index) after a restart")
        }
        try await fixture.tearDown()
    }

    func testTheChunksOfABatchAreWrittenTogetherAndMadeDurableByOneSync() async throws {
        let ledger = SyncLedger()
        let fixture = try StoreFixture(syncVolume: { try await ledger.sync($0) })
        try await fixture.put(ChunkID(high: 8, low: 100), StoreFixture.data(300, seed: 100))
        let syncsBefore = ledger.syncs
        let chunks = (0..<8).map { ChunkID(high: 8, low: UInt64($0)) }
        let data = chunks.indices.map { StoreFixture.data(1000 + 700 * $0, seed: UInt64($0)) }
        var frames: [(id: ChunkID, frame: ByteBuffer)] = []
        for (chunk, bytes) in zip(chunks, data) {
            let frame = StoreFixture.frame(bytes)
            try await fixture.store.reserve(chunk, frameBytes: Int64(frame.count))
            frames.append((chunk, ByteBuffer(bytes: frame)))
        }
        try await fixture.store.commitToVolume(frames: frames)
        XCTAssertEqual(ledger.syncs - syncsBefore, 1, "one fdatasync for the whole batch")
        var expectedOffset: Int64?
        for (index, (chunk, frame)) in frames.enumerated() {
            let stored = await fixture.store.volumeLocation(of: chunk)
            let location = try XCTUnwrap(stored, "chunk \(index) held")
            if let expectedOffset { XCTAssertEqual(Int64(location.recordOffset), expectedOffset, "records one after another") }
            expectedOffset = Int64(location.recordOffset) + Int64(VolumeRecord.headerBytes) + Int64(frame.readableBytes)
            XCTAssertGreaterThanOrEqual(ledger.coveredBytes(of: fixture.volumePath(location)), expectedOffset!, "acknowledged after a sync covered it")
            let intact = try await fixture.holdsIntact(chunk, data[index])
            XCTAssertTrue(intact, "chunk \(index)")
        }
        try fixture.reopen()
        for (index, chunk) in chunks.enumerated() {
            let intact = try await fixture.holdsIntact(chunk, data[index])
            XCTAssertTrue(intact, "chunk \(index) after a restart")
        }
        let held = await fixture.store.usage().chunkCount
        XCTAssertEqual(held, chunks.count + 1)
        try await fixture.tearDown()
    }

    func testABatchWhoseSyncFailsHoldsNoneOfItsChunks() async throws {
        let failNext = NIOLockedValueBox(true)
        let fixture = try StoreFixture(syncVolume: { file in
            if failNext.withLockedValue({ fail in defer { fail = false }; return fail }) {
                throw TYDFSError(.io, "fdatasync failed: Input/output error")
            }
            try await file.dataSync()
        })
        let chunks = (0..<3).map { ChunkID(high: 9, low: UInt64($0)) }
        let frames = chunks.map { ($0, ByteBuffer(bytes: StoreFixture.frame(StoreFixture.data(2000, seed: $0.low)))) }
        for (chunk, frame) in frames { try await fixture.store.reserve(chunk, frameBytes: Int64(frame.readableBytes)) }
        do {
            try await fixture.store.commitToVolume(frames: frames)
            XCTFail("a batch was acknowledged although its sync failed")
        } catch let error as TYDFSError {
            XCTAssertEqual(error.code, .io)
        }
        for chunk in chunks {
            let held = await fixture.store.contains(chunk)
            XCTAssertFalse(held, "chunk \(chunk) is not held after a failed sync")
        }
        // The reservations were given back: the client's retry stores them.
        for chunk in chunks { try await fixture.put(chunk, StoreFixture.data(2000, seed: chunk.low)) }
        for chunk in chunks {
            let intact = try await fixture.holdsIntact(chunk, StoreFixture.data(2000, seed: chunk.low))
            XCTAssertTrue(intact)
        }
        try await fixture.tearDown()
    }

    func testAVolumeIsCreatedOnceAndRecordsAreAppendedWithoutRenames() async throws {
        let fixture = try StoreFixture()
        for index in 0..<20 { try await fixture.put(ChunkID(high: 1, low: UInt64(index)), StoreFixture.data(4096, seed: UInt64(index))) }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: fixture.directory + "/volumes"), ["1.vol"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: fixture.directory + "/tmp"), [], "no temporary files")
        XCTAssertEqual(FileManager.default.enumerator(atPath: fixture.directory + "/chunks")?.allObjects.count, 256, "only the fan-out folders")
        try await fixture.tearDown()
    }

    func testALargeChunkKeepsAFileOfItsOwn() async throws {
        let fixture = try StoreFixture()
        let chunk = ChunkID(high: 2, low: 2)
        let data = StoreFixture.data(Int(Limits.volumeChunkMaxBytes), seed: 5)
        try await fixture.put(chunk, data, pieces: 7)
        let placement = await fixture.store.placement(of: chunk)
        XCTAssertEqual(placement, .ownFile(path: fixture.store.path(of: chunk)))
        XCTAssertEqual(FileManager.default.contents(atPath: fixture.store.path(of: chunk)).map([UInt8].init), StoreFixture.frame(data))
        let verified = await fixture.transfer.verify(chunk)
        XCTAssertEqual(verified, .good)
        try fixture.reopen()
        let heldAfterRestart = await fixture.store.contains(chunk)
        XCTAssertTrue(heldAfterRestart)
        let deleted = try await fixture.store.delete(chunk)
        XCTAssertTrue(deleted)
        XCTAssertFalse(FileManager.default.fileExists(atPath: fixture.store.path(of: chunk)))
        try await fixture.tearDown()
    }

    func testABadFrameIsRefusedAndLeavesNothingBehind() async throws {
        let fixture = try StoreFixture()
        let chunk = ChunkID(high: 3, low: 3)
        var frame = StoreFixture.frame(StoreFixture.data(1000, seed: 1))
        frame[10] ^= 1
        try await fixture.store.reserve(chunk, frameBytes: Int64(frame.count))
        do {
            _ = try await fixture.transfer.storeReserved(chunk, dataBytes: 1000, from: StoreFixture.body(frame, pieces: 2), forwarding: nil)
            XCTFail("a corrupt frame was stored")
        } catch let error as TYDFSError {
            XCTAssertEqual(error.code, .checksumMismatch)
        }
        let heldAfterRefusal = await fixture.store.contains(chunk)
        XCTAssertFalse(heldAfterRefusal)
        try await fixture.put(chunk, StoreFixture.data(1000, seed: 1))
        let heldAfterRetry = await fixture.store.contains(chunk)
        XCTAssertTrue(heldAfterRetry, "the reservation was released")
        try await fixture.tearDown()
    }

    // MARK: - Deletion and quarantine

    func testADeletedChunkStaysDeletedAfterARestartAndMayBeStoredAgain() async throws {
        let fixture = try StoreFixture()
        let gone = ChunkID(high: 4, low: 1), kept = ChunkID(high: 4, low: 2), back = ChunkID(high: 4, low: 3)
        for chunk in [gone, kept, back] { try await fixture.put(chunk, StoreFixture.data(500, seed: chunk.low)) }
        let deletedGone = try await fixture.store.delete(gone)
        XCTAssertTrue(deletedGone)
        let deletedBack = try await fixture.store.delete(back)
        XCTAssertTrue(deletedBack)
        let deletedTwice = try await fixture.store.delete(gone)
        XCTAssertFalse(deletedTwice, "not here any more")
        try await fixture.put(back, StoreFixture.data(500, seed: 99))
        try fixture.reopen()
        let heldAfterRestart = await fixture.store.chunkIDs()
        XCTAssertEqual(heldAfterRestart, [kept, back])
        let backIntact = try await fixture.holdsIntact(back, StoreFixture.data(500, seed: 99))
        XCTAssertTrue(backIntact, "the later copy counts, not the tombstone before it")
        let usedBytes = await fixture.store.usage().usedBytes
        XCTAssertEqual(usedBytes, 2 * 504)
        try await fixture.tearDown()
    }

    func testACorruptVolumeChunkIsQuarantinedReportedAndStaysGoneAfterARestart() async throws {
        let fixture = try StoreFixture()
        let rotten = ChunkID(high: 5, low: 1), healthy = ChunkID(high: 5, low: 2), torn = ChunkID(high: 5, low: 3)
        for chunk in [rotten, healthy, torn] { try await fixture.put(chunk, StoreFixture.data(2000, seed: chunk.low)) }
        _ = await fixture.store.drainChanges()
        let stored = await fixture.store.volumeLocation(of: rotten)
        let location = try XCTUnwrap(stored)
        try StoreFixture.flipBit(in: fixture.volumePath(location), at: Int(location.recordOffset) + VolumeRecord.headerBytes + 700, bit: 3)
        // Serving refuses it before sending anything, and takes it out of service.
        do {
            _ = try await fixture.transfer.serve(rotten)
            XCTFail("a corrupt chunk was served")
        } catch let error as TYDFSError {
            XCTAssertEqual(error.code, .checksumMismatch)
        }
        let stillHeld = await fixture.store.contains(rotten)
        XCTAssertFalse(stillHeld)
        XCTAssertEqual(fixture.events.drain().badChunks, [rotten])
        let kept = try XCTUnwrap(FileManager.default.contents(atPath: fixture.directory + "/corrupt/\(rotten.value)"))
        XCTAssertEqual(kept.count, 2004, "the damaged frame is kept for inspection")
        // A damaged header is caught by verification (the scrubber's path) the same way.
        let tornStored = await fixture.store.volumeLocation(of: torn)
        let tornLocation = try XCTUnwrap(tornStored)
        try StoreFixture.flipBit(in: fixture.volumePath(tornLocation), at: Int(tornLocation.recordOffset) + 9, bit: 0)
        let tornVerified = await fixture.transfer.verify(torn)
        XCTAssertEqual(tornVerified, .bad)
        XCTAssertEqual(fixture.events.drain().badChunks, [torn])
        let healthyVerified = await fixture.transfer.verify(healthy)
        XCTAssertEqual(healthyVerified, .good)
        let changes = await fixture.store.drainChanges()
        XCTAssertEqual(changes.added, [])
        XCTAssertEqual(changes.removed, [rotten, torn])
        try fixture.reopen()
        let heldAfterRestart = await fixture.store.chunkIDs()
        XCTAssertEqual(heldAfterRestart, [healthy])
        try await fixture.tearDown()
    }

    // MARK: - Change log

    func testTheChangeLogKeepsTheLastChangeOfEachChunk() {
        var log = ChunkChangeLog(maxEntries: 10)
        let a = ChunkID(high: 0, low: 1), b = ChunkID(high: 0, low: 2), c = ChunkID(high: 0, low: 3)
        log.added(a)
        log.added(b)
        log.removed(b)
        log.removed(c)
        log.added(c)
        var drained = log.drain()
        XCTAssertEqual(drained.added, [a, c])
        XCTAssertEqual(drained.removed, [b])
        XCTAssertEqual(log.count, 0)
        // The heartbeat carrying it failed; meanwhile a was deleted. The newer change wins.
        log.removed(a)
        log.restore(added: drained.added, removed: drained.removed)
        drained = log.drain()
        XCTAssertEqual(drained.added, [c])
        XCTAssertEqual(drained.removed, [a, b])
        XCTAssertFalse(log.takeOverflow())
    }

    func testAnOverflowingChangeLogForgetsAndAsksForAFullReport() {
        var log = ChunkChangeLog(maxEntries: 3)
        for low in 0..<4 { log.added(ChunkID(high: 0, low: UInt64(low))) }
        XCTAssertEqual(log.count, 0)
        XCTAssertTrue(log.takeOverflow())
        XCTAssertFalse(log.takeOverflow(), "said once")
        log.added(ChunkID(high: 1, low: 1))
        XCTAssertEqual(log.drain().added, [ChunkID(high: 1, low: 1)])
    }

    func testTheStoreLogsEveryArrivalAndDeparture() async throws {
        let fixture = try StoreFixture()
        let small = ChunkID(high: 6, low: 1), large = ChunkID(high: 6, low: 2), brief = ChunkID(high: 6, low: 3)
        try await fixture.put(small, StoreFixture.data(10, seed: 1))
        try await fixture.put(large, StoreFixture.data(Int(Limits.volumeChunkMaxBytes), seed: 2))
        try await fixture.put(brief, StoreFixture.data(10, seed: 3))
        var changes = await fixture.store.drainChanges()
        XCTAssertEqual(changes.added, [small, large, brief])
        XCTAssertEqual(changes.removed, [])
        try await fixture.store.delete(brief)
        try FileManager.default.removeItem(atPath: fixture.store.path(of: large))
        let verified = await fixture.transfer.verify(large)
        XCTAssertEqual(verified, .bad, "a chunk file lost by hand is found missing")
        changes = await fixture.store.drainChanges()
        XCTAssertEqual(changes.removed, [large, brief])
        try await fixture.put(brief, StoreFixture.data(10, seed: 3))
        // The heartbeat carrying the drained changes failed: they go back, behind newer ones.
        await fixture.store.restoreChanges(added: changes.added, removed: changes.removed)
        changes = await fixture.store.drainChanges()
        XCTAssertEqual(changes.added, [brief], "stored again after the drain: its newer arrival wins")
        XCTAssertEqual(changes.removed, [large])
        let addedSince = await fixture.store.drainChanges().added
        XCTAssertEqual(addedSince, [])
        try await fixture.tearDown()
    }

    func testACancelledVerificationIsNoEvidenceEitherWay() async throws {
        let fixture = try StoreFixture()
        let data = [UInt8](repeating: 7, count: 3 * 1024 * 1024)
        let chunk = ChunkID.random()
        _ = try await fixture.put(chunk, data)
        let task = Task { await fixture.transfer.verify(chunk, bytesPerSecond: 1024) }
        task.cancel()
        let result = await task.value
        XCTAssertEqual(result, .notChecked, "a check cut short must not count as good")
        XCTAssertEqual(fixture.events.drain().badChunks, [], "nor as bad")
        try await fixture.tearDown()
    }
}
