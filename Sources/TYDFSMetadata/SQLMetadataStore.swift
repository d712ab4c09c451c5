import Logging
import NIOPosix
import SQLKit
import SQLiteKit
import TYDFSCore

/// `MetadataStore` on SQL, written against SQLKit so that the same queries can later run on
/// PostgreSQL. Today it opens an SQLite file (`SQLMetadataStore.openSQLite`) in WAL mode with
/// `synchronous=FULL`: a committed transaction survives `kill -9` and power loss.
///
/// Statements run on one connection; `mutex` keeps each multi-statement transaction whole.
public final class SQLMetadataStore: MetadataStore, @unchecked Sendable {
    private let database: any SQLDatabase
    private let closeConnection: @Sendable () async throws -> Void
    private let mutex = AsyncMutex()

    private init(database: any SQLDatabase, close: @escaping @Sendable () async throws -> Void) {
        self.database = database
        self.closeConnection = close
    }

    /// Opens (creating if needed) the SQLite database at `path`.
    public static func openSQLite(path: String, logger: Logger) async throws -> SQLMetadataStore {
        let connection: SQLiteConnection
        do {
            connection = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
        } catch {
            throw TYDFSError(.io, "cannot open the metadata database \(path): \(error)")
        }
        let store = SQLMetadataStore(database: connection.sql(queryLogLevel: nil)) {
            try await connection.close().get()
        }
        try await store.prepare(pragmas: ["PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA busy_timeout=5000"])
        return store
    }

    private func prepare(pragmas: [String]) async throws {
        for pragma in pragmas {
            _ = try await database.raw(SQLQueryString(pragma)).all()
        }
        for statement in Self.schema {
            try await database.raw(SQLQueryString(statement)).run()
        }
    }

