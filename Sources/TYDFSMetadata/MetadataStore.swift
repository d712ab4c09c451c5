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
    /// What the writer said about the file beyond its bytes (the S3 gateway's content type,
    /// user metadata and MD5 ETag); empty for most files.
    public var attributes: [String: String]
    /// The id the client gave the put that committed the file (`CreateUploadRequest.commitID`),
    /// so a put retried after a failover is recognised as done.
    public var commitID: String?

    public init(path: RemotePath, sizeBytes: Int64, mtimeMillis: Int64, crc32c: UInt32, chunkSizeBytes: Int64,
                replication: Int, chunks: [StoredChunk], attributes: [String: String] = [:], commitID: String? = nil) {
        self.attributes = attributes
        self.commitID = commitID
        self.path = path
        self.sizeBytes = sizeBytes
        self.mtimeMillis = mtimeMillis
        self.crc32c = crc32c
        self.chunkSizeBytes = chunkSizeBytes
        self.replication = replication
        self.chunks = chunks
    }
}

/// A directory made on its own (`mkdir`, an S3 bucket), as a store holds it.
public struct MadeDirectory: Sendable, Equatable {
    public var path: RemotePath
    public var mtimeMillis: Int64
    /// Empty when it has none.
    public var attributes: [String: String]

    public init(path: RemotePath, mtimeMillis: Int64, attributes: [String: String]) {
        self.path = path
        self.mtimeMillis = mtimeMillis
        self.attributes = attributes
    }
}

/// The master's durable metadata: the namespace, each file's chunks, where the replicas are,
/// and which replicas still have to be deleted. The master keeps all of it in memory (`Namespace`)
/// and uses the store as its durable record: loaded once at start, then written in batches.
///
/// `apply` is atomic and durable: a crash (even `kill -9`) leaves either the state before the
/// batch or the state after it. Implementations share their SQL (see `SQLMetadataStore`) so that
/// SQLite and, later, PostgreSQL behave the same.
public protocol MetadataStore: Sendable {
    /// The longest path (in UTF-8 bytes, at most `Limits.maxPathBytes`) the store can keep.
    var maxPathBytes: Int { get }
    /// Feeds every stored file (with its chunks and replicas), every directory made on its own
    /// (with its mtime and attributes) and every queued deletion to the callbacks, one at a time, in no
    /// particular order.
    func load(
        file: @escaping @Sendable (StoredFile) -> Void, directory: @escaping @Sendable (MadeDirectory) -> Void,
        deletion: @escaping @Sendable (ChunkID, DataKeeperID) -> Void
    ) async throws
    /// Writes `edits`, in order, in one transaction, and returns once it is durable.
    func apply(_ edits: [MetadataEdit]) async throws
    func close() async throws
}

extension MetadataStore {
    /// A namespace holding everything in the store.
    /// Throws when the store holds entries that cannot stand together (see `Namespace.load`).
    public func loadNamespace() async throws -> Namespace {
        let loader = NamespaceLoader()
        try await load(
            file: { file in loader.capture { try loader.namespace.load(file) } },
            directory: { made in loader.capture { try loader.namespace.loadDirectory(made) } },
            deletion: { chunk, datakeeper in loader.capture { loader.namespace.apply(.queueDeletion(chunk, datakeeper), sequence: 0) } })
        if let failure = loader.failure { throw failure }
        return loader.namespace
    }
}

/// Builds a namespace from the rows a store streams at start-up, keeping the first entry that
/// could not be loaded. The store calls its callbacks one after another, never at once, which
/// is what makes the unchecked Sendable safe here.
private final class NamespaceLoader: @unchecked Sendable {
    let namespace = Namespace()
    private(set) var failure: (any Error)?

    func capture(_ body: () throws -> Void) {
        guard failure == nil else { return }
        do { try body() } catch { failure = error }
    }
}
