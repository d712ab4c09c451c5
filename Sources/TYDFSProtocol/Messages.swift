import TYDFSCore

/// The body of every error response: `{"error": {"code": ..., "message": ...}}`.
public struct ErrorResponse: Codable, Sendable {
    /// The error itself: a stable code for programs and a message for people.
    public struct Body: Codable, Sendable {
        public var code: String
        public var message: String

        public var tydfsError: TYDFSError { TYDFSError(TYDFSError.Code(rawValue: code), message) }
    }
    public var error: Body

    public init(_ error: TYDFSError) {
        self.error = Body(code: error.code.rawValue, message: error.message)
    }

    public var tydfsError: TYDFSError { error.tydfsError }
}

/// What `GET /v1/role` answers: one master's view of leadership (`tydfs masters`).
public struct MasterRole: Codable, Sendable, Equatable {
    /// The URL this master advertises.
    public var url: String
    /// `leader` or `standby` (or `starting`, while a new leader loads the namespace).
    public var role: String
    /// The epoch it leads in, or, for a standby, the latest epoch it has seen.
    public var epoch: LeaderEpoch
    /// Where the leader is, as this master knows it; nil when none leads.
    public var leader: String?

    public init(url: String, role: String, epoch: LeaderEpoch, leader: String?) {
        self.url = url
        self.role = role
        self.epoch = epoch
        self.leader = leader
    }
}

/// A datakeeper's heartbeat: who it is, where it listens, how full and busy it is, and what
/// changed in its holdings since the last heartbeat. Full chunk reports travel separately, in
/// pages (`Route.chunkReport`), when the master asks for one.
public struct HeartbeatRequest: Codable, Sendable {
    public var id: DataKeeperID
    /// Random per process start: a change tells the master the datakeeper restarted (perhaps
    /// with a different disk) even if it never missed a heartbeat timeout.
    public var bootID: String
    public var address: String
    public var capacityBytes: Int64
    public var usedBytes: Int64
    public var chunkCount: Int
    public var inFlight: Int
    public var chunksServed: Int64
    /// The datakeeper wants to send a full report (its report interval has passed).
    public var wantsToReport: Bool
    /// Chunks stored here since the last heartbeat the master answered (after a full report only).
    public var addedChunks: [ChunkID]
    /// Chunks gone from here since the last heartbeat the master answered (after a full report only).
    public var removedChunks: [ChunkID]
    /// Chunks deleted on the master's orders since the last heartbeat.
    public var deletedChunks: [ChunkID]
    /// Chunks found corrupt (and moved aside) or missing since the last heartbeat.
    public var badChunks: [ChunkID]
    /// Copy orders finished since the last heartbeat: the chunk is now stored here.
    public var copiesDone: [ChunkID]
    /// Copy orders that failed since the last heartbeat.
    public var copiesFailed: [CopyFailure]
    /// The datakeeper runs in maintenance mode (`--maintenance`): it wants its chunks copied away,
    /// then to be retired. Absent means false.
    public var maintenance: Bool?

    public init(id: DataKeeperID, bootID: String, address: String, capacityBytes: Int64, usedBytes: Int64, chunkCount: Int,
                inFlight: Int, chunksServed: Int64, wantsToReport: Bool = false, addedChunks: [ChunkID] = [],
                removedChunks: [ChunkID] = [], deletedChunks: [ChunkID],
                badChunks: [ChunkID] = [], copiesDone: [ChunkID] = [], copiesFailed: [CopyFailure] = [], maintenance: Bool? = nil) {
        self.maintenance = maintenance
        self.id = id
        self.bootID = bootID
        self.address = address
        self.capacityBytes = capacityBytes
        self.usedBytes = usedBytes
        self.chunkCount = chunkCount
        self.inFlight = inFlight
        self.chunksServed = chunksServed
        self.wantsToReport = wantsToReport
        self.addedChunks = addedChunks
        self.removedChunks = removedChunks
        self.deletedChunks = deletedChunks
        self.badChunks = badChunks
        self.copiesDone = copiesDone
        self.copiesFailed = copiesFailed
    }
}

