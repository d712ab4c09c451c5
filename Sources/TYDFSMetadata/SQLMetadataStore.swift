import Foundation
import Logging
import NIOPosix
import SQLKit
import SQLiteKit
import TYDFSCore

/// `MetadataStore` on SQL, written against SQLKit so that the same queries run on SQLite and
/// PostgreSQL.
/// - `openSQLite`: one file in WAL mode with `synchronous=FULL`: a committed transaction survives
///   `kill -9` and power loss, and each batch costs one WAL fsync however many edits it holds.
/// - `openPostgres`: a database several masters share (issue 17). The connection is made again
///   when it drops (a database restart); a store opened for a leadership epoch refuses to write
///   once another master holds a later one (`LeaderLease`).
///
/// Statements run on one connection; `mutex` keeps each multi-statement transaction whole.
/// Unchecked Sendable only because SQLKit does not declare `any SQLDatabase` Sendable: the
/// store's own fields never change after `init`, and the database serialises its statements.
public final class SQLMetadataStore: MetadataStore, @unchecked Sendable {
    /// The connection to run the next statements on (PostgreSQL's is made again after it drops).
    private let connection: @Sendable () async throws -> any SQLDatabase
    private let closeConnection: @Sendable () async throws -> Void
    /// Opens a write transaction: SQLite takes its write lock at once, PostgreSQL at the first row.
    private let begin: SQLQueryString
    /// Runs first in every write transaction; throws to refuse it (a fenced leader's store).
    private let admit: (@Sendable (any SQLDatabase) async throws -> Void)?
    /// How long a write transaction of so many rows may take before it is abandoned and its
    /// connection closed (PostgreSQL: a server or network that stops answering mid-transaction
    /// must not hold every later write for ever); nil: no limit (SQLite, a local file).
    private let writeSeconds: (@Sendable (Int) -> Double)?
    /// Runs a query and hands each of its rows to a callback, one after another: for SQLite,
    /// read straight from SQLiteNIO's rows, not decoded through SQLKit's `Decoder` (which took
    /// a fifth of a master's start with a million files); elsewhere, SQLKit.
    private let eachRow: @Sendable (_ query: String, _ row: @escaping @Sendable (any LoadingRow) -> Void) async throws -> Void
    private let mutex = AsyncMutex()

    /// The longest path PostgreSQL can keep: a B-tree index entry (the tables' keys on `path`)
    /// holds at most 2,704 bytes, the path's bytes plus a few of the entry's own; a longer path
    /// would fail its whole group commit, and with it the puts of every other client in it.
    public static let postgresMaxPathBytes = 2_600

    public let maxPathBytes: Int

    private init(
        begin: SQLQueryString, maxPathBytes: Int, admit: (@Sendable (any SQLDatabase) async throws -> Void)? = nil,
        writeSeconds: (@Sendable (Int) -> Double)? = nil,
        connection: @escaping @Sendable () async throws -> any SQLDatabase, close: @escaping @Sendable () async throws -> Void,
        eachRow: (@Sendable (_ query: String, _ row: @escaping @Sendable (any LoadingRow) -> Void) async throws -> Void)? = nil
    ) {
        self.begin = begin
        self.maxPathBytes = maxPathBytes
        self.admit = admit
        self.writeSeconds = writeSeconds
        self.connection = connection
        self.closeConnection = close
        self.eachRow = eachRow ?? { query, row in
            try await connection().raw(SQLQueryString(query)).run { row(SQLKitLoadingRow(row: $0)) }
        }
    }

    /// Opens (creating if needed) the SQLite database at `path`.
    public static func openSQLite(path: String, logger: Logger) async throws -> SQLMetadataStore {
        let opened: SQLiteConnection
        do {
            opened = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
        } catch {
            throw TYDFSError(.io, "cannot open the metadata database \(path): \(error)")
        }
        let database = opened.sql(queryLogLevel: nil)
        let store = SQLMetadataStore(
            begin: "BEGIN IMMEDIATE", maxPathBytes: Limits.maxPathBytes, connection: { database }, close: { try await opened.close().get() },
            eachRow: { query, row in try await opened.query(query, []) { row($0) } })
        try await store.prepare(statements: [
            "PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA busy_timeout=5000",
        ] + schema)
        // Databases made before files had attributes and commit ids, or directories attributes,
        // gain the columns (NULL: none).
        for (table, added) in [("files", ["attributes", "commit_id"]), ("directories", ["attributes"])] {
            let columns = try await database.raw("SELECT name FROM pragma_table_info(\(bind: table))").all().map { try $0.decode(column: "name", as: String.self) }
            for column in added where !columns.contains(column) {
                try await database.raw("ALTER TABLE \(ident: table) ADD COLUMN \(ident: column) TEXT").run()
            }
        }
        return store
    }

