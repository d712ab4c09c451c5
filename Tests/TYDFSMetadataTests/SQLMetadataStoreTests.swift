import Foundation
import Logging
import TYDFSCore
@testable import TYDFSMetadata
import TYDFSTestSupport
import XCTest

/// Builds files for the metadata tests.
enum Fixture {
    static func file(_ path: String, chunks: Int = 2, replicas: [String] = ["dk1", "dk2", "dk3"], sizeBytes: Int64 = 100) -> StoredFile {
        let stored = (0..<chunks).map { index in
            StoredChunk(index: index, id: ChunkID.random(), sizeBytes: sizeBytes, crc32c: UInt32(index + 7),
                        replicas: replicas.map { try! DataKeeperID($0) })
        }
        return StoredFile(path: try! RemotePath(path), sizeBytes: Int64(chunks) * sizeBytes, mtimeMillis: 1234, crc32c: 0xdeadbeef,
                          chunkSizeBytes: sizeBytes, replication: 3, chunks: stored)
    }

    static func dk(_ name: String) -> DataKeeperID { try! DataKeeperID(name) }
}

/// The metadata store on a real SQLite file and on a real PostgreSQL server (one private server
/// for the class, a fresh database per test): what goes in with `apply` comes back with `load`,
/// the same on both (store parity, issue 17).
final class SQLMetadataStoreTests: XCTestCase {
    private var folder = ""
    /// Opens the store under test (SQLite first, then PostgreSQL, in `onBothStores`).
    private var open: () async throws -> SQLMetadataStore = { throw TYDFSError(.internal, "no store chosen") }
    nonisolated(unsafe) private static var postgres: PostgresServer?