/// The master's answer to a heartbeat: orders for the datakeeper.
public struct HeartbeatResponse: Codable, Sendable {
    /// Names this answer; a full report names the answer after which its snapshot was taken.
    public var answerID: UInt64
    /// The master does not know what this datakeeper holds (e.g. it restarted), or agreed to a
    /// report: take a snapshot now and send it in pages.
    public var sendChunkReport: Bool
    /// Chunks this datakeeper must delete (their files were removed or replaced, extra replicas).
    public var deleteChunks: [ChunkID]
    /// Chunks this datakeeper must copy from other datakeepers (re-replication).
    public var copyChunks: [CopyChunkOrder]
    /// Chunks this datakeeper must re-read and verify now (a reader saw a bad copy).
    public var verifyChunks: [ChunkID]
    /// Every chunk this datakeeper holds is at its factor elsewhere: a drained datakeeper may
    /// leave (one in maintenance mode does). Absent means false.
    public var drained: Bool?
    /// The leadership epoch of the master that answered (absent from a lone SQLite master): a
    /// datakeeper ignores the orders of an answer below the highest epoch it has seen.
    public var epoch: LeaderEpoch?

    public init(answerID: UInt64, sendChunkReport: Bool, deleteChunks: [ChunkID], copyChunks: [CopyChunkOrder] = [],
                verifyChunks: [ChunkID] = [], drained: Bool? = nil, epoch: LeaderEpoch? = nil) {
        self.epoch = epoch
        self.drained = drained
        self.answerID = answerID
        self.sendChunkReport = sendChunkReport
        self.deleteChunks = deleteChunks
        self.copyChunks = copyChunks
        self.verifyChunks = verifyChunks
    }
}

/// "Pull this chunk from one of these datakeepers": the seed's replica destination order.
public struct CopyChunkOrder: Codable, Sendable, Equatable {
    public var chunk: ChunkID
    public var dataBytes: Int64
    /// The checksum the copy must have; a source sending anything else is skipped.
    public var crc32c: UInt32
    /// Healthy replicas, best first.
    public var sources: [DataKeeperAddress]
    /// The master's chunk token to pull with (operation replicate).
    public var token: String?

    public init(chunk: ChunkID, dataBytes: Int64, crc32c: UInt32, sources: [DataKeeperAddress], token: String?) {
        self.chunk = chunk
        self.dataBytes = dataBytes
        self.crc32c = crc32c
        self.sources = sources
        self.token = token
    }
}

/// A copy order that did not work out, and why.
public struct CopyFailure: Codable, Sendable, Equatable {
    public var chunk: ChunkID
    public var message: String
    /// Sources that sent bytes not matching the checksum: they should verify their replica.
    public var badSources: [DataKeeperID]

    public init(chunk: ChunkID, message: String, badSources: [DataKeeperID]) {
        self.chunk = chunk
        self.message = message
        self.badSources = badSources
    }
}

/// Opens an upload: the path is checked now, so a bad path fails before any byte moves.
public struct CreateUploadRequest: Codable, Sendable {
    public var path: RemotePath
    public var overwrite: Bool
    /// The file's size, when the client knows it (a local file, bytes in memory): the master then
    /// allocates the first chunk (cut at its chunk size) in the same call, so a one-chunk file
    /// takes two calls to the master (this one and the commit). Nil or 0: no chunk is allocated now.
    public var firstChunkBytes: Int64?
    /// Names this put across its uploads (a client that lost its master mid-put reopens the put
    /// on the new leader with the same id). When the file at `path` was committed with it
    /// already, the answer says so (`UploadSession.committed`) and nothing is written twice.
    public var commitID: String?
    /// Chunks the put stored through an upload it opened earlier (on a master that no longer
    /// leads), each with the write token it was allocated with: this upload adopts them (see
    /// `CommittedChunk.token`), so they are not taken for orphans while the put goes on.
    public var adopt: [CommittedChunk]?

    public init(path: RemotePath, overwrite: Bool, firstChunkBytes: Int64? = nil, commitID: String? = nil, adopt: [CommittedChunk]? = nil) {
        self.path = path
        self.overwrite = overwrite
        self.firstChunkBytes = firstChunkBytes
        self.commitID = commitID
        self.adopt = adopt
    }
}