    /// Opens the PostgreSQL database `link` reaches, creating the tables if needed. With
    /// `epoch`, every write transaction first checks that the leader lease still carries that
    /// epoch (holding the lease row until it commits, so a takeover waits for it): a master that
    /// lost the lease, even one paused past it, can change nothing. A write transaction is
    /// abandoned after `writeSeconds` (plus a second per 1,000 rows; nil: never): see
    /// `writeSeconds`.
    public static func openPostgres(_ link: PostgresLink, epoch: LeaderEpoch?, writeSeconds: Double? = 10) async throws -> SQLMetadataStore {
        var admit: (@Sendable (any SQLDatabase) async throws -> Void)?
        if let epoch {
            admit = { @Sendable (database: any SQLDatabase) async throws in try await LeaderLease.admit(epoch, on: database) }
        }
        // By default far above what a batch takes (thousands of rows a second even on a slow
        // server), and above the lock wait (3 s) and idle-transaction limit (5 s) that end most stalls.
        var limit: (@Sendable (Int) -> Double)?
        if let writeSeconds { limit = { rows in writeSeconds + Double(rows) / 1000 } }
        let store = SQLMetadataStore(
            begin: "BEGIN", maxPathBytes: Self.postgresMaxPathBytes, admit: admit, writeSeconds: limit,
            connection: { try await link.database() }, close: { await link.close() })
        try await store.prepare(statements: schema + LeaderLease.schema)
        // Databases made before directories had attributes gain the column (NULL: none). Asked
        // first: the change would lock the table at every takeover.
        let database = try await link.database()
        let found = try await database.raw("""
            SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'directories' AND column_name = 'attributes'
            """).all()
        if found.isEmpty { try await database.raw("ALTER TABLE directories ADD COLUMN IF NOT EXISTS attributes TEXT").run() }
        return store
    }

    private func prepare(statements: [String]) async throws {
        let database = try await connection()
        for statement in statements {
            try await database.raw(SQLQueryString(statement)).run()
        }
    }