    override func setUp() {
        folder = NSTemporaryDirectory() + "tydfs-meta-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let path = folder + "/metadata.sqlite"
        open = { try await SQLMetadataStore.openSQLite(path: path, logger: Logger(label: "test")) }
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: folder)
    }

    override class func tearDown() {
        postgres?.stop()
        postgres = nil
    }

    /// Runs `body` on a SQLite store, then on a PostgreSQL store in a database of its own.
    private func onBothStores(_ body: () async throws -> Void) async throws {
        try await body()
        if Self.postgres == nil { Self.postgres = try PostgresServer() }
        let url = try Self.postgres!.createDatabase("t" + UUID().uuidString.prefix(8).lowercased())
        open = { try await SQLMetadataStore.openPostgres(try PostgresLink(url: url, logger: Logger(label: "test")), epoch: nil) }
        do {
            try await body()
        } catch {
            XCTFail("on PostgreSQL: \(error)")
            throw error
        }
    }

    private func reopenedNamespace() async throws -> Namespace {
        let store = try await open()
        let namespace = try await store.loadNamespace()
        try await store.close()
        return namespace
    }

    func testCommittedFilesReadBackWholeAfterReopening() async throws {
        try await onBothStores {
            var committed = Fixture.file("/a/b.txt", chunks: 3)
            committed.commitID = "5e1f00d2c0ffee"
            let files = [committed, Fixture.file("/empty", chunks: 0), Fixture.file("/a/c", chunks: 1, replicas: [])]
            let store = try await open()
            try await store.apply(files.map { .putFile($0) })
            try await store.close()
            let namespace = try await reopenedNamespace()
            for file in files { XCTAssertEqual(namespace.file(at: file.path), file) }
            XCTAssertEqual(namespace.fileCount, 3)
            XCTAssertEqual(namespace.chunks.count, 4)
        }
    }

    /// SQLite's rows are read straight from SQLiteNIO at start, as SQLKit's decoder read them:
    /// a number kept in a text column reads as its digits, and a number column that holds
    /// anything but an integer (a real, infinity, a blob) is an I/O error that names it, not a
    /// crash or a wrong namespace.
    func testSQLiteRowsReadAsSQLKitReadThemAndABadOneIsRefused() async throws {
        var file = Fixture.file("/f", chunks: 1)
        let store = try await open()
        try await store.apply([.putFile(file)])
        try await store.close()
        func edit(_ statement: String) throws {
            let python = Process()
            python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            python.arguments = ["python3", "-c", "import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); db.execute(sys.argv[2]); db.commit()",
                                folder + "/metadata.sqlite", statement]
            try python.run()
            python.waitUntilExit()
            XCTAssertEqual(python.terminationStatus, 0, statement)
        }
        try edit("UPDATE files SET commit_id = 42")
        file.commitID = "42"
        let loaded = try await reopenedNamespace()
        XCTAssertEqual(loaded.file(at: file.path), file, "an integer in a text column reads as its digits")
        for bad in ["1.5", "1e999", "'a hundred'", "X'00'"] {
            try edit("UPDATE files SET size_bytes = \(bad)")
            let reopened = try await open()
            var failure: Error?
            do {
                _ = try await reopened.loadNamespace()
            } catch {
                failure = error
            }
            try await reopened.close()
            let error = try XCTUnwrap(failure as? TYDFSError, "size_bytes = \(bad) loaded")
            XCTAssertEqual(error.code, .io)
            XCTAssertTrue(error.message.contains("size_bytes"), error.message)
        }
    }

    /// Two spellings of one name (é as one character, and as e with an accent) are two rows to
    /// the store and two files to the namespace, each with its own chunks, whether the rows are
    /// read one after the other (the loader groups a file's rows by path) or apart, on SQLite
    /// and on PostgreSQL (whose collations compare equal only the same bytes). Before,
    /// the namespace merged them (Swift's `String` compares canonically): one was lost from
    /// view, and its chunks were counted with no file.
    func testTwoSpellingsOfOneNameLoadAsTwoFiles() async throws {
        // In byte order "/cafe\u{301}" < "/caff" < "/caf\u{E9}": the third row parts the two.
        // The accents in the other order are one String too, and no row parts them.
        let files = [
            Fixture.file("/caf\u{E9}", chunks: 1), Fixture.file("/cafe\u{301}", chunks: 2), Fixture.file("/caff", chunks: 1),
            Fixture.file("/d/a\u{327}\u{301}", chunks: 1), Fixture.file("/d/a\u{301}\u{327}", chunks: 3),
        ]
        XCTAssertEqual(files[0].path.value, files[1].path.value, "one String, as Swift compares")
        XCTAssertEqual(files[3].path.value, files[4].path.value, "one String, as Swift compares")
        try await onBothStores {
            let store = try await open()
            try await store.apply(files.map { .putFile($0) })
            try await store.close()
            let namespace = try await reopenedNamespace()
            XCTAssertEqual(namespace.fileCount, 5)
            XCTAssertEqual(namespace.chunks.count, 8)
            for file in files {
                XCTAssertEqual(namespace.file(at: file.path), file, "\(Array(file.path.value.utf8))")
            }
            XCTAssertEqual(namespace.list(.root)?.map { Array($0.path.utf8) }, ["/cafe\u{301}", "/caff", "/caf\u{E9}", "/d"].map { Array($0.utf8) })
            XCTAssertEqual(namespace.list(try RemotePath("/d"))?.map(\.sizeBytes), [300, 100])
        }
    }

    func testAttributesReadBackAndADatabaseFromBeforeThemGainsTheColumn() async throws {
        // A database as TYDFS made it before files had attributes (written by Python's sqlite3).
        let old = Process()
        old.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        old.arguments = ["python3", "-c", """
            import sqlite3, sys
            db = sqlite3.connect(sys.argv[1])
            db.execute("CREATE TABLE files (path TEXT PRIMARY KEY, size_bytes BIGINT NOT NULL, mtime_ms BIGINT NOT NULL, crc32c BIGINT NOT NULL, chunk_size_bytes BIGINT NOT NULL, replication INTEGER NOT NULL)")
            db.execute("INSERT INTO files VALUES ('/old', 0, 5, 0, 1024, 3)")
            db.execute("CREATE TABLE directories (path TEXT PRIMARY KEY, mtime_ms BIGINT NOT NULL)")
            db.execute("INSERT INTO directories VALUES ('/old-dir', 6)")
            db.commit()
            """, folder + "/metadata.sqlite"]
        try old.run()
        old.waitUntilExit()
        XCTAssertEqual(old.terminationStatus, 0)
        var namespace = try await reopenedNamespace()
        XCTAssertEqual(namespace.file(at: try RemotePath("/old"))?.attributes, [:])
        XCTAssertEqual(namespace.madeDirectories(under: .root), [MadeDirectory(path: try RemotePath("/old-dir"), mtimeMillis: 6, attributes: [:])])

        var typed = Fixture.file("/typed", chunks: 1)
        typed.attributes = ["content-type": "text/plain", "s3-etag": "d41d8cd98f00b204e9800998ecf8427e", "x-amz-meta-ü": "ä \"q\""]
        let store = try await open()
        try await store.apply([.putFile(typed)])
        try await store.close()
        namespace = try await reopenedNamespace()
        XCTAssertEqual(namespace.file(at: typed.path), typed)
        XCTAssertEqual(namespace.list(.root)!.map(\.path), ["/old", "/old-dir", "/typed"])
        XCTAssertEqual(namespace.list(.root)!.map(\.attributes), [nil, nil, typed.attributes], "ls shows a file's attributes, none for others")
    }

    func testDirectoryAttributesReadBackAndAMadeDirectoryMadeAgainTakesNewOnes() async throws {
        try await onBothStores {
            let store = try await open()
            let dir = try RemotePath("/d")
            try await store.apply([
                .makeDirectory(dir, mtimeMillis: 5, attributes: ["posix-mode": "40700"]), .makeDirectory(try RemotePath("/plain"), mtimeMillis: 6),
            ])
            // Made again twice in one batch (two chmods in one group commit): the later wins.
            try await store.apply([
                .makeDirectory(dir, mtimeMillis: 5, attributes: ["posix-mode": "40755"]),
                .makeDirectory(dir, mtimeMillis: 5, attributes: ["posix-mode": "40751", "posix-uid": "7"]),
            ])
            try await store.close()
            let namespace = try await reopenedNamespace()
            XCTAssertEqual(namespace.madeDirectories(under: .root).map(\.attributes), [["posix-mode": "40751", "posix-uid": "7"], [:]])
            XCTAssertEqual(namespace.list(.root)!.map(\.attributes), [["posix-mode": "40751", "posix-uid": "7"], nil])
        }
    }

    func testMadeDirectoriesKeepTheTimesTheyWereTouchedAtAndOnesOfFilesShowTheirs() async throws {
        try await onBothStores {
            let store = try await open()
            var file = Fixture.file("/files/f")
            file.mtimeMillis = 100
            try await store.apply([
                .makeDirectory(try RemotePath("/made"), mtimeMillis: 5), .makeDirectory(try RemotePath("/top/made"), mtimeMillis: 5),
                .putFile(file),
            ])
            // Touched twice in one batch, the latest time wins; a made directory above the one
            // touched moves too; a directory of files alone (no row), or none at all, keeps nothing.
            try await store.apply([
                .touchDirectory(try RemotePath("/made"), mtimeMillis: 70), .touchDirectory(try RemotePath("/made"), mtimeMillis: 50),
                .touchDirectory(try RemotePath("/top/made/implied"), mtimeMillis: 80),
                .touchDirectory(try RemotePath("/files"), mtimeMillis: 900), .touchDirectory(try RemotePath("/none"), mtimeMillis: 900),
            ])
            // Later, an earlier time moves nothing back.
            try await store.apply([.touchDirectory(try RemotePath("/made"), mtimeMillis: 60)])
            try await store.close()
            let namespace = try await reopenedNamespace()
            XCTAssertEqual(namespace.list(.root)!.map(\.path), ["/files", "/made", "/top"])
            XCTAssertEqual(namespace.list(.root)!.map(\.mtimeMillis), [100, 70, 80])
        }
    }

    func testThePathsAStoreSaysItKeepsAreKept() async throws {
        var limits: [Int] = []
        try await onBothStores {
            let store = try await open()
            limits.append(store.maxPathBytes)
            // Random letters do not compress: the longest path as long as it is, in every table.
            let name = String((0..<store.maxPathBytes - 3).map { _ in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".randomElement()! })
            let file = Fixture.file("/d/" + name.dropLast(2)), directory = try RemotePath("/" + name.dropLast(2) + "/e")
            XCTAssertEqual(file.path.value.utf8.count, store.maxPathBytes - 2)
            try await store.apply([.putFile(file), .makeDirectory(directory, mtimeMillis: 1)])
            try await store.close()
            let namespace = try await reopenedNamespace()
            XCTAssertEqual(namespace.file(at: file.path), file)
            XCTAssertTrue(namespace.isMadeDirectory(directory))
        }
        XCTAssertEqual(limits.first, Limits.maxPathBytes, "SQLite keeps all a path may hold")
        if limits.count > 1 { XCTAssertEqual(limits[1], SQLMetadataStore.postgresMaxPathBytes) }
    }

    func testMadeDirectoriesReadBackAfterReopeningAndRemovedOnesStayGone() async throws {
        try await onBothStores {
            let store = try await open()
            let dir = { (text: String) in try RemotePath(text) }
            try await store.apply([
                .makeDirectory(try dir("/bucket"), mtimeMillis: 5), .makeDirectory(try dir("/a/b/c"), mtimeMillis: 6),
                .makeDirectory(try dir("/gone"), mtimeMillis: 7), .putFile(Fixture.file("/a/x")),
                // Made twice (an existing directory made its own): the later mtime wins, no error.
                .makeDirectory(try dir("/bucket"), mtimeMillis: 8),
            ])
            try await store.apply([.removeDirectory(try dir("/gone"))])
            try await store.close()
            let namespace = try await reopenedNamespace()
            XCTAssertEqual(namespace.madeDirectories(under: .root).map(\.path.value), ["/a/b/c", "/bucket"])
            XCTAssertEqual(namespace.madeDirectories(under: .root).map(\.mtimeMillis), [6, 8])
            XCTAssertEqual(namespace.list(.root)!.map(\.path), ["/a", "/bucket"])
            XCTAssertEqual(namespace.list(try dir("/a"))!.map(\.path), ["/a/b", "/a/x"])
            XCTAssertEqual(namespace.fileCount, 1)
        }
    }

    func testEveryKindOfEditIsStoredInOrder() async throws {
        try await onBothStores {
            let first = Fixture.file("/f", chunks: 2), second = Fixture.file("/f", chunks: 1)
            let chunk = first.chunks[0].id
            let store = try await open()
            try await store.apply([
                .putFile(first), .removeReplica(chunk, Fixture.dk("dk1")), .addReplica(chunk, Fixture.dk("dk9")),
                .addReplica(chunk, Fixture.dk("dk9")),
            ])
            var afterFirst = try await store.loadNamespace()
            XCTAssertEqual(afterFirst.chunks[chunk]?.replicas.map(\.value).sorted(), ["dk2", "dk3", "dk9"])
            // Replaced in one batch: replicas queued for deletion, the old file removed, the new one put.
            try await store.apply([
                .queueDeletion(chunk, Fixture.dk("dk9")), .queueDeletion(chunk, Fixture.dk("dk2")), .removeFile(first.path),
                .putFile(second), .cancelDeletion(chunk, Fixture.dk("dk2")),
            ])
            try await store.close()
            afterFirst = try await reopenedNamespace()
            XCTAssertEqual(afterFirst.file(at: second.path), second)
            XCTAssertNil(afterFirst.chunks[chunk], "the replaced file's chunks are gone")
            XCTAssertEqual(afterFirst.pendingDeletions[Fixture.dk("dk9")]?[chunk], 0)
            XCTAssertNil(afterFirst.pendingDeletions[Fixture.dk("dk2")], "the cancelled deletion stays cancelled")
        }
    }

    func testAFailedBatchLeavesNothingOfItselfBehind() async throws {
        try await onBothStores {
            let store = try await open()
            let taken = Fixture.file("/taken")
            try await store.apply([.putFile(taken)])
            do {
                // The second put of the same path violates the primary key: the whole batch is refused.
                try await store.apply([.putFile(Fixture.file("/new")), .putFile(Fixture.file("/taken"))])
                XCTFail("a batch that breaks a constraint must fail")
            } catch let error as TYDFSError {
                XCTAssertEqual(error.code, .io)
                XCTAssertTrue(error.message.contains("metadata database"), error.message)
            }
            try await store.close()
            let namespace = try await reopenedNamespace()
            XCTAssertNil(namespace.file(at: try RemotePath("/new")))
            XCTAssertEqual(namespace.file(at: taken.path), taken)
        }
    }

    /// A batch of removals (each: its replicas' deletion ordered, its file removed, its folder
    /// touched, as `rm` writes them) is written as three runs, not several per file, and every
    /// removal takes effect on both stores.
    func testABatchOfRemovalsIsWrittenInAFewRunsAndAllTakeEffect() async throws {
        let files = (0..<50).map { Fixture.file("/gone/f\($0)", chunks: 2) }
        let removals: [MetadataEdit] = files.flatMap { file in
            MetadataEdit.removal(of: file) + MetadataEdit.touchingParents(of: [file.path], at: 7)
        }
        let runs = SQLMetadataStore.runs(of: removals)
        XCTAssertEqual(runs.map(\.count), [50, 300, 50], "the removals, the deletion orders (300 = 50 files × 2 chunks × 3 replicas), the touches")
        XCTAssertEqual(runs[1], removals.filter { if case .queueDeletion = $0 { return true } else { return false } }, "orders keep their order")
        try await onBothStores {
            let store = try await open()
            try await store.apply(files.map { .putFile($0) })
            try await store.apply(removals)
            try await store.close()
            let namespace = try await reopenedNamespace()
            XCTAssertEqual(namespace.fileCount, 0)
            XCTAssertEqual(namespace.chunks.count, 0)
            XCTAssertEqual(namespace.pendingDeletions.values.reduce(0) { $0 + $1.count }, 300)
        }
    }

    func testALargeBatchIsWrittenInSeveralStatements() async throws {
        try await onBothStores {
            let files = (0..<1500).map { Fixture.file("/many/f\($0)", chunks: 1) }
            let store = try await open()
            try await store.apply(files.map { .putFile($0) })
            try await store.close()
            let namespace = try await reopenedNamespace()
            XCTAssertEqual(namespace.fileCount, 1500)
            XCTAssertEqual(namespace.list(try RemotePath("/many"))?.count, 1500)
        }
    }
}