/// An open upload and the parameters the client must cut the file with.
public struct UploadSession: Codable, Sendable {
    public var uploadID: String
    public var chunkSizeBytes: Int64
    public var replication: Int
    /// The first chunk's id and pipeline, when the request gave `firstChunkBytes`.
    public var firstChunk: ChunkAllocation?
    /// The file, when the request's `commitID` was committed already: the put is done.
    public var committed: FileInfo?

    public init(uploadID: String, chunkSizeBytes: Int64, replication: Int, firstChunk: ChunkAllocation? = nil, committed: FileInfo? = nil) {
        self.committed = committed
        self.uploadID = uploadID
        self.chunkSizeBytes = chunkSizeBytes
        self.replication = replication
        self.firstChunk = firstChunk
    }
}

/// Asks for a new chunk id and the datakeepers to write it to.
public struct AllocateChunkRequest: Codable, Sendable {
    /// Datakeepers the client failed to reach for this chunk; the master picks others.
    public var exclude: [DataKeeperID]
    public var dataBytes: Int64
    /// Chunks the put finished storing through an earlier upload since this one opened: adopted
    /// as `CreateUploadRequest.adopt` are.
    public var adopt: [CommittedChunk]?

    public init(exclude: [DataKeeperID], dataBytes: Int64, adopt: [CommittedChunk]? = nil) {
        self.exclude = exclude
        self.dataBytes = dataBytes
        self.adopt = adopt
    }
}

/// A datakeeper as the client sees it: id and data address.
public struct DataKeeperAddress: Codable, Sendable, Equatable {
    public var id: DataKeeperID
    public var address: String
    public var alive: Bool

    public init(id: DataKeeperID, address: String, alive: Bool) {
        self.id = id
        self.address = address
        self.alive = alive
    }
}

/// Where to write a new chunk: the pipeline, first datakeeper first.
public struct ChunkAllocation: Codable, Sendable {
    public var chunkID: ChunkID
    public var targets: [DataKeeperAddress]
    public var replication: Int
    /// The master's chunk token for writing through exactly this pipeline.
    public var token: String?

    public init(chunkID: ChunkID, targets: [DataKeeperAddress], replication: Int, token: String?) {
        self.chunkID = chunkID
        self.targets = targets
        self.replication = replication
        self.token = token
    }
}

/// A datakeeper's answer to a chunk `PUT`: which datakeepers of the pipeline stored the chunk
/// durably, and what went wrong further down, if anything.
public struct ChunkWriteResult: Codable, Sendable {
    public var stored: [DataKeeperID]
    public var dataBytes: Int64
    public var crc32c: UInt32
    public var failures: [String]

    public init(stored: [DataKeeperID], dataBytes: Int64, crc32c: UInt32, failures: [String]) {
        self.stored = stored
        self.dataBytes = dataBytes
        self.crc32c = crc32c
        self.failures = failures
    }
}

/// One stored chunk of an upload, as the client reports it at commit.
public struct CommittedChunk: Codable, Sendable {
    public var index: Int
    public var id: ChunkID
    public var sizeBytes: Int64
    public var crc32c: UInt32
    public var replicas: [DataKeeperID]
    /// The write token the chunk was allocated with, for a chunk that another upload of the same
    /// put allocated: a master that took over during the put adopts it on this proof.
    public var token: String?

    public init(index: Int, id: ChunkID, sizeBytes: Int64, crc32c: UInt32, replicas: [DataKeeperID], token: String? = nil) {
        self.index = index
        self.id = id
        self.sizeBytes = sizeBytes
        self.crc32c = crc32c
        self.replicas = replicas
        self.token = token
    }
}

/// Makes an upload's file visible, all chunks at once.
public struct CommitUploadRequest: Codable, Sendable {
    public var sizeBytes: Int64
    public var crc32c: UInt32
    public var chunks: [CommittedChunk]
    /// Kept with the file and returned by stat and ls (see `FileInfo.attributes`).
    public var attributes: [String: String]?

    public init(sizeBytes: Int64, crc32c: UInt32, chunks: [CommittedChunk], attributes: [String: String]? = nil) {
        self.sizeBytes = sizeBytes
        self.crc32c = crc32c
        self.chunks = chunks
        self.attributes = attributes
    }
}

