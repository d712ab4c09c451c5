import TYDFSCore

/// One chunk of a committed file as the metadata keeps it.
public struct StoredChunk: Equatable, Sendable {
    public var index: Int
    public var id: ChunkID
    public var sizeBytes: Int64
    public var crc32c: UInt32
    /// Datakeepers believed to hold a good copy.
    public var replicas: [DataKeeperID]

    public init(index: Int, id: ChunkID, sizeBytes: Int64, crc32c: UInt32, replicas: [DataKeeperID]) {
        self.index = index
        self.id = id
        self.sizeBytes = sizeBytes
        self.crc32c = crc32c
        self.replicas = replicas
    }
}

/// A committed file as the metadata keeps it.
public struct StoredFile: Equatable, Sendable {
    public var path: RemotePath
    public var sizeBytes: Int64
    public var mtimeMillis: Int64
    public var crc32c: UInt32
    public var chunkSizeBytes: Int64
    public var replication: Int
    public var chunks: [StoredChunk]

    public init(path: RemotePath, sizeBytes: Int64, mtimeMillis: Int64, crc32c: UInt32, chunkSizeBytes: Int64,
                replication: Int, chunks: [StoredChunk]) {
        self.path = path
        self.sizeBytes = sizeBytes
        self.mtimeMillis = mtimeMillis
        self.crc32c = crc32c
        self.chunkSizeBytes = chunkSizeBytes
        self.replication = replication
        self.chunks = chunks
    }
}

/// A file's path, size and time, without its chunks: what a listing needs.
public struct FileSummary: Equatable, Sendable {
    public var path: RemotePath
    public var sizeBytes: Int64
    public var mtimeMillis: Int64
}

/// What a datakeeper's chunk report changed in the replica map.
public struct ReconcileResult: Equatable, Sendable {
    /// Replicas the metadata did not know of and now records.
    public var added: Int
    /// Replicas the metadata recorded but the datakeeper no longer has.
    public var removed: Int
    /// Reported chunks that no file references and no deletion is pending for.
    public var unreferenced: [ChunkID]

    public init(added: Int, removed: Int, unreferenced: [ChunkID]) {
        self.added = added
        self.removed = removed
        self.unreferenced = unreferenced
    }
}

/// The master's persistent metadata: the namespace, each file's chunks, where the replicas are,
/// and which replicas still have to be deleted.
///
/// Every method is atomic: a crash (even `kill -9`) leaves either the state before the call or
/// the state after it. Implementations share their SQL (see `SQLMetadataStore`) so that SQLite and,
/// later, PostgreSQL behave the same.
public protocol MetadataStore: Sendable {
    func file(at path: RemotePath) async throws -> StoredFile?
    /// Files at or below `path`, sorted by path.
    func files(under path: RemotePath) async throws -> [FileSummary]
    /// A file at `path` or one whose path is an ancestor of `path` (a file standing where a
    /// directory would have to be), if there is one.
    func conflictingFile(for path: RemotePath) async throws -> RemotePath?
    /// Makes `file` visible under its path. Fails with `alreadyExists` when the path is taken and
    /// `overwrite` is false; otherwise the replaced file's replicas are queued for deletion.
    func commit(_ file: StoredFile, overwrite: Bool) async throws
    /// Removes the file from the namespace and queues all its replicas for deletion.
    func remove(_ path: RemotePath) async throws -> StoredFile
    /// Makes the replica map agree with a datakeeper's full chunk report.
    func reconcile(datakeeper: DataKeeperID, reported: Set<ChunkID>) async throws -> ReconcileResult
    /// Chunks waiting to be deleted from `datakeeper`.
    func pendingDeletions(for datakeeper: DataKeeperID, limit: Int) async throws -> [ChunkID]
    /// The datakeeper confirmed these chunks are gone.
    func deletionsDone(datakeeper: DataKeeperID, chunks: [ChunkID]) async throws
    /// Every chunk of the files at or below `path` with its recorded replicas, in path and index order.
    func chunkPlacements(under path: RemotePath) async throws -> [ChunkPlacement]
    /// Records that `datakeeper` now holds a good copy of `chunk` (cancelling any queued deletion
    /// of it there). False when no file references the chunk any more.
    func addReplica(chunk: ChunkID, datakeeper: DataKeeperID) async throws -> Bool
    /// Removes an extra replica — only if, at that moment, at least `keep` other replicas of the
    /// chunk are recorded on datakeepers in `trusted`. Returns whether it removed it.
    func trimReplica(chunk: ChunkID, datakeeper: DataKeeperID, keep: Int, trusted: Set<DataKeeperID>) async throws -> Bool
    /// Forgets the replica of `chunk` on `datakeeper`; with `deleteFromDisk`, also queues its deletion there.
    func dropReplica(chunk: ChunkID, datakeeper: DataKeeperID, deleteFromDisk: Bool) async throws
    /// Queues deletion of chunks on `datakeeper` that no file references (checked again here).
    func deleteUnreferenced(chunks: [ChunkID], on datakeeper: DataKeeperID) async throws -> Int
    /// Every datakeeper the replica map names.
    func datakeepersHoldingReplicas() async throws -> Set<DataKeeperID>
    /// Number of chunk deletions waiting, per datakeeper.
    func pendingDeletionCounts() async throws -> [DataKeeperID: Int]
    func close() async throws
}

/// A chunk with its place in the namespace and what the replication manager needs of it.
public struct ChunkPlacement: Equatable, Sendable {
    public var path: RemotePath
    public var index: Int
    public var state: ChunkReplicaState

    public init(path: RemotePath, index: Int, state: ChunkReplicaState) {
        self.path = path
        self.index = index
        self.state = state
    }
}
