import Foundation
import Hummingbird
import HTTPTypes
import HummingbirdTesting
import Logging
import NIOConcurrencyHelpers
import NIOCore
import TYDFSClient
import TYDFSServerSupport
import TYDFSTestSupport
@testable import TYDFSMaster
import TYDFSCore
import TYDFSMetadata
import TYDFSProtocol
@testable import TYDFSSecurity
import XCTest

/// The master's state actor on a real SQLite store, driven by calls instead of processes:
/// heartbeats, paged and incremental chunk reports, commits and removals.
final class MasterStateTests: XCTestCase {
    private var folder = ""
    private var store: SQLMetadataStore!
    private var committer: GroupCommitter!
    private var counting: CountingMetadataStore!
    private var writer: Task<Void, Never>!
    private var state: MasterState!
    private let secret = ClusterSecret.generate()

    override func setUp() async throws {
        folder = NSTemporaryDirectory() + "tydfs-master-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try await start()
    }

    override func tearDown() async throws {
        try await stop()
        try? FileManager.default.removeItem(atPath: folder)
    }

    private func start(
        heartbeatTimeoutSeconds: Double = 5, deletionGraceSeconds: Double = 0, uploadIdleTimeoutSeconds: Double = 3600, maxPathBytes: Int? = nil
    ) async throws {
        store = try await SQLMetadataStore.openSQLite(path: folder + "/metadata.sqlite", logger: Logger(label: "test"))
        let namespace = try await store.loadNamespace()
        counting = CountingMetadataStore(store)
        committer = GroupCommitter(store: counting)
        var configuration = MasterConfiguration()
        configuration.chunkSizeBytes = 4096
        configuration.orphanGraceSeconds = 0
        configuration.deletionGraceSeconds = deletionGraceSeconds
        configuration.heartbeatTimeoutSeconds = heartbeatTimeoutSeconds
        configuration.uploadIdleTimeoutSeconds = uploadIdleTimeoutSeconds
        configuration.maxPathBytes = maxPathBytes ?? store.maxPathBytes
        let state = MasterState(
            configuration: configuration, namespace: namespace, committer: committer, tokens: ChunkTokenIssuer(secret: secret), logger: Logger(label: "test"))
        self.state = state
        let committer = self.committer!
        writer = Task { await committer.run { durable, error in await state.rollBack(durable: durable, error: error) } }
    }

    private func stop() async throws {
        committer.stop()
        await writer.value
        try await store.close()
    }

    private func dk(_ name: String) -> DataKeeperID { try! DataKeeperID(name) }

    private func beat(_ name: String, added: [ChunkID] = [], removed: [ChunkID] = [], wantsToReport: Bool = false,
                      copiesDone: [ChunkID] = [], maintenance: Bool? = nil) async throws -> HeartbeatResponse {
        try await state.heartbeat(HeartbeatRequest(
            id: dk(name), bootID: "boot-\(name)", address: "127.0.0.1:7\(name.suffix(1))00", capacityBytes: 1 << 30, usedBytes: 0,
            chunkCount: 0, inFlight: 0, chunksServed: 0, wantsToReport: wantsToReport, addedChunks: added, removedChunks: removed,
            deletedChunks: [], copiesDone: copiesDone, maintenance: maintenance))
    }

    /// Puts a one-chunk file through the master's upload calls, as a client would, and returns its chunk.
    private func put(_ path: String, on holders: [String]) async throws -> ChunkID {
        try await Self.put(path, on: holders, in: state)
    }

    private static func put(_ path: String, on holders: [String], in state: MasterState) async throws -> ChunkID {
        let session = try await state.createUpload(CreateUploadRequest(path: try RemotePath(path), overwrite: false, firstChunkBytes: 10))
        let chunk = try XCTUnwrap(session.firstChunk?.chunkID)
        _ = try await state.commit(uploadID: session.uploadID, request: CommitUploadRequest(
            sizeBytes: 10, crc32c: 1, chunks: [CommittedChunk(index: 0, id: chunk, sizeBytes: 10, crc32c: 1, replicas: try holders.map(DataKeeperID.init))]))
        return chunk
    }

    /// Opens a put of `path` (overwriting) with its one chunk allocated.
    private func openOverwriting(_ path: String) async throws -> UploadSession {
        try await state.createUpload(CreateUploadRequest(path: try RemotePath(path), overwrite: true, firstChunkBytes: 10))
    }

    /// The batched-commit item that commits `session`'s one chunk on its allocated pipeline.
    private func commitOfFirstChunk(_ session: UploadSession) throws -> UploadCommit {
        let chunk = try XCTUnwrap(session.firstChunk)
        return UploadCommit(uploadID: session.uploadID, commit: CommitUploadRequest(sizeBytes: 10, crc32c: 1, chunks: [
            CommittedChunk(index: 0, id: chunk.chunkID, sizeBytes: 10, crc32c: 1, replicas: chunk.targets.map(\.id)),
        ]))
    }

    private func replicas(of chunk: ChunkID) async -> [String] {
        await state.inspect { $0.chunks[chunk]?.replicas.map(\.value).sorted() ?? [] }
    }

    private func report(_ name: String, _ chunks: [ChunkID], anchor: UInt64, pageSize: Int = 2) async throws {
        let pages = stride(from: 0, to: max(chunks.count, 1), by: pageSize).map { Array(chunks[$0..<min(chunks.count, $0 + pageSize)]) }
        for (index, page) in pages.enumerated() {
            try await state.chunkReportPage(from: dk(name), reportID: "r-\(anchor)", page: index, anchor: anchor, chunks: page,
                                            isLast: index == pages.count - 1)
        }
    }

    /// Registers dk1…dk3 (and dk4 if asked) and completes their first (empty) reports.
    private func joinThree(andFourth: Bool = false) async throws {
        for name in ["dk1", "dk2", "dk3"] + (andFourth ? ["dk4"] : []) {
            let answer = try await beat(name)
            XCTAssertTrue(answer.sendChunkReport, "a datakeeper that just joined is asked for its chunks")
            try await report(name, [], anchor: answer.answerID)
            let next = try await beat(name)
            XCTAssertFalse(next.sendChunkReport, "no second report once one is in")
        }
    }

    func testAReplicaCommittedAfterTheReportWasAskedForIsNotDroppedByIt() async throws {
        try await joinThree()
        let old = try await put("/old", on: ["dk1", "dk2", "dk3"])
        let answer = try await beat("dk1", wantsToReport: true)
        XCTAssertTrue(answer.sendChunkReport)
        // dk1 takes its snapshot now: it holds /old's chunk. Then a new file is committed with a
        // replica on dk1 before the snapshot reaches the master, which must not drop that replica.
        let fresh = try await put("/fresh", on: ["dk1", "dk2", "dk3"])
        try await report("dk1", [old], anchor: answer.answerID)
        let freshHolders = await replicas(of: fresh)
        XCTAssertEqual(freshHolders, ["dk1", "dk2", "dk3"])
        // A replica the master recorded before it asked, and which the report lacks, is gone.
        let lost = try await put("/lost", on: ["dk1", "dk2", "dk3"])
        let again = try await beat("dk1", wantsToReport: true)
        try await report("dk1", [old, fresh], anchor: again.answerID)
        let lostHolders = await replicas(of: lost)
        XCTAssertEqual(lostHolders, ["dk2", "dk3"])
    }

    func testAReportOutOfOrderOrNotAskedForIsRefusedAndChangesNothing() async throws {
        try await joinThree()
        let chunk = try await put("/f", on: ["dk1", "dk2", "dk3"])
        do {
            try await state.chunkReportPage(from: dk("dk1"), reportID: "x", page: 0, anchor: 99, chunks: [], isLast: true)
            XCTFail("a report nobody asked for must be refused")
        } catch let error as TYDFSError {
            XCTAssertEqual(error.code, .alreadyExists)
        }
        let answer = try await beat("dk1", wantsToReport: true)
        do {
            try await state.chunkReportPage(from: dk("dk1"), reportID: "y", page: 1, anchor: answer.answerID, chunks: [], isLast: true)
            XCTFail("page 1 before page 0 must be refused")
        } catch let error as TYDFSError {
            XCTAssertTrue(error.message.contains("page 0 was expected"), error.message)
        }
        do {
            try await state.chunkReportPage(from: dk("dk1"), reportID: "z", page: 0, anchor: answer.answerID - 1, chunks: [], isLast: true)
            XCTFail("a snapshot older than the request must be refused")
        } catch let error as TYDFSError {
            XCTAssertTrue(error.message.contains("before the master asked"), error.message)
        }
        let holders = await replicas(of: chunk)
        XCTAssertEqual(holders, ["dk1", "dk2", "dk3"])
    }

    func testAPagedReportAddsRemovesAndFindsOrphansAndStashesChangesMadeMeanwhile() async throws {
        try await joinThree()
        let kept = try await put("/kept", on: ["dk1", "dk2"])
        let gone = try await put("/gone", on: ["dk1", "dk2", "dk3"])
        let found = try await put("/found", on: ["dk2", "dk3"])
        let orphan = ChunkID.random()
        let answer = try await beat("dk1", wantsToReport: true)
        try await state.chunkReportPage(from: dk("dk1"), reportID: "p", page: 0, anchor: answer.answerID, chunks: [kept, found], isLast: false)
        // A heartbeat while the report is arriving: its changes wait for the report.
        _ = try await beat("dk1", removed: [kept])
        let stillThere = await replicas(of: kept)
        XCTAssertEqual(stillThere, ["dk1", "dk2"], "changes made after the snapshot wait for it")
        try await state.chunkReportPage(from: dk("dk1"), reportID: "p", page: 1, anchor: answer.answerID, chunks: [orphan], isLast: true)
        let keptHolders = await replicas(of: kept), goneHolders = await replicas(of: gone), foundHolders = await replicas(of: found)
        XCTAssertEqual(keptHolders, ["dk2"], "the stashed removal applies after the report")
        XCTAssertEqual(goneHolders, ["dk2", "dk3"])
        XCTAssertEqual(foundHolders, ["dk1", "dk2", "dk3"])
        // The orphan (no file, grace 0) is queued for deletion with the next heartbeat...
        _ = try await beat("dk1")
        try await waitUntilDurable()
        let answerWithDeletion = try await beat("dk1")
        XCTAssertTrue(answerWithDeletion.deleteChunks.contains(orphan))
        XCTAssertFalse(answerWithDeletion.deleteChunks.contains(found))
    }

    func testIncrementalChangesAddAndRemoveReplicas() async throws {
        try await joinThree()
        let chunk = try await put("/i", on: ["dk1"])
        _ = try await beat("dk2", added: [chunk])
        _ = try await beat("dk1", removed: [chunk])
        let holders = await replicas(of: chunk)
        XCTAssertEqual(holders, ["dk2"])
    }

    func testARemovedFileIsGoneAtOnceAndItsReplicasAreOrderedDeletedOnceDurable() async throws {
        try await joinThree()
        let chunk = try await put("/r", on: ["dk1", "dk2", "dk3"])
        _ = try await state.remove(try RemotePath("/r"))
        let stat = try? await state.stat(try RemotePath("/r"))
        XCTAssertNil(stat)
        for name in ["dk1", "dk2", "dk3"] {
            let answer = try await beat(name)
            XCTAssertEqual(answer.deleteChunks, [chunk], "remove returns only once durable, so the order goes out at once")
        }
        try await stop()
        try await start()
        let holder = dk("dk1")
        let reloaded = await state.inspect { $0.pendingDeletions[holder]?.keys.map { $0 } }
        XCTAssertEqual(reloaded, [chunk], "queued deletions survive a restart")
        let list = try await state.list(.root)
        XCTAssertEqual(list.entries.count, 0)
    }