/// One chunk of a file, with its replicas in the order a reader should try them.
public struct ChunkInfo: Codable, Sendable {
    public var index: Int
    public var id: ChunkID
    public var sizeBytes: Int64
    public var crc32c: String
    public var replicas: [DataKeeperAddress]
    /// The master's chunk token to read it with; only for a stat that is about to read.
    public var token: String?

    public init(index: Int, id: ChunkID, sizeBytes: Int64, crc32c: String, replicas: [DataKeeperAddress], token: String? = nil) {
        self.index = index
        self.id = id
        self.sizeBytes = sizeBytes
        self.crc32c = crc32c
        self.replicas = replicas
        self.token = token
    }
}

/// Everything known of one file: `tydfs stat --json` prints exactly this.
public struct FileInfo: Codable, Sendable {
    public var path: RemotePath
    public var sizeBytes: Int64
    /// Milliseconds since 1970-01-01 UTC when the file was committed.
    public var mtimeMillis: Int64
    /// `crc32c:` and 8 hex digits, over the whole file.
    public var checksum: String
    public var chunkSizeBytes: Int64
    public var replication: Int
    /// True when some chunk has fewer live replicas than `replication`.
    public var underReplicated: Bool
    public var chunks: [ChunkInfo]
    /// What the writer said about the file beyond its bytes, when it said anything: the S3
    /// gateway keeps `content-type`, `x-amz-meta-*` and the MD5 ETag (`s3-etag`) here.
    public var attributes: [String: String]?

    public init(path: RemotePath, sizeBytes: Int64, mtimeMillis: Int64, checksum: String, chunkSizeBytes: Int64,
                replication: Int, underReplicated: Bool, chunks: [ChunkInfo], attributes: [String: String]? = nil) {
        self.attributes = attributes
        self.path = path
        self.sizeBytes = sizeBytes
        self.mtimeMillis = mtimeMillis
        self.checksum = checksum
        self.chunkSizeBytes = chunkSizeBytes
        self.replication = replication
        self.underReplicated = underReplicated
        self.chunks = chunks
    }
}

/// One line of `tydfs ls`: a file, or a directory implied by the files below it.
public struct ListEntry: Codable, Sendable {
    public var path: String
    public var isDirectory: Bool
    public var sizeBytes: Int64
    public var mtimeMillis: Int64
    /// A file's checksum, as `FileInfo.checksum` (`crc32c:` and 8 hex digits); absent for a
    /// directory. The S3 gateway's ETags come from it.
    public var checksum: String?
    /// A file's attributes (see `FileInfo.attributes`), or a directory's (see
    /// `SetAttributesRequest`), when it has any.
    public var attributes: [String: String]?

    public init(
        path: String, isDirectory: Bool, sizeBytes: Int64, mtimeMillis: Int64, checksum: String? = nil, attributes: [String: String]? = nil
    ) {
        self.attributes = attributes
        self.path = path
        self.isDirectory = isDirectory
        self.sizeBytes = sizeBytes
        self.mtimeMillis = mtimeMillis
        self.checksum = checksum
    }
}

/// `tydfs ls --json`.
public struct ListResponse: Codable, Sendable {
    public var path: String
    public var entries: [ListEntry]
    /// The listed directory's own attributes, when it has any (see `SetAttributesRequest`).
    public var attributes: [String: String]?
    /// The listed directory's own time: the latest change at or below it, a removal or a rename
    /// in it included (nil when a file is listed, or from a master before it was sent).
    public var mtimeMillis: Int64?
    /// How many directories the listed directory holds, answered with its own entry alone
    /// (`Query.entryOnly`); nil otherwise, and from a master before it was sent.
    public var subdirectoryCount: Int?
    /// On a page of a paged listing (`Query.listLimit`) that more entries follow: the name of
    /// its last entry, to ask for the next page with (`Query.listAfter`). Nil on the last page.
    public var nextAfter: String?

    public init(
        path: String, entries: [ListEntry], attributes: [String: String]? = nil, mtimeMillis: Int64? = nil, subdirectoryCount: Int? = nil,
        nextAfter: String? = nil
    ) {
        self.path = path
        self.entries = entries
        self.attributes = attributes
        self.mtimeMillis = mtimeMillis
        self.subdirectoryCount = subdirectoryCount
        self.nextAfter = nextAfter
    }

