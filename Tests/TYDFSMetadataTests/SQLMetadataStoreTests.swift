import Foundation
import Logging
import TYDFSCore
import TYDFSMetadata
import XCTest

/// The metadata store on a real SQLite file.
final class SQLMetadataStoreTests: XCTestCase {
    private var folder = ""

    override func setUp() {
        folder = NSTemporaryDirectory() + "tydfs-meta-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: folder)
    }

    private func open() async throws -> SQLMetadataStore {
        try await SQLMetadataStore.openSQLite(path: folder + "/metadata.sqlite", logger: Logger(label: "test"))
    }

    private func file(_ path: String, chunks: Int = 2, replicas: [String] = ["dk1", "dk2", "dk3"]) -> StoredFile {
        let stored = (0..<chunks).map { index in
            StoredChunk(index: index, id: ChunkID.random(), sizeBytes: 100, crc32c: UInt32(index + 7),
                        replicas: replicas.map { try! DataKeeperID($0) })
        }
        return StoredFile(path: try! RemotePath(path), sizeBytes: Int64(chunks * 100), mtimeMillis: 1234, crc32c: 0xdeadbeef,
                          chunkSizeBytes: 100, replication: 3, chunks: stored)
    }

    func testACommittedFileReadsBackWholeAfterReopening() async throws {
        let original = file("/a/b.txt", chunks: 3)
        var store = try await open()
        try await store.commit(original, overwrite: false)
        try await store.close()
        store = try await open()
        let loaded = try await store.file(at: original.path)
        XCTAssertEqual(loaded, original)
        let missing = try await store.file(at: try RemotePath("/nope"))
        XCTAssertNil(missing)
        try await store.close()
    }

    func testCommitRefusesATakenPathUnlessOverwritingAndQueuesTheOldReplicasForDeletion() async throws {
        let store = try await open()
        let first = file("/f")
        try await store.commit(first, overwrite: false)
        do {
            try await store.commit(file("/f"), overwrite: false)
            XCTFail("second commit should fail")
        } catch let error as TYDFSError {
            XCTAssertEqual(error.code, .alreadyExists)
        }
        let second = file("/f", chunks: 1)
        try await store.commit(second, overwrite: true)
        let current = try await store.file(at: second.path)
        XCTAssertEqual(current, second)
        let pending = try await store.pendingDeletions(for: try DataKeeperID("dk1"), limit: 100)
        XCTAssertEqual(Set(pending), Set(first.chunks.map(\.id)))
        try await store.close()
    }

    func testAFileCannotStandWhereADirectoryIsAndViceVersa() async throws {
        let store = try await open()
        try await store.commit(file("/a/b"), overwrite: false)
        let underFile = try await store.conflictingFile(for: try RemotePath("/a/b/c"))
        XCTAssertEqual(underFile?.value, "/a/b")
        let overDirectory = try await store.conflictingFile(for: try RemotePath("/a"))
        XCTAssertEqual(overDirectory?.value, "/a/b")
        let free = try await store.conflictingFile(for: try RemotePath("/ab"))
        XCTAssertNil(free)
        do {
            try await store.commit(file("/a"), overwrite: true)
            XCTFail("a file over a directory must fail")
        } catch let error as TYDFSError {
            XCTAssertEqual(error.code, .alreadyExists)
        }
        try await store.close()
    }

    func testListingReturnsTheFileAndEverythingBelowButNotSiblingsWithTheSamePrefix() async throws {
        let store = try await open()
        for path in ["/a", "/b/x", "/b/y/z", "/bc", "/b-"] { try await store.commit(file(path), overwrite: false) }
        let underB = try await store.files(under: try RemotePath("/b")).map(\.path.value)
        XCTAssertEqual(underB, ["/b/x", "/b/y/z"])
        let all = try await store.files(under: RemotePath.root).map(\.path.value)
        XCTAssertEqual(all, ["/a", "/b-", "/b/x", "/b/y/z", "/bc"])
        let exact = try await store.files(under: try RemotePath("/a")).map(\.path.value)
        XCTAssertEqual(exact, ["/a"])
        try await store.close()
    }

    func testRemoveQueuesEveryReplicaAndDeletionsCanBeConfirmed() async throws {
        let store = try await open()
        let stored = file("/gone", chunks: 2)
        try await store.commit(stored, overwrite: false)
        let removed = try await store.remove(stored.path)
        XCTAssertEqual(removed, stored)
        let afterRemove = try await store.file(at: stored.path)
        XCTAssertNil(afterRemove)
        let dk2 = try DataKeeperID("dk2")
        var pending = try await store.pendingDeletions(for: dk2, limit: 100)
        XCTAssertEqual(pending.count, 2)
        try await store.deletionsDone(datakeeper: dk2, chunks: [pending[0]])
        pending = try await store.pendingDeletions(for: dk2, limit: 100)
        XCTAssertEqual(pending.count, 1)
        do {
            _ = try await store.remove(stored.path)
            XCTFail("removing twice must fail")
        } catch let error as TYDFSError {
            XCTAssertEqual(error.code, .notFound)
        }
        try await store.close()
    }