    /// Two spellings of one name (é as one character; e and a combining accent) are two files,
    /// as on a Linux disk and in the store: each is put without overwriting the other, takes its
    /// own attributes, and is removed alone, and a restart brings back exactly what was there.
    /// Before, the namespace merged them (Swift's `String` compares canonically) while the store
    /// kept two rows: the second put was refused as existing, and a file overwritten under the
    /// other spelling came back at the next start with its chunks deleted.
    func testTwoSpellingsOfOneNameAreTwoFilesBeforeAndAfterARestart() async throws {
        try await joinThree()
        let composed = try RemotePath("/caf\u{E9}"), decomposed = try RemotePath("/cafe\u{301}")
        let first = try await put(composed.value, on: ["dk1", "dk2", "dk3"])
        let second = try await put(decomposed.value, on: ["dk1", "dk2", "dk3"])
        let composedChunks = try await state.stat(composed).chunks.map(\.id)
        XCTAssertEqual(composedChunks, [first])
        let changed = try await state.setAttributes(SetAttributesRequest(path: decomposed, attributes: ["posix-mode": "100600"]))
        XCTAssertEqual(changed.attributes, ["posix-mode": "100600"])
        _ = try await state.remove(composed)
        try await stop()
        try await start()
        let gone = try? await state.stat(composed)
        XCTAssertNil(gone, "removed, and not back after the restart")
        let kept = try await state.stat(decomposed)
        XCTAssertEqual(kept.chunks.map(\.id), [second])
        XCTAssertEqual(kept.attributes, ["posix-mode": "100600"])
        let listed = try await state.list(.root).entries.map { Array($0.path.utf8) }
        XCTAssertEqual(listed, [Array(decomposed.value.utf8)])
        let holder = dk("dk1")
        let deleting = await state.inspect { $0.pendingDeletions[holder].map { Array($0.keys) } }
        XCTAssertEqual(deleting, [first], "only the removed spelling's chunk is deleted")
    }

    func testAModificationTimeIsSetDurablyAndNothingElseChanges() async throws {
        try await joinThree()
        let chunk = try await put("/t", on: ["dk1", "dk2", "dk3"])
        let path = try RemotePath("/t")
        let before = try await state.stat(path)
        let changed = try await state.setAttributes(SetAttributesRequest(path: path, mtimeMillis: 1_500_000_000_123))
        XCTAssertEqual(changed.mtimeMillis, 1_500_000_000_123)
        try await stop()
        try await start()
        let after = try await state.stat(path)
        XCTAssertEqual(after.mtimeMillis, 1_500_000_000_123)
        XCTAssertEqual(after.chunks.map(\.id), [chunk])
        XCTAssertEqual(after.chunks.map(\.id), before.chunks.map(\.id))
        XCTAssertEqual(after.checksum, before.checksum)
        XCTAssertEqual(after.sizeBytes, before.sizeBytes)
        do {
            _ = try await state.setAttributes(SetAttributesRequest(path: try RemotePath("/missing"), mtimeMillis: 1))
            XCTFail("a missing file was given a time")
        } catch let error as TYDFSError {
            XCTAssertEqual(error.code, .notFound)
        }
        // Times outside the years 1 to 9999 are refused: S3's and HTTP's dates have four-digit
        // years, and the extremes of an Int64 overflowed the arithmetic on them.
        for refused in [Int64.min, Limits.modificationMillis.lowerBound - 1, Limits.modificationMillis.upperBound + 1, Int64.max] {
            do {
                _ = try await state.setAttributes(SetAttributesRequest(path: path, mtimeMillis: refused))
                XCTFail("a time of \(refused) ms was accepted")
            } catch let error as TYDFSError {
                XCTAssertEqual(error.code, .invalidArgument)
            }
        }
        for accepted in [Limits.modificationMillis.lowerBound, Limits.modificationMillis.upperBound] {
            let entry = try await state.setAttributes(SetAttributesRequest(path: path, mtimeMillis: accepted))
            XCTAssertEqual(entry.mtimeMillis, accepted)
        }
    }

    /// Heartbeats may report up to `Limits.maxReportedBytes` each: the cluster's sums saturate
    /// instead of overflowing, and a load past `Limits.maxReportedInFlight` is refused.
    func testReportedSizesAddUpWithoutOverflowAndAnImpossibleLoadIsRefused() async throws {
        try await joinThree()
        for index in 1...9 {
            _ = try await state.heartbeat(HeartbeatRequest(
                id: dk("dk\(index)"), bootID: "boot-dk\(index)", address: "127.0.0.1:7\(index)00", capacityBytes: Limits.maxReportedBytes,
                usedBytes: Limits.maxReportedBytes - (1 << 40), chunkCount: 0, inFlight: Limits.maxReportedInFlight, chunksServed: 0,
                deletedChunks: []))
        }
        let summary = try await state.clusterSummary()
        XCTAssertEqual(summary.capacityBytes, Int64.max)
        XCTAssertEqual(summary.usedBytes, Int64.max)
        do {
            _ = try await state.heartbeat(HeartbeatRequest(
                id: dk("dk1"), bootID: "boot-dk1", address: "127.0.0.1:7100", capacityBytes: 1, usedBytes: 0, chunkCount: 0,
                inFlight: Limits.maxReportedInFlight + 1, chunksServed: 0, deletedChunks: []))
            XCTFail("a load past what any datakeeper carries was accepted")
        } catch let error as TYDFSError {
            XCTAssertEqual(error.code, .invalidArgument)
        }
    }

    func testAttributesOfFilesAndDirectoriesAreLaidOverTheKeptOnesDurably() async throws {
        try await joinThree()
        _ = try await put("/d/t", on: ["dk1", "dk2", "dk3"])
        let file = try RemotePath("/d/t"), directory = try RemotePath("/d")
        let before = try await state.stat(file)
        _ = try await state.setAttributes(SetAttributesRequest(path: file, attributes: ["posix-mode": "100600", "posix-uid": "7"]))
        let changed = try await state.setAttributes(SetAttributesRequest(path: file, attributes: ["posix-mode": "100640", "posix-uid": ""]))
        XCTAssertEqual(changed.attributes, ["posix-mode": "100640"], "laid over the kept ones; an empty value removes one")
        XCTAssertEqual(changed.mtimeMillis, before.mtimeMillis, "no time given, none changed")
        // A directory that existed through its file alone is made one, and keeps them.
        let made = try await state.setAttributes(SetAttributesRequest(path: directory, mtimeMillis: 1, attributes: ["posix-mode": "40700"]))
        XCTAssertTrue(made.isDirectory)
        XCTAssertEqual(made.attributes, ["posix-mode": "40700"])
        try await stop()
        try await start()
        let after = try await state.stat(file)
        XCTAssertEqual(after.attributes, ["posix-mode": "100640"])
        XCTAssertEqual(after.chunks.map(\.id), before.chunks.map(\.id))
        let root = try await state.list(.root)
        XCTAssertEqual(root.entries.map(\.attributes), [["posix-mode": "40700"]])
        let listed = try await state.list(directory)
        XCTAssertEqual(listed.attributes, ["posix-mode": "40700"], "a listing carries the directory's own")
        _ = try await state.remove(file)
        let emptied = try await state.list(directory)
        XCTAssertEqual(emptied.entries.count, 0, "made, it stays when emptied")
        for (path, code) in [("/", TYDFSError.Code.invalidArgument), ("/missing", .notFound)] {
            do {
                _ = try await state.setAttributes(SetAttributesRequest(path: try RemotePath(path), attributes: ["posix-mode": "40700"]))
                XCTFail("\(path) was given attributes")
            } catch let error as TYDFSError {
                XCTAssertEqual(error.code, code)
            }
        }
    }

    func testAPutOverAFileKeepsItsModeAndOwnerUnlessItGivesItsOwn() async throws {
        try await joinThree()
        _ = try await put("/f", on: ["dk1", "dk2", "dk3"])
        let path = try RemotePath("/f")
        _ = try await state.setAttributes(SetAttributesRequest(path: path, attributes: ["posix-mode": "100600", "posix-uid": "7", "note": "old"]))
        let plain = try await openOverwriting("/f")
        _ = try await state.commit([commitOfFirstChunk(plain)])
        let kept = try await state.stat(path)
        XCTAssertEqual(kept.attributes, ["posix-mode": "100600", "posix-uid": "7"], "a mount's rewrite keeps a chmod made meanwhile elsewhere")
        var given = try commitOfFirstChunk(try await openOverwriting("/f"))
        given.commit.attributes = ["posix-mode": "100644"]
        _ = await state.commit([given])
        let replaced = try await state.stat(path)
        XCTAssertEqual(replaced.attributes, ["posix-mode": "100644", "posix-uid": "7"])
        // Joined over it (S3 multipart completion) as well.
        _ = try await put("/part", on: ["dk1", "dk2", "dk3"])
        let joined = try await state.concatenate(ConcatenateRequest(sources: [try RemotePath("/part")], target: path, overwrite: true))
        XCTAssertEqual(joined.attributes, ["posix-mode": "100644", "posix-uid": "7"])
    }

    func testAPathLongerThanTheStoreKeepsIsRefusedBeforeItJoinsABatch() async throws {
        try await stop()
        try await start(maxPathBytes: 40)
        try await joinThree()
        _ = try await put("/a/f", on: ["dk1", "dk2", "dk3"])
        let long = "/" + String(repeating: "n", count: 40)
        var refusals: [TYDFSError.Code] = []
        for attempt in [
            { _ = try await self.state.createUpload(CreateUploadRequest(path: try RemotePath(long), overwrite: false, firstChunkBytes: 10)) },
            { _ = try await self.state.makeDirectory(MakeDirectoryRequest(path: try RemotePath(long), parents: false)) },
            { _ = try await self.state.rename(RenameRequest(from: try RemotePath("/a"), to: try RemotePath(long))) },
        ] as [() async throws -> Void] {
            do {
                try await attempt()
            } catch let error as TYDFSError {
                XCTAssertTrue(error.message.contains("at most 40 bytes"), error.message)
                refusals.append(error.code)
            }
        }
        XCTAssertEqual(refusals, [.invalidArgument, .invalidArgument, .invalidArgument])
        let root = try await state.list(.root)
        XCTAssertEqual(root.entries.map(\.path), ["/a"], "nothing changed")
        _ = try await put("/a/g", on: ["dk1", "dk2", "dk3"])
    }

    func testACommitTheStoreCannotWriteIsUndoneInMemory() async throws {
        try await joinThree()
        _ = try await put("/before", on: ["dk1", "dk2", "dk3"])
        // Close the database under the committer: the next batch fails for real.
        try await store.close()
        do {
            _ = try await put("/after", on: ["dk1", "dk2", "dk3"])
            XCTFail("a commit the store cannot write must fail")
        } catch let error as TYDFSError {
            XCTAssertEqual(error.code, .io)
        }
        try await waitUntil { await self.state.inspect { $0.file(at: try! RemotePath("/after")) == nil } }
        let before = await state.inspect { $0.file(at: try! RemotePath("/before")) != nil }
        XCTAssertTrue(before)
        store = try await SQLMetadataStore.openSQLite(path: folder + "/metadata.sqlite", logger: Logger(label: "test"))
    }

    func testABatchedCommitTheStoreCannotWriteFailsEveryPutAndIsUndoneInMemory() async throws {
        try await joinThree()
        let oldChunk = try await put("/same", on: ["dk1", "dk2", "dk3"])
        let replacing = try await openOverwriting("/same"), new = try await openOverwriting("/new")
        // Close the database under the committer: the batch fails for real.
        try await store.close()
        let answers = await state.commit([try commitOfFirstChunk(replacing), try commitOfFirstChunk(new)])
        for answer in answers {
            XCTAssertThrowsError(try answer.get()) { XCTAssertEqual(($0 as? TYDFSError)?.code, .io) }
        }
        // Both puts undone in memory: the old file is back whole, the new one absent, and each
        // upload is open again (its client may commit it again).
        try await waitUntil { await self.state.inspect { $0.file(at: try! RemotePath("/new")) == nil } }
        let same = await state.inspect { $0.file(at: try! RemotePath("/same"))?.chunks.map(\.id) }
        XCTAssertEqual(same, [oldChunk])
        let replacingPath = try await state.uploadPath(uploadID: replacing.uploadID)
        let newPath = try await state.uploadPath(uploadID: new.uploadID)
        XCTAssertEqual([replacingPath.value, newPath.value], ["/same", "/new"])
        store = try await SQLMetadataStore.openSQLite(path: folder + "/metadata.sqlite", logger: Logger(label: "test"))
    }