    /// The listed path's own entry when it is a file: a file lists as itself, alone (a
    /// directory lists its children, or itself with `Query.entryOnly`).
    public var file: ListEntry? {
        guard entries.count == 1, let only = entries.first, only.path.equalsByteWise(path), !only.isDirectory else { return nil }
        return only
    }
}

/// Where a datakeeper is in its life, as the master sees it.
public enum DataKeeperStatus: String, Codable, Sendable, CaseIterable {
    /// Heartbeating, and taking new chunks.
    case alive
    /// Silent for longer than the heartbeat timeout, or left.
    case dead
    /// Alive, takes no new chunks; its chunks are being copied to others (`tydfs drain`).
    case draining
    /// Drained: every chunk it holds is at its factor elsewhere; it may be switched off.
    case retired
}

/// One row of `tydfs nodes`.
public struct NodeInfo: Codable, Sendable {
    public var id: DataKeeperID
    public var address: String
    public var alive: Bool
    public var state: DataKeeperStatus
    public var inFlight: Int
    public var capacityBytes: Int64
    public var usedBytes: Int64
    public var chunkCount: Int
    public var chunksServed: Int64
    public var secondsSinceHeartbeat: Double
    /// Re-replication copies this datakeeper is taking part in (as source or destination).
    public var repairCopies: Int
    /// Chunks waiting to be deleted from it.
    public var pendingDeletions: Int

    public init(id: DataKeeperID, address: String, alive: Bool, state: DataKeeperStatus, inFlight: Int, capacityBytes: Int64, usedBytes: Int64,
                chunkCount: Int, chunksServed: Int64, secondsSinceHeartbeat: Double, repairCopies: Int, pendingDeletions: Int) {
        self.id = id
        self.address = address
        self.alive = alive
        self.state = state
        self.inFlight = inFlight
        self.capacityBytes = capacityBytes
        self.usedBytes = usedBytes
        self.chunkCount = chunkCount
        self.chunksServed = chunksServed
        self.secondsSinceHeartbeat = secondsSinceHeartbeat
        self.repairCopies = repairCopies
        self.pendingDeletions = pendingDeletions
    }
}

/// `tydfs nodes --json`.
public struct NodesResponse: Codable, Sendable {
    public var heartbeatTimeoutSeconds: Double
    public var nodes: [NodeInfo]

    public init(heartbeatTimeoutSeconds: Double, nodes: [NodeInfo]) {
        self.heartbeatTimeoutSeconds = heartbeatTimeoutSeconds
        self.nodes = nodes
    }
}

/// `tydfs mv`: rename a file or a directory (with everything below it). When `to` is an
/// existing directory, the source moves into it, as `mv` does.
public struct RenameRequest: Codable, Sendable {
    public var from: RemotePath
    public var to: RemotePath
    /// As `rename(2)` (a mount), not `mv`: `to` is the new path itself, and a file there is
    /// replaced by a file, or an empty directory by a directory, in the same batch. Nil: false.
    public var replace: Bool?

    public init(from: RemotePath, to: RemotePath, replace: Bool? = nil) {
        self.from = from
        self.to = to
        self.replace = replace
    }
}

/// Joins `sources`, in order, into one file at `target` by moving their chunks (no byte is
/// copied) and removes the sources: how the S3 gateway completes a multipart upload. Every
/// source but the last must be one chunk of one size, and the last one chunk no larger, so the
/// result has a chunk size of its own; otherwise the master refuses and the caller copies.
public struct ConcatenateRequest: Codable, Sendable {
    public var sources: [RemotePath]
    public var target: RemotePath
    public var overwrite: Bool
    /// The joined file's attributes (see `FileInfo.attributes`).
    public var attributes: [String: String]?

    public init(sources: [RemotePath], target: RemotePath, overwrite: Bool, attributes: [String: String]? = nil) {
        self.attributes = attributes
        self.sources = sources
        self.target = target
        self.overwrite = overwrite
    }
}