    /// A file's attributes as the `attributes` column holds them: JSON, or NULL for none.
    static func encode(attributes: [String: String]) -> String? {
        guard !attributes.isEmpty, let data = try? JSONEncoder().encode(attributes) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    static func decode(attributes text: String?) throws -> [String: String] {
        guard let text else { return [:] }
        return try JSONDecoder().decode([String: String].self, from: Data(text.utf8))
    }

    /// The schema, in SQL that SQLite and PostgreSQL both accept.
    static let schema = [
        """
        CREATE TABLE IF NOT EXISTS files (
            path TEXT PRIMARY KEY, size_bytes BIGINT NOT NULL, mtime_ms BIGINT NOT NULL,
            crc32c BIGINT NOT NULL, chunk_size_bytes BIGINT NOT NULL, replication INTEGER NOT NULL, attributes TEXT,
            commit_id TEXT)
        """,
        """
        CREATE TABLE IF NOT EXISTS chunks (
            id TEXT PRIMARY KEY, path TEXT NOT NULL, idx INTEGER NOT NULL,
            size_bytes BIGINT NOT NULL, crc32c BIGINT NOT NULL)
        """,
        "CREATE INDEX IF NOT EXISTS chunks_by_path ON chunks (path, idx)",
        """
        CREATE TABLE IF NOT EXISTS replicas (
            chunk_id TEXT NOT NULL, datakeeper_id TEXT NOT NULL, PRIMARY KEY (chunk_id, datakeeper_id))
        """,
        "CREATE INDEX IF NOT EXISTS replicas_by_datakeeper ON replicas (datakeeper_id)",
        """
        CREATE TABLE IF NOT EXISTS pending_deletions (
            chunk_id TEXT NOT NULL, datakeeper_id TEXT NOT NULL, PRIMARY KEY (chunk_id, datakeeper_id))
        """,
        // Directories made on their own (mkdir, S3 buckets); others exist only through their files.
        "CREATE TABLE IF NOT EXISTS directories (path TEXT PRIMARY KEY, mtime_ms BIGINT NOT NULL, attributes TEXT)",
    ]

    public func close() async throws {
        try await closeConnection()
    }

    // MARK: - Loading

    public func load(
        file: @escaping @Sendable (StoredFile) -> Void, directory: @escaping @Sendable (MadeDirectory) -> Void,
        deletion: @escaping @Sendable (ChunkID, DataKeeperID) -> Void
    ) async throws {
        let assembler = FileAssembler(emit: file)
        try await mutex.withLock {
            // One pass over files joined with their chunks and replicas, in path and chunk order:
            // each file is complete when the path changes.
            try await eachRow("""
                SELECT f.path, f.size_bytes, f.mtime_ms, f.crc32c, f.chunk_size_bytes, f.replication, f.attributes, f.commit_id,
                       c.id, c.idx, c.size_bytes AS chunk_size, c.crc32c AS chunk_crc, r.datakeeper_id
                FROM files f LEFT JOIN chunks c ON c.path = f.path LEFT JOIN replicas r ON r.chunk_id = c.id
                ORDER BY f.path, c.idx, r.datakeeper_id
                """) { row in assembler.add(row) }
            try assembler.finish()
            let failure = FirstFailure()
            try await eachRow("SELECT chunk_id, datakeeper_id FROM pending_deletions") { row in
                failure.capture { deletion(try ChunkID(row.string("chunk_id")), try DataKeeperID(row.string("datakeeper_id"))) }
            }
            try await eachRow("SELECT path, mtime_ms, attributes FROM directories") { row in
                failure.capture {
                    directory(MadeDirectory(
                        path: try RemotePath(row.string("path")), mtimeMillis: try row.int64("mtime_ms"),
                        attributes: try Self.decode(attributes: row.optionalString("attributes"))))
                }
            }
            try failure.check()
        }
    }

    // MARK: - Writing

    /// Rows per multi-row statement: far below SQLite's and PostgreSQL's limits on bound values.
    private static let rowsPerStatement = 400

    public func apply(_ edits: [MetadataEdit]) async throws {
        guard !edits.isEmpty else { return }
        try await mutex.withLock {
            guard let limit = writeSeconds?(Self.rows(of: edits)) else { return try await transaction(edits) }
            do {
                try await bounded(limit, timedOut: WriteTimedOut()) { try await self.transaction(edits) }
            } catch is WriteTimedOut {
                // Its connection goes, so nothing more runs in that transaction; a later write
                // opens a new one.
                try? await closeConnection()
                let message = "the metadata database did not finish a write of \(edits.count) changes within \(Int(limit)) s"
                // Whether it committed is unknown: a leader's store ends its term, so that memory
                // is rebuilt from what the database holds.
                if admit != nil { throw TYDFSError(.notLeader, message + "; whether it was written is unknown, so this master stops leading and reloads") }
                throw TYDFSError(.io, message)
            }
        }
    }

    private struct WriteTimedOut: Error {}

    /// About how many rows `edits` write: a file counts its chunks and their replicas.
    static func rows(of edits: [MetadataEdit]) -> Int {
        edits.reduce(0) { total, edit in
            if case .putFile(let file) = edit { return total + 1 + file.chunks.reduce(0) { $0 + 1 + $1.replicas.count } }
            return total + 1
        }
    }

    /// One write transaction holding `edits`, on the store's connection.
    private func transaction(_ edits: [MetadataEdit]) async throws {
        let database: any SQLDatabase
        do {
            database = try await connection()
        } catch {
            throw TYDFSError(.io, "the metadata database could not be reached: \(PostgresLink.describe(error))")
        }
        try await database.raw(begin).run()
        do {
            try await admit?(database)
            for run in Self.runs(of: edits) { try await write(run, on: database) }
            // Abandoned for taking too long (see `apply`): it must not commit after all.
            try Task.checkCancellation()
        } catch {
            try? await database.raw("ROLLBACK").run()
            if let error = error as? TYDFSError, error.code == .notLeader { throw error }
            throw TYDFSError(.io, "the metadata database could not be written: \(PostgresLink.describe(error))")
        }
        do {
            try await database.raw("COMMIT").run()
        } catch {
            // The COMMIT may have reached the server before the connection failed: whether
            // the batch is stored is unknown. A leader's store (one with `admit`) then ends
            // its term, so that memory is rebuilt from what the database holds.
            if admit != nil {
                throw TYDFSError(.notLeader, "the metadata database connection failed during COMMIT; whether the batch was written is unknown, so this master stops leading and reloads: \(PostgresLink.describe(error))")
            }
            throw TYDFSError(.io, "the metadata database could not be written: \(PostgresLink.describe(error))")
        }
    }

    /// Consecutive edits of one kind, written with multi-row statements; runs keep the edits'
    /// order, except that:
    ///
    /// deletion orders (`pending_deletions`, a table no other edit touches) go after the rest,
    /// in their own order, and directories' touches after them: a batch of removals, each
    /// ordering its replicas' deletion, removing its file and touching its folder, then takes a
    /// few statements instead of several per file, which costs a round trip each on PostgreSQL.
    /// The tables end the same (a touch only ever moves a time forward, and a removed or
    /// missing directory takes none), and the transaction is whole.
    static func runs(of edits: [MetadataEdit]) -> [[MetadataEdit]] {
        var runs: [[MetadataEdit]] = []
        let orders = edits.filter(isDeletionOrder), touches = edits.filter(isTouch)
        for edit in edits.filter({ !isDeletionOrder($0) && !isTouch($0) }) + orders + touches {
            if let last = runs.last?.last, kind(of: last) == kind(of: edit), runs[runs.count - 1].count < rowsPerStatement {
                runs[runs.count - 1].append(edit)
            } else {
                runs.append([edit])
            }
        }
        return runs
    }

    private static func isTouch(_ edit: MetadataEdit) -> Bool {
        if case .touchDirectory = edit { true } else { false }
    }

    private static func isDeletionOrder(_ edit: MetadataEdit) -> Bool {
        switch edit {
        case .queueDeletion, .cancelDeletion: true
        default: false
        }
    }

    private static func kind(of edit: MetadataEdit) -> Int {
        switch edit {
        case .putFile: 0
        case .removeFile: 1
        case .addReplica: 2
        case .removeReplica: 3
        case .queueDeletion: 4
        case .cancelDeletion: 5
        case .makeDirectory: 6
        case .removeDirectory: 7
        case .touchDirectory: 8
        }
    }

    private func write(_ run: [MetadataEdit], on database: any SQLDatabase) async throws {
        var files: [SQLQueryString] = [], chunks: [SQLQueryString] = [], replicas: [SQLQueryString] = []
        // One row per directory: a directory made twice in one run (its attributes changed twice)
        // takes the later, as PostgreSQL's upsert cannot touch a row twice in one statement.
        var directories: [RemotePath: SQLQueryString] = [:]
        var paths: [any Encodable & Sendable] = []
        var pairs: [SQLQueryString] = []
        var touched: [RemotePath: Int64] = [:]
        for edit in run {
            switch edit {
            case .putFile(let file):
                files.append("(\(bind: file.path.value), \(bind: file.sizeBytes), \(bind: file.mtimeMillis), \(bind: Int64(file.crc32c)), \(bind: file.chunkSizeBytes), \(bind: file.replication), \(bind: Self.encode(attributes: file.attributes)), \(bind: file.commitID))")
                for chunk in file.chunks {
                    chunks.append("(\(bind: chunk.id.value), \(bind: file.path.value), \(bind: chunk.index), \(bind: chunk.sizeBytes), \(bind: Int64(chunk.crc32c)))")
                    for replica in chunk.replicas { replicas.append("(\(bind: chunk.id.value), \(bind: replica.value))") }
                }
            case .removeFile(let path), .removeDirectory(let path):
                paths.append(path.value)
            case .makeDirectory(let path, let mtimeMillis, let attributes):
                directories[path] = "(\(bind: path.value), \(bind: mtimeMillis), \(bind: Self.encode(attributes: attributes)))"
            case .touchDirectory(let path, let mtimeMillis):
                // The directory and every one above it, as in memory (only made ones have rows).
                var directory: RemotePath? = path
                while let current = directory, !current.isRoot {
                    touched[current] = max(touched[current] ?? mtimeMillis, mtimeMillis)
                    directory = current.parent
                }
            case .addReplica(let chunk, let datakeeper), .removeReplica(let chunk, let datakeeper),
                 .queueDeletion(let chunk, let datakeeper), .cancelDeletion(let chunk, let datakeeper):
                pairs.append("(\(bind: chunk.value), \(bind: datakeeper.value))")
            }
        }
        switch run[0] {
        case .putFile:
            try await database.raw("""
                INSERT INTO files (path, size_bytes, mtime_ms, crc32c, chunk_size_bytes, replication, attributes, commit_id) VALUES \(files.joined(separator: ", "))
                """).run()
            for rows in chunks.chunked(Self.rowsPerStatement) {
                try await database.raw("INSERT INTO chunks (id, path, idx, size_bytes, crc32c) VALUES \(rows.joined(separator: ", "))").run()
            }
            for rows in replicas.chunked(Self.rowsPerStatement) { try await insertPairs(into: "replicas", Array(rows), on: database) }
        case .removeFile:
            try await database.raw("""
                DELETE FROM replicas WHERE chunk_id IN (SELECT id FROM chunks WHERE path IN (\(binds: paths)))
                """).run()
            try await database.raw("DELETE FROM chunks WHERE path IN (\(binds: paths))").run()
            try await database.raw("DELETE FROM files WHERE path IN (\(binds: paths))").run()
        case .addReplica: try await insertPairs(into: "replicas", pairs, on: database)
        case .removeReplica: try await deletePairs(from: "replicas", pairs, on: database)
        case .queueDeletion: try await insertPairs(into: "pending_deletions", pairs, on: database)
        case .cancelDeletion: try await deletePairs(from: "pending_deletions", pairs, on: database)
        case .makeDirectory:
            try await database.raw("""
                INSERT INTO directories (path, mtime_ms, attributes) VALUES \(directories.values.joined(separator: ", "))
                ON CONFLICT (path) DO UPDATE SET mtime_ms = excluded.mtime_ms, attributes = excluded.attributes
                """).run()
        case .removeDirectory:
            try await database.raw("DELETE FROM directories WHERE path IN (\(binds: paths))").run()
        case .touchDirectory:
            // Only a made directory has a row; one that exists through its files changes nothing.
            // (A VALUES list's columns are column1, column2... on SQLite and PostgreSQL alike.)
            let rows = touched.map { "(\(bind: $0.key.value), \(bind: $0.value))" as SQLQueryString }
            for rows in rows.chunked(Self.rowsPerStatement) {
                try await database.raw("""
                    UPDATE directories SET mtime_ms = touched.column2 FROM (VALUES \(rows.joined(separator: ", "))) AS touched
                    WHERE directories.path = touched.column1 AND directories.mtime_ms < touched.column2
                    """).run()
            }
        }
    }
}

extension SQLMetadataStore {
    /// Adds (chunk id, datakeeper id) rows to `table` (`replicas` or `pending_deletions`), keeping any already there.
    private func insertPairs(into table: String, _ pairs: [SQLQueryString], on database: any SQLDatabase) async throws {
        try await database.raw("""
            INSERT INTO \(ident: table) (chunk_id, datakeeper_id) VALUES \(pairs.joined(separator: ", ")) ON CONFLICT DO NOTHING
            """).run()
    }