    /// Waits until every edit made so far is durable: a commit is answered only once its batch
    /// is, and batches are written in order.
    func testAChunkWithNoLiveReplicaLeavesTheRepairSetUntilAHolderReturns() async throws {
        try await stop()
        try await start(heartbeatTimeoutSeconds: 0.3)
        try await joinThree()
        let chunk = try await put("/m", on: ["dk1", "dk2", "dk3"])
        await state.replicationRound()
        let healthy = await state.attention
        XCTAssertEqual(healthy, [], "three live replicas of three: nothing to plan")
        try await Task.sleep(for: .milliseconds(500))
        let plan = await state.replicationRound()
        XCTAssertEqual(plan.missing, [chunk])
        let whileMissing = await state.attention
        XCTAssertEqual(whileMissing, [], "every holder is dead: nothing to plan each round")
        let answer = try await beat("dk1")
        try await report("dk1", [chunk], anchor: answer.answerID)
        await state.replicationRound()
        let afterReturn = await state.attention
        XCTAssertEqual(afterReturn, [chunk], "a holder is back: the chunk is planned again")
    }

    private func waitUntilDurable() async throws {
        _ = try await put("/marker-\(UUID().uuidString)", on: ["dk1"])
    }

    private func waitUntil(_ condition: @escaping () async -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(5)
        while await !condition() {
            guard ContinuousClock.now < deadline else { return XCTFail("condition not met within 5 s") }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    func testADrainCopiesEveryChunkAwayTakesNoNewOnesAndRetires() async throws {
        try await joinThree(andFourth: true)
        let chunk = try await put("/f", on: ["dk1", "dk2", "dk3"])
        _ = await state.replicationRound()
        var status = try await state.drain(dk("dk1"))
        XCTAssertEqual(status.state, .draining)
        XCTAssertEqual(status.chunksRemaining, 1)
        XCTAssertNil(status.blockedBy, "three others can take the chunk")
        // New chunks avoid it.
        let session = try await state.createUpload(CreateUploadRequest(path: try RemotePath("/g"), overwrite: false))
        let allocation = try await state.allocateChunk(uploadID: session.uploadID, request: AllocateChunkRequest(exclude: [], dataBytes: 10))
        XCTAssertEqual(Set(allocation.targets.map(\.id.value)), ["dk2", "dk3", "dk4"])
        // Its chunk is copied to the one datakeeper without it, not from it while others can serve.
        let plan = await state.replicationRound()
        XCTAssertEqual(plan.copies.map(\.destination.value), ["dk4"])
        XCTAssertNotEqual(plan.copies.first?.sources.first?.value, "dk1")
        let stillDraining = try await state.drainStatus(dk("dk1")).state
        XCTAssertEqual(stillDraining, .draining)
        // The copy lands: the next round retires dk1, and its heartbeat answer says so.
        _ = try await beat("dk4", copiesDone: [chunk])
        try await waitUntil { await self.replicas(of: chunk) == ["dk1", "dk2", "dk3", "dk4"] }
        _ = await state.replicationRound()
        status = try await state.drainStatus(dk("dk1"))
        XCTAssertEqual(status, DrainStatus(id: dk("dk1"), state: .retired, chunksRemaining: 0))
        let answer = try await beat("dk1")
        XCTAssertEqual(answer.drained, true)
        let kinds = await state.events.after(0).events.map(\.kind)
        XCTAssertTrue(kinds.contains(.drainStarted) && kinds.contains(.repair) && kinds.contains(.drainFinished), "\(kinds)")
        // Its replica is never trimmed in place of a serving one, and cancelling puts it back.
        let settled = await state.replicationRound()
        XCTAssertTrue(settled.trims.isEmpty)
        let cancelled = try await state.cancelDrain(dk("dk1")).state
        XCTAssertEqual(cancelled, .alive)
        let trimmed = await state.replicationRound()
        XCTAssertEqual(trimmed.trims.count, 1, "back in service, the chunk has 4 replicas for a factor of 3")
    }

    func testAChunkOnlyOnADrainingDataKeeperThatLeftAndCameBackIsCopiedAway() async throws {
        try await joinThree()
        // Drained and gone before any round could order a copy of its chunk.
        let chunk = try await put("/f", on: ["dk1"])
        _ = try await state.drain(dk("dk1"))
        await state.leave(LeaveRequest(id: dk("dk1")))
        let whileAway = await state.replicationRound()
        XCTAssertEqual(whileAway.missing, [chunk], "its only holder is away")
        // Back: it reports its chunk, and the chunk is planned again, from the draining holder.
        let answer = try await beat("dk1")
        XCTAssertTrue(answer.sendChunkReport)
        try await report("dk1", [chunk], anchor: answer.answerID)
        let back = await state.replicationRound()
        XCTAssertEqual(Set(back.copies.map(\.destination.value)), ["dk2", "dk3"])
        XCTAssertTrue(back.copies.allSatisfy { $0.sources == [dk("dk1")] })
    }

    func testARetiredDataKeeperWhoseChunksFallBelowTheirFactorDrainsAgain() async throws {
        try await joinThree(andFourth: true)
        let chunk = try await put("/f", on: ["dk1", "dk2", "dk3"])
        _ = await state.replicationRound()
        _ = try await state.drain(dk("dk1"))
        _ = await state.replicationRound()
        _ = try await beat("dk4", copiesDone: [chunk])
        _ = await state.replicationRound()
        let retired = try await state.drainStatus(dk("dk1")).state
        XCTAssertEqual(retired, .retired)
        // A serving replica is lost: dk1 must not be switched off now.
        await state.leave(LeaveRequest(id: dk("dk2")))
        _ = await state.replicationRound()
        let again = try await state.drainStatus(dk("dk1"))
        XCTAssertEqual(again.state, .draining)
        XCTAssertEqual(again.chunksRemaining, 1)
        let answer = try await beat("dk1")
        XCTAssertNil(answer.drained)
    }

    func testARemovedFilesChunksAreDeletedOnlyAfterTheGrace() async throws {
        try await stop()
        try await start(deletionGraceSeconds: 0.5)
        try await joinThree()
        let chunk = try await put("/f", on: ["dk1", "dk2", "dk3"])
        _ = try await state.remove(try RemotePath("/f"))
        let early = try await beat("dk1")
        XCTAssertEqual(early.deleteChunks, [], "a get that began before the rm may still be reading it")
        try await Task.sleep(for: .milliseconds(600))
        let late = try await beat("dk1")
        XCTAssertEqual(late.deleteChunks, [chunk])
    }

    func testMaintenanceModeAsksForADrainAndTooFewDataKeepersBlockIt() async throws {
        try await joinThree()
        _ = try await put("/f", on: ["dk1", "dk2", "dk3"])
        _ = try await beat("dk2", maintenance: true)
        let status = try await state.drainStatus(dk("dk2"))
        XCTAssertEqual(status.state, .draining)
        XCTAssertEqual(status.chunksRemaining, 1)
        XCTAssertEqual(status.blockedBy, "only 2 live datakeepers in service for replication 3: the drain finishes once more join")
        do {
            _ = try await state.drain(dk("dk9"))
            XCTFail("an unknown datakeeper cannot be drained")
        } catch let error as TYDFSError {
            XCTAssertEqual(error.code, .notFound)
        }
    }

    func testALeavingDataKeeperIsDeadAtOnceAndItsChunksAreRepaired() async throws {
        try await joinThree(andFourth: true)
        let chunk = try await put("/f", on: ["dk1", "dk2", "dk3"])
        _ = await state.replicationRound()
        await state.leave(LeaveRequest(id: dk("dk2")))
        let nodes = try await state.nodes().nodes
        XCTAssertEqual(nodes.first { $0.id == dk("dk2") }?.state, .dead)
        let plan = await state.replicationRound()
        XCTAssertEqual(plan.copies.map(\.chunk), [chunk])
        XCTAssertEqual(plan.copies.map(\.destination.value), ["dk4"])
        let summary = try await state.clusterSummary()
        XCTAssertEqual(summary.underReplicatedChunks, 1)
        XCTAssertEqual(summary.repairsInFlight, 1)
        XCTAssertEqual(summary.datakeepers.filter(\.alive).count, 3)
        // Its next heartbeat (a restart) brings it back.
        _ = try await beat("dk2")
        let back = try await state.nodes().nodes.first { $0.id == dk("dk2") }?.state
        XCTAssertEqual(back, .alive)
        let kinds = await state.events.after(0).events.map(\.kind)
        XCTAssertEqual(kinds.filter { $0 == .datakeeperJoined }.count, 4)
        XCTAssertTrue(kinds.contains(.datakeeperLeft) && kinds.contains(.datakeeperReturned), "\(kinds)")
    }

    /// Every master route, at router depth, against every kind of caller: no credentials, a
    /// wrong secret, an unknown or revoked key, a read-only key, a key limited to another
    /// prefix, a read-write key, an admin key and the cluster secret. Each is allowed exactly
    /// what its rights say, and nothing a refused caller tried changed the namespace.
    func testEveryRouteRefusesWhoeverMayNotUseIt() async throws {
        Telemetry.bootstrap()
        try await joinThree()
        _ = try await put("/docs/a", on: ["dk1", "dk2", "dk3"])
        let upload = try await state.createUpload(CreateUploadRequest(path: try RemotePath("/docs/up"), overwrite: false, firstChunkBytes: nil))
        let keys = try AccessKeyStore(directory: folder)
        func key(_ access: AccessLevel, _ prefix: String? = nil) throws -> AccessKey { try keys.create(access: access, prefix: try prefix.map { try RemotePath($0) }) }
        @Sendable func signer(_ key: AccessKey) -> RequestSigner { RequestSigner(accessKeyID: key.accessKeyID, secret: key.secretAccessKey) }
        let (readOnly, teamOnly, readWrite, admin, revoked) = (try key(.readOnly), try key(.readWrite, "/team"), try key(.readWrite), try key(.admin), try key(.admin))
        XCTAssertTrue(try keys.revoke(revoked.accessKeyID))

        enum Caller { case refused, scoped(AccessLevel, prefix: String?), cluster }
        /// The errors of a batch's answers, whatever the batch (lookup, opens, commits).
        struct BatchErrors: Decodable {
            struct Answer: Decodable { var error: ErrorResponse.Body? }
            var answers: [Answer]
        }
        let callers: [(String, RequestSigner?, Caller)] = [
            ("no credentials", nil, .refused),
            ("wrong secret", RequestSigner(accessKeyID: admin.accessKeyID, secret: "not-the-secret"), .refused),
            ("unknown key", RequestSigner(accessKeyID: "TKUNKNOWNUNKNOWN0000", secret: admin.secretAccessKey), .refused),
            ("revoked key", signer(revoked), .refused),
            ("another cluster's secret", RequestSigner(cluster: ClusterSecret.generate()), .refused),
            ("read-only key", signer(readOnly), .scoped(.readOnly, prefix: nil)),
            ("key limited to /team", signer(teamOnly), .scoped(.readWrite, prefix: "/team")),
            ("read-write key", signer(readWrite), .scoped(.readWrite, prefix: nil)),
            ("admin key", signer(admin), .scoped(.admin, prefix: nil)),
            ("cluster secret", RequestSigner(cluster: secret), .cluster),
        ]
        /// `readEach`, `writeEach`: a batch (a lookup, opens, commits), refused item by item in a
        /// 200 answer (the items of several callers may mix paths a key may and may not use).
        enum Need {
            case open, look, read(String), readEach(String), write(String), writeEach(String), admin, cluster

            var eachPath: String? {
                switch self {
                case .readEach(let path), .writeEach(let path): return path
                default: return nil
                }
            }
        }
        let id = upload.uploadID
        let routes: [(HTTPRequest.Method, String, String?, Need)] = [
            (.get, "/", nil, .open), (.get, Route.metrics, nil, .open), (.get, Route.healthz, nil, .open),
            (.get, Route.readyz, nil, .open), (.get, Route.health, nil, .open),
            (.get, Route.cluster, nil, .look), (.get, Route.events, nil, .look), (.get, Route.nodes, nil, .look),
            (.get, Route.drain("dk9"), nil, .look), (.post, Route.badReplicas, "{}", .look),
            (.get, Route.content + "?path=%2Fdocs%2Fnone", nil, .read("/docs/none")), (.get, Route.files + "?path=%2Fdocs%2Fa", nil, .read("/docs/a")),
            (.post, Route.lookup, #"{"items": [{"path": "/docs/a"}]}"#, .readEach("/docs/a")),
            (.get, Route.list + "?path=%2Fdocs", nil, .read("/docs")), (.get, Route.list + "?path=%2Fdocs&\(Query.entryOnly)=true", nil, .read("/docs")),
            (.get, Route.list + "?path=%2Fdocs&\(Query.listLimit)=1&\(Query.listAfter)=a", nil, .read("/docs")),
            (.get, Route.fsck + "?path=%2Fdocs", nil, .read("/docs")),
            (.post, Route.uploads, #"{"path": "/docs/new", "overwrite": false}"#, .write("/docs/new")),
            (.post, Route.uploadChunks(id), #"{"exclude": [], "dataBytes": 0}"#, .write("/docs/up")),
            (.post, Route.uploadCommit(id), #"{"sizeBytes": -1, "crc32c": 0, "chunks": []}"#, .write("/docs/up")),
            (.post, Route.openUploads, #"{"items": [{"path": "/docs/new", "overwrite": false}]}"#, .writeEach("/docs/new")),
            (.post, Route.commitUploads, #"{"items": [{"uploadID": "\#(id)", "commit": {"sizeBytes": -1, "crc32c": 0, "chunks": []}}]}"#,
             .writeEach("/docs/up")),
            (.post, Route.rename, #"{"from": "/docs/a", "to": "/team/a"}"#, .write("/docs/a")),
            (.post, Route.attributes, #"{"path": "/docs/a", "mtimeMillis": 1}"#, .write("/docs/a")),
            (.delete, Route.files + "?path=%2Fdocs%2Fa", nil, .write("/docs/a")),
            (.post, Route.drain("dk9"), nil, .admin), (.delete, Route.drain("dk9"), nil, .admin),
            (.get, Route.keys, nil, .admin), (.post, Route.keys, #"{"access": "read-only"}"#, .admin),
            (.delete, Route.key("TKNOSUCHKEY000000000"), nil, .admin),
            (.post, Route.heartbeat, "{}", .cluster), (.post, Route.chunkReport, "", .cluster), (.post, Route.leave, #"{"id": "dk9"}"#, .cluster),
            (.post, Route.uploadRenew(id), nil, .write("/docs/up")),
            (.delete, Route.upload(id), nil, .write("/docs/up")),
            (.post, Route.directories, #"{"path": "/docs/d", "parents": true}"#, .write("/docs/d")),
            (.delete, Route.directories + "?path=%2Fdocs%2Fd", nil, .write("/docs/d")),
            (.post, Route.concatenate, #"{"sources": ["/docs/up"], "target": "/docs/joined", "overwrite": false}"#, .write("/docs/joined")),
            // The whole key, secret included: the S3 gateway's, signing with the cluster secret.
            (.get, Route.key(readOnly.accessKeyID), nil, .cluster),
        ]
        @Sendable func allowed(_ caller: Caller, _ need: Need) -> Bool {
            switch (caller, need) {
            case (_, .open), (.cluster, _): return true
            case (.refused, _), (.scoped, .cluster): return false
            case (.scoped(let level, _), .admin): return level == .admin
            case (.scoped, .look): return true
            case (.scoped(_, let prefix), .read(let path)), (.scoped(_, let prefix), .readEach(let path)):
                return prefix.map { path.hasPrefix($0 + "/") } ?? true
            case (.scoped(let level, let prefix), .write(let path)), (.scoped(let level, let prefix), .writeEach(let path)):
                return level != .readOnly && (prefix.map { path.hasPrefix($0 + "/") } ?? true)
            }
        }
        let state = self.state!
        let namespaceBefore = try await state.list(try RemotePath("/docs")).entries.map(\.path)
        let keysBefore = keys.list().map(\.accessKeyID)
        let reader = try TYDFSClient(masterURL: "http://127.0.0.1:9")
        let app = Application(router: MasterServer.router(
            state: state, reader: reader, access: AccessMiddleware(secret: secret, keys: keys, anonymous: nil)))
        do {
            try await app.test(.router) { unsigned in
                for (name, signer, caller) in callers {
                    let client = SigningTestClient(client: unsigned, signer: signer)
                    for (method, uri, body, need) in routes {
                        let (status, answer) = try await client.execute(uri: uri, method: method, body: body.map { ByteBuffer(string: $0) }) {
                            ($0.status, $0.body)
                        }
                        if let path = need.eachPath, allowed(caller, .look) {
                            // Authenticated: answered, and each item refused or not on its own.
                            XCTAssertEqual(status, .ok, "\(name): \(method) \(uri)")
                            let error = try JSONDecoder().decode(BatchErrors.self, from: Data(answer.readableBytesView)).answers.first?.error
                            XCTAssertEqual(error?.code == TYDFSError.Code.forbidden.rawValue, !allowed(caller, need), "\(name): \(uri) of \(path): \(String(describing: error))")
                        } else if allowed(caller, need) {
                            XCTAssertFalse([.unauthorized, .forbidden].contains(status), "\(name): \(method) \(uri) refused with \(status.code)")
                        } else {
                            let expected: HTTPResponse.Status = { if case .refused = caller { return .unauthorized }; return .forbidden }()
                            XCTAssertEqual(status, expected, "\(name): \(method) \(uri)")
                        }
                    }
                    // Refused attempts changed nothing.
                    if !allowed(caller, .write("/docs/a")) {
                        let namespace = try await state.list(try RemotePath("/docs")).entries.map(\.path)
                        XCTAssertEqual(namespace, namespaceBefore, "\(name) changed the namespace")
                    }
                    if !allowed(caller, .admin) { XCTAssertEqual(keys.list().map(\.accessKeyID), keysBefore, "\(name) changed the keys") }
                }
                // A genuine signature over another body, or without the signed digest header: refused.
                let keysNow = keys.list().map(\.accessKeyID)
                var headers = HTTPFields()
                for (name, value) in signer(admin).headers(method: "POST", target: Route.keys, body: Array(#"{"access": "read-only"}"#.utf8), date: UnixClock.now) {
                    headers[HTTPField.Name(name)!] = value
                }
                let swapped = try await unsigned.executeRequest(uri: Route.keys, method: .post, headers: headers, body: ByteBuffer(string: #"{"access": "admin"}"#))
                XCTAssertEqual(swapped.status, .unauthorized, "a body swapped under a signature")
                headers[HTTPField.Name(RequestSignature.digestHeader)!] = nil
                let undigested = try await unsigned.executeRequest(uri: Route.keys, method: .post, headers: headers, body: ByteBuffer(string: #"{"access": "read-only"}"#))
                XCTAssertEqual(undigested.status, .unauthorized, "no signed digest")
                XCTAssertEqual(keys.list().map(\.accessKeyID), keysNow)
            }
        } catch {
            try await reader.shutdown()
            throw error
        }
        try await reader.shutdown()
    }

    /// A listing with `entry=true` answers the path's own entry, not its children: a directory
    /// with its time, attributes and subdirectory count (what a mount's getattr shows), a file
    /// as a listing of it does; a missing path is not found, and the plain listing is unchanged.
    func testAListingOfTheEntryAloneAnswersThePathItselfWithItsSubdirectoryCount() async throws {
        try await joinThree()
        for name in ["/docs/a", "/docs/sub/b", "/docs/other/c"] { _ = try await put(name, on: ["dk1", "dk2", "dk3"]) }
        _ = try await state.makeDirectory(MakeDirectoryRequest(path: try RemotePath("/docs/empty"), parents: false, attributes: ["posix-mode": "40700"]))
        let secret = self.secret
        let reader = try TYDFSClient(masterURL: "http://127.0.0.1:9")
        let app = Application(router: MasterServer.router(
            state: state, reader: reader, access: AccessMiddleware(secret: secret, keys: try AccessKeyStore(directory: folder), anonymous: nil)))
        let queries = ["path=%2Fdocs", "path=%2Fdocs&entry=true", "path=%2Fdocs%2Fempty&entry=true", "path=%2F&entry=true",
                       "path=%2Fdocs%2Fa&entry=true", "path=%2Fdocs%2Fnone&entry=true", "path=%2Fdocs&entry=no"]
        let answers: [(HTTPResponse.Status, ListResponse?)]
        do {
            answers = try await app.test(.router) { unsigned in
                let client = SigningTestClient(client: unsigned, signer: RequestSigner(cluster: secret))
                var answers: [(HTTPResponse.Status, ListResponse?)] = []
                for query in queries {
                    answers.append(try await client.execute(uri: Route.list + "?" + query, method: .get) { response in
                        (response.status, response.status == .ok ? try JSONDecoder().decode(ListResponse.self, from: Data(response.body.readableBytesView)) : nil)
                    })
                }
                // Asked for in the compact form, the same listings come in it.
                for (index, query) in queries.enumerated() where answers[index].0 == .ok {
                    let compact = try await client.execute(uri: Route.list + "?" + query, method: .get, headers: [.accept: CompactCodec.contentType]) { response in
                        XCTAssertEqual(response.headers[.contentType], CompactCodec.contentType)
                        return try response.body.withUnsafeReadableBytes { try CompactCodec.decode(ListResponse.self, from: $0) }
                    }
                    XCTAssertEqual(compact.entries.map(\.path), answers[index].1?.entries.map(\.path), query)
                    XCTAssertEqual(compact.entries.map(\.sizeBytes), answers[index].1?.entries.map(\.sizeBytes), query)
                    XCTAssertEqual(compact.entries.map(\.isDirectory), answers[index].1?.entries.map(\.isDirectory), query)
                    XCTAssertEqual(compact.entries.map(\.checksum), answers[index].1?.entries.map(\.checksum), query)
                    XCTAssertEqual(compact.subdirectoryCount, answers[index].1?.subdirectoryCount, query)
                    XCTAssertEqual(compact.mtimeMillis, answers[index].1?.mtimeMillis, query)
                    XCTAssertEqual(compact.attributes, answers[index].1?.attributes, query)
                }
                return answers
            }
        } catch {
            try await reader.shutdown()
            throw error
        }
        try await reader.shutdown()
        let children = try XCTUnwrap(answers[0].1)
        XCTAssertEqual(children.entries.map(\.path), ["/docs/a", "/docs/empty", "/docs/other", "/docs/sub"])
        XCTAssertNil(children.subdirectoryCount, "only the entry alone carries the count")
        let directory = try XCTUnwrap(answers[1].1)
        XCTAssertEqual(directory.entries.map(\.path), ["/docs"])
        XCTAssertEqual(directory.entries.map(\.isDirectory), [true])
        XCTAssertEqual(directory.subdirectoryCount, 3)
        XCTAssertNil(directory.file, "a directory listed as itself is no file")
        XCTAssertEqual(directory.mtimeMillis, children.mtimeMillis)
        XCTAssertEqual(directory.entries[0].sizeBytes, children.entries.map(\.sizeBytes).reduce(0, +))
        let empty = try XCTUnwrap(answers[2].1)
        XCTAssertEqual(empty.subdirectoryCount, 0)
        XCTAssertEqual(empty.attributes, ["posix-mode": "40700"])
        XCTAssertEqual(try XCTUnwrap(answers[3].1).subdirectoryCount, 1, "the root holds /docs")
        let file = try XCTUnwrap(answers[4].1)
        XCTAssertEqual(file.entries.map(\.path), ["/docs/a"])
        XCTAssertEqual(file.entries.map(\.isDirectory), [false])
        XCTAssertEqual(file.file?.path, "/docs/a")
        XCTAssertNil(file.subdirectoryCount)
        XCTAssertNil(file.mtimeMillis, "a file's time is its entry's")
        XCTAssertEqual(answers[5].0, .notFound)
        XCTAssertEqual(try XCTUnwrap(answers[6].1).entries.count, 4, "any other value lists the children")
    }

    /// A listing asked for in pages (`limit`, `after`) answers at most `limit` entries after the
    /// name given, with the name to go on from while more follow, in JSON and in the compact form
    /// alike; a limit that is not a whole number above 0 is refused. A client on a real socket
    /// lists the directory page by page, names that need escaping included, and the pages add up
    /// to the whole listing.
    func testAListingComesInPagesThatAddUpToTheWhole() async throws {
        try await joinThree()
        let names = ["a b", "a&b=c", "a+b", "a%20b", "a#b?", "naïve ✓", "z"] + (0..<18).map { String(format: "f%02d", $0) }
        for name in names { _ = try await put("/docs/" + name, on: ["dk1", "dk2", "dk3"]) }
        for name in ["/gone/x", "/gone/y"] { _ = try await put(name, on: ["dk1", "dk2", "dk3"]) }
        let state = self.state!
        let whole = try await state.list(try RemotePath("/docs")).entries.map(\.path)
        XCTAssertEqual(whole, names.sorted().map { "/docs/" + $0 })
        let secret = self.secret
        let reader = try TYDFSClient(masterURL: "http://127.0.0.1:9")
        let app = Application(router: MasterServer.router(
            state: state, reader: reader, access: AccessMiddleware(secret: secret, keys: try AccessKeyStore(directory: folder), anonymous: nil)))
        let escaped = { @Sendable (name: String) in name.addingPercentEncoding(withAllowedCharacters: CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyz0123456789"))! }
        do {
            try await app.test(.router) { unsigned in
                let client = SigningTestClient(client: unsigned, signer: RequestSigner(cluster: secret))
                var listed: [String] = []
                var after: String?
                for _ in 0..<names.count {
                    let query = "path=%2Fdocs&limit=4" + (after.map { "&after=" + escaped($0) } ?? "")
                    let page = try await client.execute(uri: Route.list + "?" + query, method: .get) { response in
                        XCTAssertEqual(response.status, .ok, query)
                        return try JSONDecoder().decode(ListResponse.self, from: Data(response.body.readableBytesView))
                    }
                    let compact = try await client.execute(uri: Route.list + "?" + query, method: .get, headers: [.accept: CompactCodec.contentType]) {
                        try $0.body.withUnsafeReadableBytes { try CompactCodec.decode(ListResponse.self, from: $0) }
                    }
                    XCTAssertEqual(compact.entries.map(\.path), page.entries.map(\.path), query)
                    XCTAssertEqual(compact.nextAfter, page.nextAfter, query)
                    XCTAssertLessThanOrEqual(page.entries.count, 4)
                    listed += page.entries.map(\.path)
                    guard let next = page.nextAfter else { break }
                    XCTAssertEqual("/docs/" + next, page.entries.last?.path, "a page goes on from its last name")
                    after = next
                }
                XCTAssertEqual(listed, whole)
                for limit in ["0", "-4", "x", "", "4.5"] {
                    try await client.execute(uri: Route.list + "?path=%2Fdocs&limit=" + limit, method: .get) { response in
                        XCTAssertEqual(response.status, .badRequest, "limit '\(limit)'")
                    }
                }
                let unpaged = try await client.execute(uri: Route.list + "?path=%2Fdocs", method: .get) {
                    try JSONDecoder().decode(ListResponse.self, from: Data($0.body.readableBytesView))
                }
                XCTAssertEqual(unpaged.entries.map(\.path), whole, "without a limit, every entry at once")
                XCTAssertNil(unpaged.nextAfter)
                let file = try await client.execute(uri: Route.list + "?path=%2Fdocs%2Fz&limit=1&after=zz", method: .get) {
                    try JSONDecoder().decode(ListResponse.self, from: Data($0.body.readableBytesView))
                }
                XCTAssertEqual(file.file?.path, "/docs/z", "a file lists as itself, whatever the page")
                XCTAssertNil(file.nextAfter)
            }
            try await app.test(.live) { live in
                let client = try TYDFSClient(masterURL: "http://127.0.0.1:\(try XCTUnwrap(live.port))", signer: RequestSigner(cluster: secret))
                do {
                    // A page of one: every name, odd ones included, goes back to the master as the cursor.
                    var pages: [ListResponse] = []
                    try await client.forEachListPage(try RemotePath("/docs"), pageEntries: 1) { pages.append($0) }
                    XCTAssertEqual(pages.map(\.entries.count), Array(repeating: 1, count: names.count))
                    XCTAssertEqual(pages.flatMap(\.entries).map(\.path), whole)
                    XCTAssertEqual(pages.compactMap(\.nextAfter), [], "the cursor stays between the client and the master")
                    let listing = try await client.list(try RemotePath("/docs"))
                    XCTAssertEqual(listing.entries.map(\.path), whole)
                    // A directory replaced by a file between two pages is not listed as a mix of both.
                    var seen = 0
                    do {
                        try await client.forEachListPage(try RemotePath("/gone"), pageEntries: 1) { _ in
                            seen += 1
                            guard seen == 1 else { return }
                            for name in ["/gone/x", "/gone/y"] { _ = try await state.remove(try RemotePath(name)) }
                            _ = try await Self.put("/gone", on: ["dk1", "dk2", "dk3"], in: state)
                        }
                        XCTFail("a directory replaced by a file was listed")
                    } catch let error as TYDFSError {
                        XCTAssertEqual(error.code, .notFound)
                        XCTAssertTrue(error.message.contains("replaced by a file"), error.message)
                    }
                    XCTAssertEqual(seen, 1)
                } catch {
                    try await client.shutdown()
                    throw error
                }
                try await client.shutdown()
            }
        } catch {
            try await reader.shutdown()
            throw error
        }
        try await reader.shutdown()
    }

    /// A lookup answers each file, in order, as a stat of it would: the file with read tokens,
    /// the file without them when the caller only inspects, not found, or refused for a path
    /// outside the key's prefix (that one only: the others are answered). Too many files at
    /// once are refused whole.
    func testALookupAnswersEachFileAsItsOwnStat() async throws {
        try await joinThree()
        _ = try await put("/docs/a", on: ["dk1", "dk2", "dk3"])
        _ = try await put("/team/b", on: ["dk1", "dk2", "dk3"])
        let keys = try AccessKeyStore(directory: folder)
        let docs = try keys.create(access: .readOnly, prefix: try RemotePath("/docs"))
        let reader = try TYDFSClient(masterURL: "http://127.0.0.1:9")
        let app = Application(router: MasterServer.router(
            state: state, reader: reader, access: AccessMiddleware(secret: secret, keys: keys, anonymous: nil)))
        do {
            try await app.test(.router) { unsigned in
                let client = SigningTestClient(client: unsigned, signer: RequestSigner(accessKeyID: docs.accessKeyID, secret: docs.secretAccessKey))
                let items = try [
                    LookupRequest.Item(path: RemotePath("/docs/a"), inspect: false), LookupRequest.Item(path: RemotePath("/docs/a"), inspect: true),
                    LookupRequest.Item(path: RemotePath("/docs/none"), inspect: false), LookupRequest.Item(path: RemotePath("/team/b"), inspect: false),
                ]
                func body(_ request: LookupRequest) throws -> ByteBuffer { ByteBuffer(bytes: Array(try JSONEncoder().encode(request))) }
                let answers = try await client.execute(uri: Route.lookup, method: .post, body: try body(LookupRequest(items: items))) { response in
                    XCTAssertEqual(response.status, .ok)
                    return try JSONDecoder().decode(LookupResponse.self, from: Data(response.body.readableBytesView)).answers
                }
                XCTAssertEqual(answers.count, 4)
                XCTAssertEqual(answers[0].file?.path.value, "/docs/a")
                XCTAssertNotNil(answers[0].file?.chunks.first?.token, "a caller about to read gets read tokens")
                XCTAssertEqual(answers[1].file?.path.value, "/docs/a")
                XCTAssertNil(answers[1].file?.chunks.first?.token, "a caller that only inspects gets none")
                XCTAssertEqual(answers[2].error?.code, TYDFSError.Code.notFound.rawValue)
                XCTAssertThrowsError(try answers[2].get()) { XCTAssertEqual(($0 as? TYDFSError)?.code, .notFound) }
                XCTAssertEqual(answers[3].error?.code, TYDFSError.Code.forbidden.rawValue)
                XCTAssertNil(answers[3].file, "nothing of a file outside the key's prefix")
                // Asked for in the compact form, the same answers come in it; other callers get JSON.
                let compact = try await client.execute(
                    uri: Route.lookup, method: .post, headers: [.accept: CompactCodec.contentType], body: try body(LookupRequest(items: items))
                ) { response in
                    XCTAssertEqual(response.status, .ok)
                    XCTAssertEqual(response.headers[.contentType], CompactCodec.contentType)
                    return try response.body.withUnsafeReadableBytes { try CompactCodec.decode(LookupResponse.self, from: $0) }.answers
                }
                XCTAssertEqual(compact.map(\.file?.path.value), answers.map(\.file?.path.value))
                XCTAssertEqual(compact.map(\.file?.sizeBytes), answers.map(\.file?.sizeBytes))
                XCTAssertEqual(compact.map { $0.file?.chunks.map(\.id) }, answers.map { $0.file?.chunks.map(\.id) })
                // (Each answer lists the replicas in its own order, the least busy first.)
                XCTAssertEqual(
                    compact.map { $0.file?.chunks.map { $0.replicas.map(\.id).sorted() } }, answers.map { $0.file?.chunks.map { $0.replicas.map(\.id).sorted() } })
                XCTAssertEqual(compact.map { $0.file?.chunks.map { $0.token != nil } }, [[true], [false], nil, nil])
                XCTAssertEqual(compact.map(\.error?.code), answers.map(\.error?.code))
                XCTAssertEqual(compact.map(\.error?.message), answers.map(\.error?.message))
                try await client.execute(uri: Route.lookup, method: .post, headers: [.accept: "application/json"], body: try body(LookupRequest(items: items))) {
                    XCTAssertEqual($0.headers[.contentType], "application/json")
                }
                // A body in the compact form is read as the JSON one; a malformed one is a 400.
                let compactBody = try await client.execute(
                    uri: Route.lookup, method: .post, headers: [.contentType: CompactCodec.contentType],
                    body: ByteBuffer(bytes: CompactCodec.encode(LookupRequest(items: items)))
                ) { response in
                    XCTAssertEqual(response.status, .ok)
                    return try JSONDecoder().decode(LookupResponse.self, from: Data(response.body.readableBytesView)).answers
                }
                XCTAssertEqual(compactBody.map(\.file?.path.value), answers.map(\.file?.path.value))
                XCTAssertEqual(compactBody.map(\.error?.code), answers.map(\.error?.code))
                try await client.execute(
                    uri: Route.lookup, method: .post, headers: [.contentType: CompactCodec.contentType], body: ByteBuffer(bytes: [1, 0, 0, 0, 9])
                ) { XCTAssertEqual($0.status, .badRequest) }
                let tooMany = LookupRequest(items: Array(repeating: items[0], count: Limits.maxLookupsPerRequest + 1))
                try await client.execute(uri: Route.lookup, method: .post, body: try body(tooMany)) { XCTAssertEqual($0.status, .badRequest) }
            }
        } catch {
            try await reader.shutdown()
            throw error
        }
        try await reader.shutdown()
        // Past the chunk budget, files are left for a stat of their own; the first is always answered.
        let big = try [RemotePath("/docs/a"), RemotePath("/team/b"), RemotePath("/docs/a")].map { LookupRequest.Item(path: $0, inspect: true) }
        let budgeted = await state.lookup(big, refused: [nil, nil, nil], chunkBudget: 1)
        XCTAssertEqual(try budgeted[0].get().path.value, "/docs/a")
        XCTAssertThrowsError(try budgeted[1].get()) { XCTAssertEqual(($0 as? TYDFSError)?.code, .askAlone) }
        XCTAssertThrowsError(try budgeted[2].get()) { XCTAssertEqual(($0 as? TYDFSError)?.code, .askAlone) }
        let alone = await state.lookup(Array(big.prefix(1)), refused: [nil], chunkBudget: 0)
        XCTAssertEqual(try alone[0].get().path.value, "/docs/a", "a file alone is answered whatever its size")
    }

    func testTheCommitsOfABatchShareOneTransactionAndEachSeesTheOnesBefore() async throws {
        try await joinThree()
        // Two puts of one path (the second replaces the first, as one after the other would),
        // a put elsewhere, and one that fails on its own.
        let first = try await openOverwriting("/same"), second = try await openOverwriting("/same"), other = try await openOverwriting("/other")
        let before = counting.batches
        let answers = await state.commit([
            try commitOfFirstChunk(first), try commitOfFirstChunk(second),
            UploadCommit(uploadID: "no-such-upload", commit: try commitOfFirstChunk(other).commit), try commitOfFirstChunk(other),
        ])
        XCTAssertEqual(counting.batches - before, 1, "one transaction for the whole batch")
        XCTAssertEqual(try answers[0].get().path.value, "/same")
        XCTAssertEqual(try answers[1].get().path.value, "/same")
        XCTAssertThrowsError(try answers[2].get()) { XCTAssertEqual(($0 as? TYDFSError)?.code, .uploadUnknown) }
        XCTAssertEqual(try answers[3].get().path.value, "/other")
        let secondChunk = try XCTUnwrap(second.firstChunk?.chunkID), firstChunk = try XCTUnwrap(first.firstChunk?.chunkID)
        let stored = try await store.loadNamespace()
        XCTAssertEqual(stored.file(at: try RemotePath("/same"))?.chunks.map(\.id), [secondChunk], "the later put of the path stands")
        XCTAssertNil(stored.chunks[firstChunk], "the replaced file's chunk is gone from the store")
        XCTAssertNotNil(stored.file(at: try RemotePath("/other")))
    }

    /// Batched opens and commits answer each put as its own call would: a session with its
    /// first chunk, or the error (refused outside the key's prefix, an invalid commit id, an unknown
    /// upload, a bad commit), without stopping the others; committed files are in the namespace
    /// and the store when the answer comes. Too many puts at once are refused whole.
    func testBatchedOpensAndCommitsAnswerEachPutAsItsOwnCall() async throws {
        try await joinThree()
        let keys = try AccessKeyStore(directory: folder)
        let team = try keys.create(access: .readWrite, prefix: try RemotePath("/team"))
        let reader = try TYDFSClient(masterURL: "http://127.0.0.1:9")
        let app = Application(router: MasterServer.router(
            state: state, reader: reader, access: AccessMiddleware(secret: secret, keys: keys, anonymous: nil)))
        let (state, store) = (self.state!, self.store!)
        do {
            try await app.test(.router) { unsigned in
                let client = SigningTestClient(client: unsigned, signer: RequestSigner(accessKeyID: team.accessKeyID, secret: team.secretAccessKey))
                func body(_ request: some Encodable) throws -> ByteBuffer { ByteBuffer(bytes: Array(try JSONEncoder().encode(request))) }
                let opens = try [
                    CreateUploadRequest(path: RemotePath("/team/a"), overwrite: false, firstChunkBytes: 10, commitID: "a"),
                    CreateUploadRequest(path: RemotePath("/team/b"), overwrite: false, firstChunkBytes: 10),
                    CreateUploadRequest(path: RemotePath("/docs/c"), overwrite: false, firstChunkBytes: 10),
                    CreateUploadRequest(path: RemotePath("/team/e"), overwrite: false, firstChunkBytes: 10, commitID: String(repeating: "x", count: 65)),
                    CreateUploadRequest(path: RemotePath("/team/d"), overwrite: false, firstChunkBytes: 10),
                ]
                let sessions = try await client.execute(uri: Route.openUploads, method: .post, body: try body(OpenUploadsRequest(items: opens))) { response in
                    XCTAssertEqual(response.status, .ok)
                    return try JSONDecoder().decode(OpenUploadsResponse.self, from: Data(response.body.readableBytesView)).answers
                }
                XCTAssertEqual(sessions.count, 5)
                let a = try sessions[0].get(), b = try sessions[1].get(), d = try sessions[4].get()
                XCTAssertEqual(Set([a.uploadID, b.uploadID, d.uploadID]).count, 3, "each put has its own upload")
                XCTAssertEqual(a.firstChunk?.targets.count, 3, "with its first chunk allocated")
                XCTAssertEqual(sessions[2].error?.code, TYDFSError.Code.forbidden.rawValue, "outside the key's prefix")
                XCTAssertNil(sessions[2].value)
                XCTAssertEqual(sessions[3].error?.code, TYDFSError.Code.invalidArgument.rawValue, "a commit id of 65 characters")
                let openChunks = await state.openUploadChunks()
                XCTAssertEqual(Set(openChunks), Set([a, b, d].compactMap(\.firstChunk?.chunkID)), "nothing allocated for the refused ones")

                func committed(_ session: UploadSession) throws -> CommitUploadRequest {
                    let chunk = try XCTUnwrap(session.firstChunk)
                    return CommitUploadRequest(sizeBytes: 10, crc32c: 1, chunks: [
                        CommittedChunk(index: 0, id: chunk.chunkID, sizeBytes: 10, crc32c: 1, replicas: chunk.targets.map(\.id)),
                    ])
                }
                let commits = try [
                    UploadCommit(uploadID: a.uploadID, commit: committed(a)),
                    UploadCommit(uploadID: b.uploadID, commit: CommitUploadRequest(sizeBytes: -1, crc32c: 0, chunks: [])),
                    UploadCommit(uploadID: "no-such-upload", commit: committed(d)),
                    UploadCommit(uploadID: d.uploadID, commit: committed(d)),
                ]
                let files = try await client.execute(uri: Route.commitUploads, method: .post, body: try body(CommitUploadsRequest(items: commits))) { response in
                    XCTAssertEqual(response.status, .ok)
                    return try JSONDecoder().decode(CommitUploadsResponse.self, from: Data(response.body.readableBytesView)).answers
                }
                XCTAssertEqual(files.count, 4)
                XCTAssertEqual(try files[0].get().path.value, "/team/a")
                XCTAssertEqual(files[1].error?.code, TYDFSError.Code.invalidArgument.rawValue, "a bad commit fails alone")
                XCTAssertEqual(files[2].error?.code, TYDFSError.Code.uploadUnknown.rawValue)
                XCTAssertEqual(try files[3].get().path.value, "/team/d")
                let listed = try await state.list(try RemotePath("/team")).entries.map(\.path)
                XCTAssertEqual(listed, ["/team/a", "/team/d"])
                // Answered only once durable: the store has them.
                let stored = try await store.loadNamespace()
                XCTAssertNotNil(stored.file(at: try RemotePath("/team/a")))
                XCTAssertNotNil(stored.file(at: try RemotePath("/team/d")))
                XCTAssertNil(stored.file(at: try RemotePath("/team/b")))
                // The retry of a committed put learns it is done, inside a batch as alone.
                let retried = try await client.execute(uri: Route.openUploads, method: .post, body: try body(OpenUploadsRequest(items: [opens[0]]))) { response in
                    try JSONDecoder().decode(OpenUploadsResponse.self, from: Data(response.body.readableBytesView)).answers
                }
                XCTAssertEqual(try retried[0].get().committed?.path.value, "/team/a")

                let tooMany = OpenUploadsRequest(items: Array(repeating: opens[1], count: Limits.maxUploadsPerBatch + 1))
                try await client.execute(uri: Route.openUploads, method: .post, body: try body(tooMany)) { XCTAssertEqual($0.status, .badRequest) }
                let tooManyCommits = CommitUploadsRequest(items: Array(repeating: commits[1], count: Limits.maxUploadsPerBatch + 1))
                try await client.execute(uri: Route.commitUploads, method: .post, body: try body(tooManyCommits)) { XCTAssertEqual($0.status, .badRequest) }
            }
        } catch {
            try await reader.shutdown()
            throw error
        }
        try await reader.shutdown()
    }

    /// A client whose master has no batch routes (one from before them) opens each put with
    /// `POST /v1/uploads`, as clients did then: puts made together all get their answers.
    func testAClientOpensPutsOneByOneWithAMasterWithoutBatches() async throws {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: ErrorMiddleware())
        let opened = OpenedPaths()
        router.post(RouterPath(Route.uploads)) { request, context in
            let open = try await JSON.decode(CreateUploadRequest.self, from: request)
            await opened.add(open.path.value)
            guard open.path.value != "/refused" else { throw TYDFSError(.forbidden, "not this one") }
            // As a master answers the retry of a put it committed already: nothing left to send.
            return try JSON.response(UploadSession(uploadID: "", chunkSizeBytes: 4096, replication: 3, committed: FileInfo(
                path: open.path, sizeBytes: 3, mtimeMillis: 1, checksum: "crc32c:00000000", chunkSizeBytes: 4096, replication: 3,
                underReplicated: false, chunks: [])))
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { live in
            let client = try TYDFSClient(masterURL: "http://127.0.0.1:\(try XCTUnwrap(live.port))")
            let results = await withTaskGroup(of: (String, Result<String, TYDFSError>).self) { group in
                for name in ["/a", "/b", "/c", "/refused"] {
                    group.addTask {
                        do {
                            let put = try await client.put(bytes: ByteBuffer(string: "abc"), to: try RemotePath(name), overwrite: false)
                            return (name, .success(put.file.path.value))
                        } catch {
                            return (name, .failure(TYDFSError.from(error)))
                        }
                    }
                }
                return await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
            }
            for name in ["/a", "/b", "/c"] { XCTAssertEqual(try results[name]?.get(), name) }
            if case .failure(let refused) = results["/refused"] {
                XCTAssertEqual(refused.code, .forbidden, "its own error, not the others'")
            } else {
                XCTFail("a refused put succeeded")
            }
            let asked = await opened.paths
            XCTAssertEqual(Set(asked), ["/a", "/b", "/c", "/refused"])
            try await client.shutdown()
        }
    }

    /// A client whose master has no lookup route (one from before it) stats file by file with
    /// `GET /v1/files`, as clients did then: the answers and errors are a stat's.
    func testAClientStatsFileByFileWithAMasterWithoutLookups() async throws {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: ErrorMiddleware())
        router.get(RouterPath(Route.files)) { request, _ in
            let path = try RemotePath(try request.queryItem("path"))
            guard path.value == "/old" else { throw TYDFSError(.notFound, "\(path): no such file") }
            return try JSON.response(FileInfo(
                path: path, sizeBytes: 7, mtimeMillis: 1, checksum: "crc32c:00000000", chunkSizeBytes: 4096, replication: 3,
                underReplicated: false, chunks: []))
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { live in
            let client = try TYDFSClient(masterURL: "http://127.0.0.1:\(try XCTUnwrap(live.port))")
            do {
                async let old = client.stat(try RemotePath("/old"))
                async let inspected = client.stat(try RemotePath("/old"), inspecting: true)
                let (first, second) = try await (old, inspected)
                XCTAssertEqual([first.sizeBytes, second.sizeBytes], [7, 7])
                do {
                    _ = try await client.stat(try RemotePath("/none"))
                    XCTFail("a missing file was found")
                } catch let error as TYDFSError {
                    XCTAssertEqual(error.code, .notFound)
                    XCTAssertEqual(error.message, "/none: no such file")
                }
            } catch {
                try await client.shutdown()
                throw error
            }
            try await client.shutdown()
        }
    }

    /// A client reading from a master and a datakeeper from before compact answers and batched
    /// reads: the master refuses the lookup's compact body (400), so the client sends it again in
    /// JSON, as the next ones; it ignores `Accept` and answers in JSON, which the client reads;
    /// the datakeeper answers the batch route 404, so the chunk is read alone, and later chunks
    /// from it go alone at once.
    func testAClientReadsFromAMasterAndADataKeeperFromBeforeCompactAnswersAndBatchedReads() async throws {
        let data = (0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let frame = ChunkFrame.frame(data)
        let chunk = ChunkID(high: 1, low: 2)
        let asked = NIOLockedValueBox<[String]>([])
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: RequestLog(asked: asked))
        router.add(middleware: ErrorMiddleware())
        let port = NIOLockedValueBox(0)
        router.post(RouterPath(Route.lookup)) { request, _ in
            let items = try await JSON.decode(LookupRequest.self, from: request).items
            let replica = DataKeeperAddress(id: try DataKeeperID("old"), address: "127.0.0.1:\(port.withLockedValue { $0 })", alive: true)
            let file = FileInfo(
                path: items[0].path, sizeBytes: Int64(data.count), mtimeMillis: 1, checksum: "crc32c:" + hex32(CRC32C.checksum(data)),
                chunkSizeBytes: 1 << 20, replication: 1, underReplicated: false,
                chunks: [ChunkInfo(index: 0, id: chunk, sizeBytes: Int64(data.count), crc32c: hex32(CRC32C.checksum(data)), replicas: [replica], token: "any")])
            return try JSON.response(LookupResponse(answers: items.map { _ in LookupResponse.Answer(.success(file)) }))
        }
        router.get("/v1/chunks/:chunk") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/octet-stream"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: frame)))
        }
        // Any other route, as a server from before it answers: 404.
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { live in
            port.withLockedValue { $0 = live.port! }
            let client = try TYDFSClient(masterURL: "http://127.0.0.1:\(try XCTUnwrap(live.port))")
            do {
                for _ in 0..<2 {
                    let read = try await client.read(try RemotePath("/old"))
                    XCTAssertEqual(Array(read.readableBytesView), data)
                }
            } catch {
                try await client.shutdown()
                throw error
            }
            try await client.shutdown()
        }
        // The first lookup's compact body is refused (read as malformed JSON) and sent again in
        // JSON; the second read's lookup goes in JSON at once.
        XCTAssertEqual(asked.withLockedValue { $0 }, [
            "POST \(Route.lookup) 400", "POST \(Route.lookup)", "GET \(Route.chunkBatch) 404", "GET \(Route.chunk(chunk.value)) 200",
            "POST \(Route.lookup)", "GET \(Route.chunk(chunk.value)) 200",
        ])
    }

    /// A master that reads compact bodies and refuses one (400, "malformed compact …") is
    /// believed: the client does not send the request again in JSON, and reports the refusal.
    func testACompactBodyRefusedByAMasterThatReadsTheFormIsNotSentAgain() async throws {
        let posts = NIOLockedValueBox(0)
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: ErrorMiddleware())
        router.post(RouterPath(Route.lookup)) { request, _ -> Response in
            posts.withLockedValue { $0 += 1 }
            XCTAssertEqual(request.headers[.contentType], CompactCodec.contentType)
            throw TYDFSError(.protocolViolation, "malformed compact LookupRequest request: a test refuses it")
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { live in
            let client = try TYDFSClient(masterURL: "http://127.0.0.1:\(try XCTUnwrap(live.port))")
            do {
                _ = try await client.stat(try RemotePath("/any"))
                XCTFail("a refused lookup was answered")
            } catch let error as TYDFSError {
                XCTAssertEqual(error.code, .protocolViolation)
                XCTAssertTrue(error.message.hasPrefix("malformed compact"), error.message)
            }
            try await client.shutdown()
        }
        XCTAssertEqual(posts.withLockedValue { $0 }, 1)
    }

    /// Batched reads against scripted datakeepers: datakeeper A answers the file's chunk 404 in
    /// every batch, B serves it (its first batch slowly, so reads queue behind it). Three reads
    /// of the same file at once all read it: each asks A in a batch, then A alone (the batch
    /// did not serve it), then B; and no batch lists the chunk twice, as a datakeeper refuses
    /// that (400) — the reads waiting together behind B's slow batch share one entry.
    func testABatchedReadNotServedFallsBackReplicaByReplicaAndAsksForEachChunkOnce() async throws {
        let data = (0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        let frame = ChunkFrame.frame(data)
        let chunk = ChunkID(high: 3, low: 4)
        let asked = NIOLockedValueBox<[String]>([])
        let ports = NIOLockedValueBox<[String: Int]>([:])
        func datakeeper(_ name: String, serves: Bool) -> Router<BasicRequestContext> {
            let router = Router(context: BasicRequestContext.self)
            router.add(middleware: ErrorMiddleware())
            let batches = NIOLockedValueBox(0)
            router.get(RouterPath(Route.chunkBatch)) { request, _ in
                let listed = try XCTUnwrap(BatchedChunk.decode(request.headers[.tydfsChunks] ?? ""))
                asked.withLockedValue { $0.append("\(name) batch of \(listed.count)") }
                guard Set(listed.map(\.chunk)).count == listed.count else { throw TYDFSError(.invalidArgument, "a chunk listed twice") }
                // Long enough for the other reads to get here under load, well within the stall allowance.
                if serves, batches.withLockedValue({ $0 += 1; return $0 }) == 1 { try await Task.sleep(for: .milliseconds(1500)) }
                var headers = HTTPFields()
                headers[.tydfsChunkStatuses] = ChunkStatusList.encode(listed.map { _ in serves ? 200 : 404 })
                let body = serves ? listed.flatMap { _ in frame } : []
                return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
            }
            router.get("/v1/chunks/:chunk") { _, _ in
                asked.withLockedValue { $0.append("\(name) alone") }
                guard serves else { throw TYDFSError(.notFound, "chunk \(chunk) is not on this datakeeper") }
                return Response(status: .ok, body: ResponseBody(byteBuffer: ByteBuffer(bytes: frame)))
            }
            return router
        }
        let master = Router(context: BasicRequestContext.self)
        master.add(middleware: ErrorMiddleware())
        master.post(RouterPath(Route.lookup)) { request, _ in
            let items = try await JSON.decode(LookupRequest.self, from: request).items
            let replicas = try ports.withLockedValue { ports in
                try ["A", "B"].map { DataKeeperAddress(id: try DataKeeperID($0), address: "127.0.0.1:\(ports[$0]!)", alive: true) }
            }
            let file = FileInfo(
                path: items[0].path, sizeBytes: Int64(data.count), mtimeMillis: 1, checksum: "crc32c:" + hex32(CRC32C.checksum(data)),
                chunkSizeBytes: 1 << 20, replication: 2, underReplicated: false,
                chunks: [ChunkInfo(index: 0, id: chunk, sizeBytes: Int64(data.count), crc32c: hex32(CRC32C.checksum(data)), replicas: replicas, token: "any")])
            return try JSON.response(LookupResponse(answers: items.map { _ in LookupResponse.Answer(.success(file)) }))
        }
        let live = ApplicationConfiguration(address: .hostname("127.0.0.1", port: 0))
        // Each is started inside the one before.
        let datakeeperB = Application(router: datakeeper("B", serves: true), configuration: live)
        let masterApp = Application(router: master, configuration: live)
        try await Application(router: datakeeper("A", serves: false), configuration: live).test(.live) { a in
            try await datakeeperB.test(.live) { b in
                try await masterApp.test(.live) { m in
                    ports.withLockedValue { $0 = ["A": a.port!, "B": b.port!] }
                    let client = try TYDFSClient(masterURL: "http://127.0.0.1:\(try XCTUnwrap(m.port))", concurrency: 3)
                    do {
                        let path = try RemotePath("/shared")
                        async let first = client.read(path)
                        async let second = client.read(path)
                        async let third = client.read(path)
                        for read in try await [first, second, third] { XCTAssertEqual(Array(read.readableBytesView), data) }
                    } catch {
                        try await client.shutdown()
                        throw error
                    }
                    try await client.shutdown()
                }
            }
        }
        let log = asked.withLockedValue { $0 }
        XCTAssertTrue(log.allSatisfy { !$0.hasSuffix("batch of 2") && !$0.hasSuffix("batch of 3") }, "\(log)")
        XCTAssertGreaterThanOrEqual(log.filter { $0 == "A alone" }.count, 1, "a chunk A's batch did not serve was asked alone: \(log)")
        XCTAssertFalse(log.contains("B alone"), "B served every read in a batch: \(log)")
        XCTAssertLessThan(log.filter { $0.hasPrefix("B batch") }.count, 3, "reads waiting behind B's slow batch went together: \(log)")
    }

    /// Notes every request an old server below gets, with the status of its data-path answers.
    private struct RequestLog: RouterMiddleware {
        let asked: NIOLockedValueBox<[String]>

        func handle(_ request: Request, context: BasicRequestContext, next: (Request, BasicRequestContext) async throws -> Response) async throws -> Response {
            let response: Response
            do {
                response = try await next(request, context)
            } catch let error as any HTTPResponseError {
                asked.withLockedValue { $0.append("\(request.method) \(request.uri.path) \(error.status.code)") }
                throw error
            }
            let status = request.method == .get ? " \(response.status.code)" : ""
            asked.withLockedValue { $0.append("\(request.method) \(request.uri.path)\(status)") }
            return response
        }
    }

    /// `--anonymous read-only`: a request without credentials may read, never write; a request
    /// with bad credentials is still refused (anonymous access is no fallback for a wrong key).
    func testAnonymousReadOnlyAccessReadsButNeverWrites() async throws {
        try await joinThree()
        _ = try await put("/docs/a", on: ["dk1", "dk2", "dk3"])
        let reader = try TYDFSClient(masterURL: "http://127.0.0.1:9")
        let app = Application(router: MasterServer.router(
            state: state, reader: reader, access: AccessMiddleware(secret: secret, keys: try AccessKeyStore(directory: folder), anonymous: .readOnly)))
        do {
            try await app.test(.router) { client in
                try await client.execute(uri: Route.list + "?path=%2Fdocs", method: .get) { XCTAssertEqual($0.status, .ok) }
                try await client.execute(uri: Route.files + "?path=%2Fdocs%2Fa", method: .get) { XCTAssertEqual($0.status, .ok) }
                try await client.execute(uri: Route.files + "?path=%2Fdocs%2Fa", method: .delete) { XCTAssertEqual($0.status, .forbidden) }
                try await client.execute(uri: Route.uploads, method: .post, body: ByteBuffer(string: #"{"path": "/b", "overwrite": false}"#)) {
                    XCTAssertEqual($0.status, .forbidden)
                }
                try await client.execute(uri: Route.keys, method: .get) { XCTAssertEqual($0.status, .forbidden) }
                try await client.execute(uri: Route.heartbeat, method: .post, body: ByteBuffer(string: "{}")) { XCTAssertEqual($0.status, .forbidden) }
                let wrong = SigningTestClient(client: client, signer: RequestSigner(accessKeyID: "TKUNKNOWNUNKNOWN0000", secret: "x"))
                try await wrong.execute(uri: Route.list + "?path=%2Fdocs", method: .get) { XCTAssertEqual($0.status, .unauthorized) }
            }
        } catch {
            try await reader.shutdown()
            throw error
        }
        try await reader.shutdown()
        let left = try await state.list(try RemotePath("/docs")).entries.map(\.path)
        XCTAssertEqual(left, ["/docs/a"])
    }

    /// A put retried with the same commit id after its first try was committed (a failover
    /// lost the answer) is told it is done; nothing is written twice, and other ids put as usual.
    func testAPutRetriedWithItsCommitIDIsNotCommittedTwice() async throws {
        try await joinThree()
        let path = try RemotePath("/once")
        let first = try await state.createUpload(CreateUploadRequest(path: path, overwrite: true, firstChunkBytes: 10, commitID: "put-1"))
        XCTAssertNil(first.committed)
        let chunk = try XCTUnwrap(first.firstChunk?.chunkID)
        let info = try await state.commit(uploadID: first.uploadID, request: CommitUploadRequest(
            sizeBytes: 10, crc32c: 1, chunks: [CommittedChunk(index: 0, id: chunk, sizeBytes: 10, crc32c: 1, replicas: ["dk1", "dk2", "dk3"].map(dk))]))
        let retried = try await state.createUpload(CreateUploadRequest(path: path, overwrite: true, firstChunkBytes: 10, commitID: "put-1"))
        XCTAssertEqual(retried.committed?.chunks.map(\.id), info.chunks.map(\.id), "the retry learns its put is done")
        XCTAssertNil(retried.firstChunk, "and allocates nothing")
        let openUploads = await state.openUploadChunks()
        XCTAssertEqual(openUploads, [])
        let other = try await state.createUpload(CreateUploadRequest(path: path, overwrite: true, firstChunkBytes: 10, commitID: "put-2"))
        XCTAssertNil(other.committed, "another put of the same path is a new put")
        XCTAssertNotNil(other.firstChunk)
        do {
            _ = try await state.createUpload(CreateUploadRequest(path: path, overwrite: true, commitID: String(repeating: "x", count: 65)))
            XCTFail("a commit id over 64 characters is refused")
        } catch let error as TYDFSError {
            XCTAssertEqual(error.code, .invalidArgument)
        }
    }

    /// A put resumed on a master that took over (its first upload died with the old leader):
    /// the commit of its new upload adopts the chunks the first one stored, on the write tokens
    /// they were allocated with, whatever their age, and nothing a token does not prove.
    func testAResumedPutAdoptsItsChunksOnTheirWriteTokensAndNothingElse() async throws {
        try await joinThree()
        let path = try RemotePath("/resumed")
        let lost = try await state.createUpload(CreateUploadRequest(path: path, overwrite: false, firstChunkBytes: 4096, commitID: "put-r"))
        let first = try XCTUnwrap(lost.firstChunk)
        await state.abortUpload(uploadID: lost.uploadID)  // as if the master that opened it died
        let resumed = try await state.createUpload(CreateUploadRequest(path: path, overwrite: false, commitID: "put-r"))
        XCTAssertNil(resumed.committed)
        let second = try await state.allocateChunk(uploadID: resumed.uploadID, request: AllocateChunkRequest(exclude: [], dataBytes: 10))
        let holders = first.targets.map(\.id)
        func commit(_ adopted: CommittedChunk) async throws -> FileInfo {
            try await state.commit(uploadID: resumed.uploadID, request: CommitUploadRequest(sizeBytes: 4106, crc32c: 1, chunks: [
                adopted, CommittedChunk(index: 1, id: second.chunkID, sizeBytes: 10, crc32c: 1, replicas: second.targets.map(\.id)),
            ]))
        }
        func refused(_ adopted: CommittedChunk, saying expected: String) async {
            do {
                _ = try await commit(adopted)
                XCTFail("refused: \(expected)")
            } catch let error as TYDFSError {
                XCTAssertEqual(error.code, .invalidArgument)
                XCTAssertTrue(error.message.contains(expected), error.message)
            } catch {
                XCTFail("\(error)")
            }
        }
        let genuine = CommittedChunk(index: 0, id: first.chunkID, sizeBytes: 4096, crc32c: 1, replicas: holders, token: first.token)
        var bare = genuine
        bare.token = nil
        await refused(bare, saying: "carries no write token")
        var forged = genuine
        forged.token = ChunkToken(chunk: first.chunkID, operation: .write, expiresAt: UnixClock.now + 60,
                                  pipeline: first.targets.map { PipelineHop(id: $0.id.value, address: $0.address) }).signed(with: .generate())
        await refused(forged, saying: "signature is wrong")
        var otherChunk = genuine
        otherChunk.token = second.token
        await refused(otherChunk, saying: "is for chunk")
        var reading = genuine
        reading.token = ChunkToken(chunk: first.chunkID, operation: .read, expiresAt: UnixClock.now + 60).signed(with: secret)
        await refused(reading, saying: "allows read")
        var stranger = genuine
        stranger.replicas = [holders[0], dk("dk9")]
        await refused(stranger, saying: "not in the pipeline")
        // A write token for a chunk some file holds proves nothing about this put.
        let held = try await put("/other", on: ["dk1", "dk2", "dk3"])
        let heldToken = ChunkToken(chunk: held, operation: .write, expiresAt: UnixClock.now + 60,
                                   pipeline: holders.map { PipelineHop(id: $0.value, address: "x") }).signed(with: secret)
        await refused(CommittedChunk(index: 0, id: held, sizeBytes: 4096, crc32c: 1, replicas: holders, token: heldToken), saying: "belongs to a file")

        // Expired long ago and still proof: the write happened while it was valid.
        var old = genuine
        old.token = ChunkToken(chunk: first.chunkID, operation: .write, expiresAt: UnixClock.now - 86_400,
                               pipeline: first.targets.map { PipelineHop(id: $0.id.value, address: $0.address) }).signed(with: secret)
        let info = try await commit(old)
        XCTAssertEqual(info.chunks.map(\.id), [first.chunkID, second.chunkID])
        let adoptedReplicas = await replicas(of: first.chunkID)
        XCTAssertEqual(adoptedReplicas, holders.map(\.value).sorted())
        let again = try await state.createUpload(CreateUploadRequest(path: path, overwrite: false, commitID: "put-r"))
        XCTAssertEqual(again.committed?.chunks.map(\.id), [first.chunkID, second.chunkID], "and the put is done once")
    }

    /// A put reopened after a failover adopts its stored chunks when it reopens, so they are its
    /// own (never orphans) from then on; and a chunk can be in one file only, however many
    /// uploads of the put try to commit it.
    func testAReopenedPutOwnsItsChunksAtOnceAndNoChunkGoesIntoTwoFiles() async throws {
        try await joinThree()
        let path = try RemotePath("/reopened")
        let lost = try await state.createUpload(CreateUploadRequest(path: path, overwrite: true, firstChunkBytes: 10, commitID: "put-o"))
        let first = try XCTUnwrap(lost.firstChunk)
        let stored = CommittedChunk(index: 0, id: first.chunkID, sizeBytes: 10, crc32c: 1, replicas: first.targets.map(\.id), token: first.token)
        // The client lost its answer from this master, and opened the put again (here, on the same one).
        let reopened = try await state.createUpload(CreateUploadRequest(path: path, overwrite: true, commitID: "put-o", adopt: [stored]))
        await state.abortUpload(uploadID: lost.uploadID)
        let open = await state.openUploadChunks()
        XCTAssertEqual(open, [first.chunkID], "adopted at the reopen: protected from orphan collection")
        // A second reopen (say, a retry whose first answer was lost) holds it as its own too.
        let spare = try await state.createUpload(CreateUploadRequest(path: path, overwrite: true, commitID: "put-o", adopt: [stored]))
        var bare = stored
        bare.token = nil
        _ = try await state.commit(uploadID: reopened.uploadID, request: CommitUploadRequest(sizeBytes: 10, crc32c: 1, chunks: [bare]))
        do {
            _ = try await state.commit(uploadID: spare.uploadID, request: CommitUploadRequest(sizeBytes: 10, crc32c: 1, chunks: [bare]))
            XCTFail("a chunk already in a file is refused, even to an upload that holds it")
        } catch let error as TYDFSError {
            XCTAssertEqual(error.code, .invalidArgument)
            XCTAssertTrue(error.message.contains("belongs to a file"), error.message)
        }
        let info = try await state.stat(path)
        XCTAssertEqual(info.chunks.map(\.id), [first.chunkID], "the file is untouched")
        do {
            _ = try await state.createUpload(CreateUploadRequest(path: try RemotePath("/third"), overwrite: false, adopt: [stored]))
            XCTFail("adopting a chunk a file holds is refused")
        } catch let error as TYDFSError {
            XCTAssertTrue(error.message.contains("belongs to a file"), error.message)
        }
    }

    /// An upload forgotten for inactivity is not reopened: its chunks may be deleted as orphans
    /// by now, so the client is told to put again (`not_found`, which it does not resume on).
    func testAnUploadForgottenForInactivityCannotBeResumed() async throws {
        try await stop()
        try await start(uploadIdleTimeoutSeconds: 0.3)
        try await joinThree()
        // Renewed (a client waiting for its source), an upload stays past the timeout.
        let renewed = try await state.createUpload(CreateUploadRequest(path: try RemotePath("/renewed"), overwrite: false))
        for _ in 0..<3 {
            try await Task.sleep(for: .milliseconds(150))
            try await state.renewUpload(uploadID: renewed.uploadID)
        }
        _ = await state.openUploadChunks()  // the master looks for abandoned uploads
        _ = try await state.allocateChunk(uploadID: renewed.uploadID, request: AllocateChunkRequest(exclude: [], dataBytes: 10))
        let idle = try await state.createUpload(CreateUploadRequest(path: try RemotePath("/idle"), overwrite: false, firstChunkBytes: 10))
        try await Task.sleep(for: .milliseconds(400))
        _ = await state.openUploadChunks()  // the master looks for abandoned uploads
        do {
            _ = try await state.allocateChunk(uploadID: idle.uploadID, request: AllocateChunkRequest(exclude: [], dataBytes: 10))
            XCTFail("a forgotten upload cannot go on")
        } catch let error as TYDFSError {
            XCTAssertEqual(error.code, .notFound)
            XCTAssertTrue(error.message.contains("forgotten"), error.message)
        }
        do {
            _ = try await state.allocateChunk(uploadID: "0123456789abcdef", request: AllocateChunkRequest(exclude: [], dataBytes: 10))
            XCTFail("an unknown upload cannot go on")
        } catch let error as TYDFSError {
            XCTAssertEqual(error.code, .uploadUnknown, "one this master never had may be reopened")
        }
    }

    /// The operator routes at Hummingbird's router depth: no socket, the real router and state.
    func testOperatorRoutes() async throws {
        Telemetry.bootstrap()
        try await joinThree()
        _ = try await put("/docs/a", on: ["dk1", "dk2", "dk3"])
        let reader = try TYDFSClient(masterURL: "http://127.0.0.1:9")
        let keys = try AccessKeyStore(directory: folder)
        let admin = try keys.create(access: .admin, prefix: nil)
        let signer = RequestSigner(accessKeyID: admin.accessKeyID, secret: admin.secretAccessKey)
        let app = Application(router: MasterServer.router(
            state: state, reader: reader, access: AccessMiddleware(secret: secret, keys: keys, anonymous: nil)))
        do {
            try await app.test(.router) { unsigned in
                let client = SigningTestClient(client: unsigned, signer: signer)
                try await client.execute(uri: "/", method: .get) { response in
                    XCTAssertEqual(response.status, .ok)
                    XCTAssertEqual(response.headers[.contentType], "text/html; charset=utf-8")
                    XCTAssertTrue(String(buffer: response.body).contains("<title>TYDFS dashboard</title>"))
                }
                try await client.execute(uri: Route.cluster, method: .get) { response in
                    let summary = try JSONDecoder().decode(ClusterSummary.self, from: response.body)
                    XCTAssertEqual(summary.files, 1)
                    XCTAssertEqual(summary.chunks, 1)
                    XCTAssertEqual(summary.datakeepers.map(\.state), [.alive, .alive, .alive])
                    XCTAssertEqual(summary.capacityBytes, 3 << 30)
                }
                try await client.execute(uri: Route.events + "?after=1", method: .get) { response in
                    let page = try JSONDecoder().decode(EventsResponse.self, from: response.body)
                    XCTAssertEqual(page.latest, 3)
                    XCTAssertEqual(page.events.map(\.id), [2, 3])
                }
                for bad in ["-1", "x"] {
                    try await client.execute(uri: Route.events + "?after=" + bad, method: .get) { response in
                        XCTAssertEqual(response.status, .badRequest)
                    }
                }
                // Query items are decoded strictly: a bad %-escape or bytes that are not UTF-8 are refused.
                try await client.execute(uri: Route.list + "?path=%2F", method: .get) { XCTAssertEqual($0.status, .ok) }
                for bad in ["%2F%FF", "%2Fa%+f", "%2Fa%-0", "%2Fa%4", "%2Fa%zz"] {
                    try await client.execute(uri: Route.list + "?path=" + bad, method: .get) { response in
                        XCTAssertEqual(response.status, .badRequest, bad)
                    }
                }
                try await client.execute(uri: Route.drain("dk9"), method: .post) { XCTAssertEqual($0.status, .notFound) }
                try await client.execute(uri: Route.drain("dk2"), method: .get) { response in
                    XCTAssertEqual(try JSONDecoder().decode(DrainStatus.self, from: response.body).state, .alive)
                }
                try await client.execute(uri: Route.content + "?path=/nope", method: .get) { XCTAssertEqual($0.status, .notFound) }
                // Only a datakeeper (the cluster secret) may say it leaves, not even an admin key.
                try await client.execute(uri: Route.leave, method: .post, body: ByteBuffer(string: "{}")) { XCTAssertEqual($0.status, .forbidden) }
                try await client.execute(uri: Route.metrics, method: .get) { response in
                    let text = String(buffer: response.body)
                    XCTAssertTrue(text.contains("tydfs_master_files 1"), text)
                    XCTAssertTrue(text.contains("tydfs_master_datakeepers{state=\"alive\"} 3"), text)
                }
            }
        } catch {
            try await reader.shutdown()
            throw error
        }
        try await reader.shutdown()
    }
}

extension MasterState {
    /// Runs `look` on the namespace inside the actor: the namespace is not Sendable, what the
    /// test takes out of it is.
    func inspect<T: Sendable>(_ look: @Sendable (Namespace) -> T) -> T { look(namespace) }
}

/// The paths a fake master was asked to open, in order.
private actor OpenedPaths {
    var paths: [String] = []
    func add(_ path: String) { paths.append(path) }
}

/// Signs every request as the CLI does, at router depth.
struct SigningTestClient {
    let client: any TestClientProtocol
    let signer: RequestSigner?

    @discardableResult
    func execute<Return>(
        uri: String, method: HTTPRequest.Method, headers: HTTPFields = [:], body: ByteBuffer? = nil,
        testCallback: (TestResponse) async throws -> Return
    ) async throws -> Return {
        var headers = headers
        if let signer {
            for (name, value) in signer.headers(method: method.rawValue, target: uri, body: body.map { Array($0.readableBytesView) } ?? [], date: UnixClock.now) {
                headers[HTTPField.Name(name)!] = value
            }
        }
        return try await testCallback(try await client.executeRequest(uri: uri, method: method, headers: headers, body: body))
    }
}