/// Several stats in one request (`POST /v1/files/lookup`). A client coalesces the stats its
/// callers make at the same time (its `RequestCoalescer`), so a busy client pays one HTTP exchange
/// for a batch of lookups instead of one per file, as a master's group commit pays one fsync for
/// a batch of commits. Each item is answered and authorized on its own.
public struct LookupRequest: Codable, Sendable {
    /// One file to look up.
    public struct Item: Codable, Sendable, Equatable {
        public var path: RemotePath
        /// As `Query.inspect` on a single stat: the caller only looks, so no read tokens.
        public var inspect: Bool?

        public init(path: RemotePath, inspect: Bool) {
            self.path = path
            self.inspect = inspect ? true : nil
        }
    }

    /// At most `Limits.maxLookupsPerRequest`.
    public var items: [Item]

    public init(items: [Item]) { self.items = items }
}

/// The answers to a `LookupRequest`, in its order: each the file, or the error a single stat of
/// it would have given (not found, forbidden, …).
public struct LookupResponse: Codable, Sendable {
    /// One file's answer: the file, or why not.
    public struct Answer: Codable, Sendable {
        public var file: FileInfo?
        public var error: ErrorResponse.Body?

        public init(_ result: Result<FileInfo, TYDFSError>) {
            switch result {
            case .success(let info): file = info
            case .failure(let failure): error = ErrorResponse(failure).error
            }
        }

        /// The answer as a single stat gives it: the file, or its error thrown.
        public func get() throws -> FileInfo {
            if let file { return file }
            if let error { throw error.tydfsError }
            throw TYDFSError(.protocolViolation, "the master answered a lookup with neither a file nor an error")
        }
    }

    public var answers: [Answer]

    public init(answers: [Answer]) { self.answers = answers }
}

/// One item's answer in a batched call (`OpenUploadsResponse`, `CommitUploadsResponse`): what
/// the call for that item alone would have returned, or the error it would have given.
public struct BatchAnswer<Value: Codable & Sendable>: Codable, Sendable {
    public var value: Value?
    public var error: ErrorResponse.Body?

    public init(_ result: Result<Value, TYDFSError>) {
        switch result {
        case .success(let value): self.value = value
        case .failure(let failure): error = ErrorResponse(failure).error
        }
    }

    /// The answer as the single call gives it: the value, or its error thrown.
    public func get() throws -> Value {
        if let value { return value }
        if let error { throw error.tydfsError }
        throw TYDFSError(.protocolViolation, "the master answered an item of a batch with neither a value nor an error")
    }
}

/// A batched call: the items of several callers made at the same time, sent together as stats
/// share a lookup (`tydfs bench`, `put -r` and the S3 gateway make many puts at once). Each item
/// is authorized and answered on its own (`BatchResponse`, in the same order). At most
/// `Limits.maxUploadsPerBatch` items.
public struct BatchRequest<Item: Codable & Sendable>: Codable, Sendable {
    public var items: [Item]

    public init(items: [Item]) { self.items = items }
}

/// The answers to a `BatchRequest`, one per item, in order.
public struct BatchResponse<Value: Codable & Sendable>: Codable, Sendable {
    public var answers: [BatchAnswer<Value>]

    public init(answers: [BatchAnswer<Value>]) { self.answers = answers }
}

/// `POST` `Route.openUploads`: each item is the `CreateUploadRequest` its put would have sent
/// alone (`POST /v1/uploads`).
public typealias OpenUploadsRequest = BatchRequest<CreateUploadRequest>
public typealias OpenUploadsResponse = BatchResponse<UploadSession>

/// One commit of a `CommitUploadsRequest`: what `POST /v1/uploads/ID/commit` would have sent.
public struct UploadCommit: Codable, Sendable {
    public var uploadID: String
    public var commit: CommitUploadRequest

    public init(uploadID: String, commit: CommitUploadRequest) {
        self.uploadID = uploadID
        self.commit = commit
    }
}

/// `POST` `Route.commitUploads`: the commits share the master's group commit, and each is
/// answered once durable, or with its own error.
public typealias CommitUploadsRequest = BatchRequest<UploadCommit>
public typealias CommitUploadsResponse = BatchResponse<FileInfo>