    /// Removes (chunk id, datakeeper id) rows from `table` (`replicas` or `pending_deletions`).
    private func deletePairs(from table: String, _ pairs: [SQLQueryString], on database: any SQLDatabase) async throws {
        try await database.raw("""
            DELETE FROM \(ident: table) WHERE (chunk_id, datakeeper_id) IN (VALUES \(pairs.joined(separator: ", ")))
            """).run()
    }
}

extension Array {
    /// The array cut into slices of at most `size` elements.
    func chunked(_ size: Int) -> [ArraySlice<Element>] {
        stride(from: 0, to: count, by: size).map { self[$0..<Swift.min($0 + size, count)] }
    }
}

/// The first error a row callback (which cannot throw) ran into. Callbacks run one at a time.
private final class FirstFailure: @unchecked Sendable {
    private var error: Error?

    func capture(_ body: () throws -> Void) {
        guard error == nil else { return }
        do { try body() } catch { self.error = error }
    }

    func check() throws {
        if let error { throw TYDFSError(.io, "the metadata database holds a row that cannot be read: \(error)") }
    }
}

/// Turns the rows of the loading query (a file's columns repeated for each chunk and replica) back
/// into whole files. Rows arrive one at a time, in path, chunk and replica order.
private final class FileAssembler: @unchecked Sendable {
    private let emit: @Sendable (StoredFile) -> Void
    private var current: StoredFile?
    private let failure = FirstFailure()