    /// The schema, in SQL that SQLite and PostgreSQL both accept.
    static let schema = [
        """
        CREATE TABLE IF NOT EXISTS files (
            path TEXT PRIMARY KEY, size_bytes BIGINT NOT NULL, mtime_ms BIGINT NOT NULL,
            crc32c BIGINT NOT NULL, chunk_size_bytes BIGINT NOT NULL, replication INTEGER NOT NULL)
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
    ]

    public func close() async throws {
        try await closeConnection()
    }

    // MARK: - Transactions

    private func transaction<T: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        try await mutex.withLock {
            try await database.raw("BEGIN IMMEDIATE").run()
            do {
                let result = try await body(database)
                try await database.raw("COMMIT").run()
                return result
            } catch {
                try? await database.raw("ROLLBACK").run()
                throw error
            }
        }
    }

    /// Reads outside a transaction still wait for one in progress, so they never see half of it.
    private func read<T: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        try await mutex.withLock { try await body(database) }
    }

    // MARK: - Reads

    public func file(at path: RemotePath) async throws -> StoredFile? {
        try await read { db in try await Self.loadFile(path, db) }
    }

    private static func loadFile(_ path: RemotePath, _ db: any SQLDatabase) async throws -> StoredFile? {
        guard let row = try await db.raw("""
            SELECT size_bytes, mtime_ms, crc32c, chunk_size_bytes, replication FROM files WHERE path = \(bind: path.value)
            """).first()
        else { return nil }
        let chunkRows = try await db.raw("""
            SELECT id, idx, size_bytes, crc32c FROM chunks WHERE path = \(bind: path.value) ORDER BY idx
            """).all()
        let replicaRows = try await db.raw("""
            SELECT r.chunk_id, r.datakeeper_id FROM replicas r JOIN chunks c ON c.id = r.chunk_id
            WHERE c.path = \(bind: path.value) ORDER BY r.datakeeper_id
            """).all()
        var replicas: [String: [DataKeeperID]] = [:]
        for replica in replicaRows {
            let chunk = try replica.decode(column: "chunk_id", as: String.self)
            replicas[chunk, default: []].append(try DataKeeperID(replica.decode(column: "datakeeper_id", as: String.self)))
        }
        let chunks = try chunkRows.map { chunk -> StoredChunk in
            let id = try chunk.decode(column: "id", as: String.self)
            return StoredChunk(
                index: try chunk.decode(column: "idx", as: Int.self), id: try ChunkID(id),
                sizeBytes: try chunk.decode(column: "size_bytes", as: Int64.self),
                crc32c: UInt32(truncatingIfNeeded: try chunk.decode(column: "crc32c", as: Int64.self)),
                replicas: replicas[id] ?? [])
        }
        return StoredFile(
            path: path, sizeBytes: try row.decode(column: "size_bytes", as: Int64.self),
            mtimeMillis: try row.decode(column: "mtime_ms", as: Int64.self),
            crc32c: UInt32(truncatingIfNeeded: try row.decode(column: "crc32c", as: Int64.self)),
            chunkSizeBytes: try row.decode(column: "chunk_size_bytes", as: Int64.self),
            replication: try row.decode(column: "replication", as: Int.self), chunks: chunks)
    }

    public func files(under path: RemotePath) async throws -> [FileSummary] {
        let prefix = path.childPrefix
        // Paths strictly below `path` are those in [prefix, prefix + U+10FFFF): a range scan on the key.
        let upper = prefix + "\u{10FFFF}"
        return try await read { db in
            let rows = try await db.raw("""
                SELECT path, size_bytes, mtime_ms FROM files
                WHERE path = \(bind: path.value) OR (path >= \(bind: prefix) AND path < \(bind: upper))
                ORDER BY path
                """).all()
            return try rows.map { row in
                FileSummary(path: try RemotePath(row.decode(column: "path", as: String.self)),
                            sizeBytes: try row.decode(column: "size_bytes", as: Int64.self),
                            mtimeMillis: try row.decode(column: "mtime_ms", as: Int64.self))
            }
        }
    }

    public func conflictingFile(for path: RemotePath) async throws -> RemotePath? {
        try await read { db in try await Self.conflict(for: path, db) }
    }

    private static func conflict(for path: RemotePath, _ db: any SQLDatabase) async throws -> RemotePath? {
        var ancestors: [String] = []
        var current = path.value
        while let slash = current.lastIndex(of: "/"), slash != current.startIndex {
            current = String(current[..<slash])
            ancestors.append(current)
        }
        for ancestor in ancestors {
            if try await db.raw("SELECT path FROM files WHERE path = \(bind: ancestor)").first() != nil {
                return try RemotePath(ancestor)
            }
        }
        let prefix = path.childPrefix
        if let row = try await db.raw("""
            SELECT path FROM files WHERE path >= \(bind: prefix) AND path < \(bind: prefix + "\u{10FFFF}") LIMIT 1
            """).first() {
            return try RemotePath(row.decode(column: "path", as: String.self))
        }
        return nil
    }

    // MARK: - Writes

    public func commit(_ file: StoredFile, overwrite: Bool) async throws {
        try await transaction { db in
            if let existing = try await Self.loadFile(file.path, db) {
                guard overwrite else {
                    throw TYDFSError(.alreadyExists, "\(file.path) already exists; use --overwrite to replace it")
                }
                try await Self.delete(existing, db)
            }
            if let conflict = try await Self.conflict(for: file.path, db) {
                throw Self.conflictError(file.path, conflict)
            }
            try await db.raw("""
                INSERT INTO files (path, size_bytes, mtime_ms, crc32c, chunk_size_bytes, replication)
                VALUES (\(bind: file.path.value), \(bind: file.sizeBytes), \(bind: file.mtimeMillis),
                        \(bind: Int64(file.crc32c)), \(bind: file.chunkSizeBytes), \(bind: file.replication))
                """).run()
            for chunk in file.chunks {
                try await db.raw("""
                    INSERT INTO chunks (id, path, idx, size_bytes, crc32c)
                    VALUES (\(bind: chunk.id.value), \(bind: file.path.value), \(bind: chunk.index),
                            \(bind: chunk.sizeBytes), \(bind: Int64(chunk.crc32c)))
                    """).run()
                for replica in chunk.replicas {
                    try await db.raw("""
                        INSERT INTO replicas (chunk_id, datakeeper_id) VALUES (\(bind: chunk.id.value), \(bind: replica.value))
                        """).run()
                }
            }
        }
    }

    public static func conflictError(_ path: RemotePath, _ conflict: RemotePath) -> TYDFSError {
        if conflict.value.count < path.value.count {
            return TYDFSError(.alreadyExists, "cannot create \(path): \(conflict) is a file, not a directory")
        }
        return TYDFSError(.alreadyExists, "cannot create \(path): it is a directory (it holds \(conflict))")
    }

    public func remove(_ path: RemotePath) async throws -> StoredFile {
        try await transaction { db in
            guard let existing = try await Self.loadFile(path, db) else {
                throw TYDFSError(.notFound, "\(path): no such file")
            }
            try await Self.delete(existing, db)
            return existing
        }
    }

    /// Removes `file` and queues its replicas for deletion, inside the caller's transaction.
    private static func delete(_ file: StoredFile, _ db: any SQLDatabase) async throws {
        for chunk in file.chunks {
            for replica in chunk.replicas {
                try await queueDeletion(chunk.id, on: replica, db)
            }
            try await db.raw("DELETE FROM replicas WHERE chunk_id = \(bind: chunk.id.value)").run()
        }
        try await db.raw("DELETE FROM chunks WHERE path = \(bind: file.path.value)").run()
        try await db.raw("DELETE FROM files WHERE path = \(bind: file.path.value)").run()
    }

    public func reconcile(datakeeper: DataKeeperID, reported: Set<ChunkID>) async throws -> ReconcileResult {
        try await transaction { db in
            let recordedRows = try await db.raw("""
                SELECT chunk_id FROM replicas WHERE datakeeper_id = \(bind: datakeeper.value)
                """).all()
            let recorded = Set(try recordedRows.map { try $0.decode(column: "chunk_id", as: String.self) })
            let reportedValues = Set(reported.map(\.value))
            var removed = 0
            for chunk in recorded.subtracting(reportedValues) {
                try await db.raw("""
                    DELETE FROM replicas WHERE chunk_id = \(bind: chunk) AND datakeeper_id = \(bind: datakeeper.value)
                    """).run()
                removed += 1
            }
            let pendingRows = try await db.raw("""
                SELECT chunk_id FROM pending_deletions WHERE datakeeper_id = \(bind: datakeeper.value)
                """).all()
            let pending = Set(try pendingRows.map { try $0.decode(column: "chunk_id", as: String.self) })
            for chunk in pending.subtracting(reportedValues) {
                try await db.raw("""
                    DELETE FROM pending_deletions WHERE chunk_id = \(bind: chunk) AND datakeeper_id = \(bind: datakeeper.value)
                    """).run()
            }
            var added = 0
            var unreferenced: [ChunkID] = []
            for chunk in reported.sorted() where !recorded.contains(chunk.value) && !pending.contains(chunk.value) {
                if try await db.raw("SELECT id FROM chunks WHERE id = \(bind: chunk.value)").first() != nil {
                    try await db.raw("""
                        INSERT INTO replicas (chunk_id, datakeeper_id) VALUES (\(bind: chunk.value), \(bind: datakeeper.value))
                        """).run()
                    added += 1
                } else {
                    unreferenced.append(chunk)
                }
            }
            return ReconcileResult(added: added, removed: removed, unreferenced: unreferenced)
        }
    }

    public func pendingDeletions(for datakeeper: DataKeeperID, limit: Int) async throws -> [ChunkID] {
        try await read { db in
            let rows = try await db.raw("""
                SELECT chunk_id FROM pending_deletions WHERE datakeeper_id = \(bind: datakeeper.value)
                ORDER BY chunk_id LIMIT \(bind: limit)
                """).all()
            return try rows.map { try ChunkID($0.decode(column: "chunk_id", as: String.self)) }
        }
    }

    public func deletionsDone(datakeeper: DataKeeperID, chunks: [ChunkID]) async throws {
        guard !chunks.isEmpty else { return }
        try await transaction { db in
            for chunk in chunks {
                try await db.raw("""
                    DELETE FROM pending_deletions WHERE chunk_id = \(bind: chunk.value) AND datakeeper_id = \(bind: datakeeper.value)
                    """).run()
            }
        }
    }

    // MARK: - Replication

    public func chunkPlacements(under path: RemotePath) async throws -> [ChunkPlacement] {
        let prefix = path.childPrefix
        let upper = prefix + "\u{10FFFF}"
        return try await read { db in
            let rows = try await db.raw("""
                SELECT c.id, c.path, c.idx, c.size_bytes, c.crc32c, f.replication, r.datakeeper_id
                FROM chunks c JOIN files f ON f.path = c.path LEFT JOIN replicas r ON r.chunk_id = c.id
                WHERE c.path = \(bind: path.value) OR (c.path >= \(bind: prefix) AND c.path < \(bind: upper))
                ORDER BY c.path, c.idx, r.datakeeper_id
                """).all()
            var placements: [ChunkPlacement] = []
            for row in rows {
                let id = try ChunkID(row.decode(column: "id", as: String.self))
                let replica = try row.decode(column: "datakeeper_id", as: String?.self).map { try DataKeeperID($0) }
                if let last = placements.last, last.state.id == id {
                    if let replica { placements[placements.count - 1].state.replicas.append(replica) }
                    continue
                }
                placements.append(ChunkPlacement(
                    path: try RemotePath(row.decode(column: "path", as: String.self)),
                    index: try row.decode(column: "idx", as: Int.self),
                    state: ChunkReplicaState(
                        id: id, frameBytes: ChunkFrame.frameBytes(dataBytes: try row.decode(column: "size_bytes", as: Int64.self)),
                        crc32c: UInt32(truncatingIfNeeded: try row.decode(column: "crc32c", as: Int64.self)),
                        replicas: replica.map { [$0] } ?? [], replication: try row.decode(column: "replication", as: Int.self))))
            }
            return placements
        }
    }

    public func addReplica(chunk: ChunkID, datakeeper: DataKeeperID) async throws -> Bool {
        try await transaction { db in
            guard try await db.raw("SELECT id FROM chunks WHERE id = \(bind: chunk.value)").first() != nil else { return false }
            try await db.raw("""
                DELETE FROM replicas WHERE chunk_id = \(bind: chunk.value) AND datakeeper_id = \(bind: datakeeper.value)
                """).run()
            // A fresh copy supersedes an older order to delete the chunk there.
            try await db.raw("""
                DELETE FROM pending_deletions WHERE chunk_id = \(bind: chunk.value) AND datakeeper_id = \(bind: datakeeper.value)
                """).run()
            try await db.raw("""
                INSERT INTO replicas (chunk_id, datakeeper_id) VALUES (\(bind: chunk.value), \(bind: datakeeper.value))
                """).run()
            return true
        }
    }

    public func trimReplica(chunk: ChunkID, datakeeper: DataKeeperID, keep: Int, trusted: Set<DataKeeperID>) async throws -> Bool {
        try await transaction { db in
            let rows = try await db.raw("SELECT datakeeper_id FROM replicas WHERE chunk_id = \(bind: chunk.value)").all()
            let holders = Set(try rows.map { try $0.decode(column: "datakeeper_id", as: String.self) })
            guard holders.contains(datakeeper.value) else { return false }
            let others = holders.subtracting([datakeeper.value]).intersection(trusted.map(\.value))
            guard others.count >= keep else { return false }
            try await db.raw("""
                DELETE FROM replicas WHERE chunk_id = \(bind: chunk.value) AND datakeeper_id = \(bind: datakeeper.value)
                """).run()
            try await Self.queueDeletion(chunk, on: datakeeper, db)
            return true
        }
    }

    public func dropReplica(chunk: ChunkID, datakeeper: DataKeeperID, deleteFromDisk: Bool) async throws {
        try await transaction { db in
            try await db.raw("""
                DELETE FROM replicas WHERE chunk_id = \(bind: chunk.value) AND datakeeper_id = \(bind: datakeeper.value)
                """).run()
            if deleteFromDisk {
                try await Self.queueDeletion(chunk, on: datakeeper, db)
            }
        }
    }

    public func deleteUnreferenced(chunks: [ChunkID], on datakeeper: DataKeeperID) async throws -> Int {
        try await transaction { db in
            var queued = 0
            for chunk in chunks {
                guard try await db.raw("SELECT id FROM chunks WHERE id = \(bind: chunk.value)").first() == nil else { continue }
                try await Self.queueDeletion(chunk, on: datakeeper, db)
                queued += 1
            }
            return queued
        }
    }

    private static func queueDeletion(_ chunk: ChunkID, on datakeeper: DataKeeperID, _ db: any SQLDatabase) async throws {
        try await db.raw("""
            DELETE FROM pending_deletions WHERE chunk_id = \(bind: chunk.value) AND datakeeper_id = \(bind: datakeeper.value)
            """).run()
        try await db.raw("""
            INSERT INTO pending_deletions (chunk_id, datakeeper_id) VALUES (\(bind: chunk.value), \(bind: datakeeper.value))
            """).run()
    }

    public func datakeepersHoldingReplicas() async throws -> Set<DataKeeperID> {
        try await read { db in
            let rows = try await db.raw("SELECT DISTINCT datakeeper_id FROM replicas").all()
            return Set(try rows.map { try DataKeeperID($0.decode(column: "datakeeper_id", as: String.self)) })
        }
    }

    public func pendingDeletionCounts() async throws -> [DataKeeperID: Int] {
        try await read { db in
            let rows = try await db.raw("""
                SELECT datakeeper_id, COUNT(*) AS pending FROM pending_deletions GROUP BY datakeeper_id
                """).all()
            var counts: [DataKeeperID: Int] = [:]
            for row in rows {
                counts[try DataKeeperID(row.decode(column: "datakeeper_id", as: String.self))] = try row.decode(column: "pending", as: Int.self)
            }
            return counts
        }
    }
}