/// Changes what is kept about a file or a directory beside its bytes (`utimensat`, `chmod` and
/// `chown` through `tydfs mount`): a file's bytes and chunks stay as they are.
public struct SetAttributesRequest: Codable, Sendable {
    public var path: RemotePath
    /// A file's new modification time (milliseconds since 1970-01-01 UTC); nil keeps it. A
    /// directory's time is that of its newest entry, and this does not change it.
    public var mtimeMillis: Int64?
    /// Attributes to keep, laid over those kept already; an empty value removes that one.
    public var attributes: [String: String]?

    public init(path: RemotePath, mtimeMillis: Int64? = nil, attributes: [String: String]? = nil) {
        self.path = path
        self.mtimeMillis = mtimeMillis
        self.attributes = attributes
    }
}

/// `tydfs mkdir`: make a directory that exists while empty. Its parents are made as needed;
/// `parents` (`mkdir -p`) also accepts a directory that already exists.
public struct MakeDirectoryRequest: Codable, Sendable {
    public var path: RemotePath
    public var parents: Bool
    /// Kept with a directory this makes (`mkdir` through a mount keeps its mode and owner here).
    public var attributes: [String: String]?

    public init(path: RemotePath, parents: Bool, attributes: [String: String]? = nil) {
        self.path = path
        self.parents = parents
        self.attributes = attributes
    }
}

/// What `mkdir` or `rmdir` did to the directory at `path`.
public struct DirectoryResponse: Codable, Sendable, Equatable {
    public var path: String
    /// mkdir: false when the directory was there already (`parents` only); rmdir: always false.
    public var created: Bool

    public init(path: String, created: Bool) {
        self.path = path
        self.created = created
    }
}

/// What a rename did: the path the source has now and how many files moved with it.
public struct RenameResponse: Codable, Sendable, Equatable {
    public var from: String
    public var to: String
    public var files: Int

    public init(from: String, to: String, files: Int) {
        self.from = from
        self.to = to
        self.files = files
    }
}

/// A reader's report that a replica sent bytes not matching the chunk's checksum.
public struct BadReplicaReport: Codable, Sendable {
    public var chunk: ChunkID
    public var datakeeper: DataKeeperID
    public var message: String

    public init(chunk: ChunkID, datakeeper: DataKeeperID, message: String) {
        self.chunk = chunk
        self.datakeeper = datakeeper
        self.message = message
    }
}

/// One chunk that is not as it should be, in `tydfs fsck`.
public struct FsckProblem: Codable, Sendable {
    /// `under_replicated`, `missing`, `over_replicated` or `corrupt`.
    public var status: String
    public var path: RemotePath
    public var chunkIndex: Int
    public var chunk: ChunkID
    public var liveReplicas: Int
    public var replication: Int
    public var detail: String

    public init(status: String, path: RemotePath, chunkIndex: Int, chunk: ChunkID, liveReplicas: Int, replication: Int, detail: String) {
        self.status = status
        self.path = path
        self.chunkIndex = chunkIndex
        self.chunk = chunk
        self.liveReplicas = liveReplicas
        self.replication = replication
        self.detail = detail
    }
}

/// `tydfs fsck --json`: the health of the namespace at or below `path`.
public struct FsckReport: Codable, Sendable {
    public var path: String
    public var files: Int
    public var chunks: Int
    public var healthyChunks: Int
    public var underReplicatedChunks: Int
    public var overReplicatedChunks: Int
    public var missingChunks: Int
    /// Replicas found corrupt that are not yet replaced.
    public var corruptReplicas: Int
    /// Files with at least one missing chunk.
    public var filesWithMissingData: [RemotePath]
    public var problems: [FsckProblem]
    /// True when no data is missing (the exit code of `tydfs fsck`).
    public var healthy: Bool

    public init(path: String, files: Int, chunks: Int, healthyChunks: Int, underReplicatedChunks: Int, overReplicatedChunks: Int,
                missingChunks: Int, corruptReplicas: Int, filesWithMissingData: [RemotePath], problems: [FsckProblem], healthy: Bool) {
        self.path = path
        self.files = files
        self.chunks = chunks
        self.healthyChunks = healthyChunks
        self.underReplicatedChunks = underReplicatedChunks
        self.overReplicatedChunks = overReplicatedChunks
        self.missingChunks = missingChunks
        self.corruptReplicas = corruptReplicas
        self.filesWithMissingData = filesWithMissingData
        self.problems = problems
        self.healthy = healthy
    }
}