    func testAChunkReportIsTheTruthAboutWhatADataKeeperHolds() async throws {
        let store = try await open()
        let stored = file("/r", chunks: 3, replicas: ["dk1", "dk2"])
        try await store.commit(stored, overwrite: false)
        let dk3 = try DataKeeperID("dk3"), dk1 = try DataKeeperID("dk1")
        let stranger = ChunkID.random()
        // dk3 holds chunk 0 though the metadata did not know it, and an unknown chunk.
        let gained = try await store.reconcile(datakeeper: dk3, reported: [stored.chunks[0].id, stranger])
        XCTAssertEqual(gained, ReconcileResult(added: 1, removed: 0, unreferenced: [stranger]))
        // dk1 lost chunk 2.
        let lost = try await store.reconcile(datakeeper: dk1, reported: [stored.chunks[0].id, stored.chunks[1].id])
        XCTAssertEqual(lost, ReconcileResult(added: 0, removed: 1, unreferenced: []))
        let loaded = try await store.file(at: stored.path)
        XCTAssertEqual(loaded?.chunks[0].replicas.map(\.value), ["dk1", "dk2", "dk3"])
        XCTAssertEqual(loaded?.chunks[2].replicas.map(\.value), ["dk2"])
        try await store.close()
    }

    func testATrimIsRefusedWhenTooFewTrustedReplicasWouldRemain() async throws {
        let store = try await open()
        let stored = file("/t", chunks: 1, replicas: ["dk1", "dk2", "dk3", "dk4"])
        try await store.commit(stored, overwrite: false)
        let chunk = stored.chunks[0].id
        let all = Set(try ["dk1", "dk2", "dk3", "dk4"].map { try DataKeeperID($0) })
        let trimmed = try await store.trimReplica(chunk: chunk, datakeeper: try DataKeeperID("dk4"), keep: 3, trusted: all)
        XCTAssertTrue(trimmed)
        // dk2 is not trusted (dead, or its report not in): dk1 and dk3 alone are too few to keep.
        let refused = try await store.trimReplica(chunk: chunk, datakeeper: try DataKeeperID("dk1"), keep: 3,
                                                  trusted: all.subtracting([try DataKeeperID("dk2")]))
        XCTAssertFalse(refused)
        let again = try await store.trimReplica(chunk: chunk, datakeeper: try DataKeeperID("dk4"), keep: 1, trusted: all)
        XCTAssertFalse(again, "a replica no longer recorded is not trimmed twice")
        let loaded = try await store.file(at: stored.path)
        XCTAssertEqual(loaded?.chunks[0].replicas.map(\.value), ["dk1", "dk2", "dk3"])
        let pending = try await store.pendingDeletions(for: try DataKeeperID("dk4"), limit: 10)
        XCTAssertEqual(pending, [chunk])
        try await store.close()
    }

    func testAFreshCopyCancelsAQueuedDeletionOfTheSameReplica() async throws {
        let store = try await open()
        let stored = file("/c", chunks: 1, replicas: ["dk1", "dk2"])
        try await store.commit(stored, overwrite: false)
        let chunk = stored.chunks[0].id, dk2 = try DataKeeperID("dk2")
        try await store.dropReplica(chunk: chunk, datakeeper: dk2, deleteFromDisk: true)
        var pending = try await store.pendingDeletions(for: dk2, limit: 10)
        XCTAssertEqual(pending, [chunk])
        let added = try await store.addReplica(chunk: chunk, datakeeper: dk2)
        XCTAssertTrue(added)
        pending = try await store.pendingDeletions(for: dk2, limit: 10)
        XCTAssertEqual(pending, [])
        let unknown = try await store.addReplica(chunk: ChunkID.random(), datakeeper: dk2)
        XCTAssertFalse(unknown)
        let queued = try await store.deleteUnreferenced(chunks: [chunk, ChunkID.random()], on: dk2)
        XCTAssertEqual(queued, 1, "a referenced chunk is never queued as an orphan")
        let placements = try await store.chunkPlacements(under: RemotePath.root)
        XCTAssertEqual(placements.map(\.state.replicas), [[try DataKeeperID("dk1"), dk2]])
        XCTAssertEqual(placements.first?.state.frameBytes, 104)
        try await store.close()
    }
}