    init(emit: @escaping @Sendable (StoredFile) -> Void) {
        self.emit = emit
    }

    /// The datakeeper ids met so far: a few datakeepers hold every replica, so each id is
    /// checked once, not once per replica.
    private var datakeepers: [String: DataKeeperID] = [:]
    /// The chunk id of the last row, as the database spelled it.
    private var lastChunkID: String?

    func add(_ row: any LoadingRow) {
        failure.capture {
            let path = try row.string("path")
            if current?.path.value.equalsByteWise(path) != true {
                if let current { emit(current) }
                current = StoredFile(
                    path: try RemotePath(path), sizeBytes: try row.int64("size_bytes"), mtimeMillis: try row.int64("mtime_ms"),
                    crc32c: UInt32(truncatingIfNeeded: try row.int64("crc32c")), chunkSizeBytes: try row.int64("chunk_size_bytes"),
                    replication: Int(try row.int64("replication")), chunks: [],
                    attributes: try SQLMetadataStore.decode(attributes: try row.optionalString("attributes")),
                    commitID: try row.optionalString("commit_id"))
                lastChunkID = nil
            }
            guard let id = try row.optionalString("id") else { return }
            if id != lastChunkID {
                current!.chunks.append(StoredChunk(
                    index: Int(try row.int64("idx")), id: try ChunkID(id), sizeBytes: try row.int64("chunk_size"),
                    crc32c: UInt32(truncatingIfNeeded: try row.int64("chunk_crc")), replicas: []))
                lastChunkID = id
            }
            if let replica = try row.optionalString("datakeeper_id") {
                let datakeeper = try datakeepers[replica] ?? DataKeeperID(replica)
                datakeepers[replica] = datakeeper
                current!.chunks[current!.chunks.count - 1].replicas.append(datakeeper)
            }
        }
    }