/// `GET /v1/cluster`: the whole cluster at a glance, for the dashboard and `/metrics`.
public struct ClusterSummary: Codable, Sendable {
    public var safeMode: Bool
    public var heartbeatTimeoutSeconds: Double
    public var replication: Int
    /// Sums over live datakeepers.
    public var capacityBytes: Int64
    public var usedBytes: Int64
    public var files: Int
    public var chunks: Int
    /// Chunks with at least one live replica but fewer than their factor.
    public var underReplicatedChunks: Int
    /// Chunks with no live replica.
    public var missingChunks: Int
    /// Re-replication copies ordered and not yet finished.
    public var repairsInFlight: Int
    public var datakeepers: [NodeInfo]

    public init(safeMode: Bool, heartbeatTimeoutSeconds: Double, replication: Int, capacityBytes: Int64, usedBytes: Int64,
                files: Int, chunks: Int, underReplicatedChunks: Int, missingChunks: Int, repairsInFlight: Int, datakeepers: [NodeInfo]) {
        self.safeMode = safeMode
        self.heartbeatTimeoutSeconds = heartbeatTimeoutSeconds
        self.replication = replication
        self.capacityBytes = capacityBytes
        self.usedBytes = usedBytes
        self.files = files
        self.chunks = chunks
        self.underReplicatedChunks = underReplicatedChunks
        self.missingChunks = missingChunks
        self.repairsInFlight = repairsInFlight
        self.datakeepers = datakeepers
    }
}

/// Something that happened to the cluster, for the dashboard's live feed.
public struct ClusterEvent: Codable, Sendable, Equatable {
    /// Increasing from 1 with every event since the master started.
    public var id: Int
    /// Milliseconds since 1970-01-01 UTC.
    public var timeMillis: Int64
    public var kind: ClusterEventKind
    public var message: String

    public init(id: Int, timeMillis: Int64, kind: ClusterEventKind, message: String) {
        self.id = id
        self.timeMillis = timeMillis
        self.kind = kind
        self.message = message
    }
}

/// The kinds of `ClusterEvent`, as they appear on the wire.
public enum ClusterEventKind: String, Codable, Sendable, CaseIterable {
    case datakeeperJoined = "datakeeper-joined"
    case datakeeperDead = "datakeeper-dead"
    case datakeeperReturned = "datakeeper-returned"
    case datakeeperLeft = "datakeeper-left"
    case repair
    case corruptReplica = "corrupt-replica"
    case drainStarted = "drain-started"
    case drainFinished = "drain-finished"
}

/// `GET /v1/events?after=N`: the events after `N` the master still keeps, oldest first.
public struct EventsResponse: Codable, Sendable {
    /// The newest event's id (0 before the first): the next request's `after`.
    public var latest: Int
    public var events: [ClusterEvent]

    public init(latest: Int, events: [ClusterEvent]) {
        self.latest = latest
        self.events = events
    }
}

/// `POST /v1/leave`: a datakeeper shutting down says so, so repair need not wait for the
/// heartbeat timeout.
public struct LeaveRequest: Codable, Sendable {
    public var id: DataKeeperID

    public init(id: DataKeeperID) { self.id = id }
}

/// What `POST /v1/datakeepers/ID/drain` answers, and what `tydfs drain` polls.
public struct DrainStatus: Codable, Sendable, Equatable {
    public var id: DataKeeperID
    public var state: DataKeeperStatus
    /// Chunks on it that are not yet at their factor on other live datakeepers.
    public var chunksRemaining: Int
    /// Why the drain cannot finish now, when the master can tell (too few datakeepers left).
    public var blockedBy: String?

    public init(id: DataKeeperID, state: DataKeeperStatus, chunksRemaining: Int, blockedBy: String? = nil) {
        self.id = id
        self.state = state
        self.chunksRemaining = chunksRemaining
        self.blockedBy = blockedBy
    }
}