    func finish() throws {
        try failure.check()
        if let current { emit(current) }
        current = nil
    }
}

/// A row of the queries that load a master's namespace, read by column name. SQLite's own rows
/// are read directly (see `SQLMetadataStore.eachRow`), other databases' through SQLKit.
protocol LoadingRow {
    func string(_ column: String) throws -> String
    /// Nil for SQL NULL.
    func optionalString(_ column: String) throws -> String?
    func int64(_ column: String) throws -> Int64
}

/// Read as SQLKit's `SQLiteDataDecoder` reads: a text column holding a number gives its digits,
/// and an integer column holding anything but an integer (a real, text, a blob) is an error.
extension SQLiteRow: LoadingRow {
    private func value(_ column: String) throws -> SQLiteData {
        guard let value = self.column(column) else { throw TYDFSError(.internal, "the loading query has no column \(column)") }
        return value
    }

    func string(_ column: String) throws -> String {
        guard let text = try optionalString(column) else { throw TYDFSError(.io, "column \(column) is NULL") }
        return text
    }

    func optionalString(_ column: String) throws -> String? {
        let value = try value(column)
        if value == .null { return nil }
        guard let text = value.string else { throw TYDFSError(.io, "column \(column) holds \(value), not text") }
        return text
    }

    func int64(_ column: String) throws -> Int64 {
        let value = try value(column)
        guard case .integer(let number) = value else { throw TYDFSError(.io, "column \(column) holds \(value), not an integer") }
        return Int64(number)
    }
}

/// A row SQLKit read (PostgreSQL's), as `LoadingRow`.
private struct SQLKitLoadingRow: LoadingRow {
    let row: any SQLRow

    func string(_ column: String) throws -> String { try row.decode(column: column, as: String.self) }
    func optionalString(_ column: String) throws -> String? { try row.decode(column: column, as: String?.self) }
    func int64(_ column: String) throws -> Int64 { try row.decode(column: column, as: Int64.self) }
}
