import TYDFSCore

/// Route paths and header names of the TYDFS HTTP protocol, shared by servers and the client so
/// the two can never disagree about them.
public enum Route {
    // Master
    public static let heartbeat = "/v1/heartbeat"
    /// `POST` one page of a datakeeper's full chunk report: `ChunkIDList` bytes, described by the
    /// `Header.report*` headers.
    public static let chunkReport = "/v1/chunk-report"
    public static let uploads = "/v1/uploads"
    public static func uploadChunks(_ uploadID: String) -> String { "/v1/uploads/\(uploadID)/chunks" }
    public static func uploadCommit(_ uploadID: String) -> String { "/v1/uploads/\(uploadID)/commit" }
    public static func upload(_ uploadID: String) -> String { "/v1/uploads/\(uploadID)" }
    /// `POST` an `OpenUploadsRequest`: several puts opened at once (`OpenUploadsResponse`).
    public static let openUploads = "/v1/batch/uploads"
    /// `POST` a `CommitUploadsRequest`: several uploads committed at once (`CommitUploadsResponse`).
    public static let commitUploads = "/v1/batch/commits"
    public static func uploadRenew(_ uploadID: String) -> String { "/v1/uploads/\(uploadID)/renew" }
    /// `GET` (stat, with read order), `DELETE` (rm); the path is in the `path` query item.
    public static let files = "/v1/files"
    /// `POST` a `LookupRequest`: several stats at once (`LookupResponse`).
    public static let lookup = "/v1/files/lookup"
    /// `GET ?path=` — one level of the namespace.
    public static let list = "/v1/list"
    /// `POST` a `RenameRequest`: an atomic rename in the namespace.
    public static let rename = "/v1/rename"
    /// `POST` a `SetAttributesRequest`: a file's mtime, as `touch -d` or `rsync -a` sets it, and
    /// the attributes of a file or directory (a mount's mode and owner); answered with its `ListEntry`.
    public static let attributes = "/v1/attributes"
    /// `POST` a `ConcatenateRequest`: one file made of others' chunks (S3 multipart completion).
    public static let concatenate = "/v1/concatenate"
    /// `POST` a `MakeDirectoryRequest` (mkdir); `DELETE ?path=` removes an empty directory (rmdir).
    public static let directories = "/v1/directories"
    public static let nodes = "/v1/nodes"
    /// `GET` — `ClusterSummary`, for the dashboard.
    public static let cluster = "/v1/cluster"
    /// `GET ?after=N` — `EventsResponse`.
    public static let events = "/v1/events"
    /// `GET ?path=` — the file's bytes, verified chunk by chunk (the dashboard's download link).
    public static let content = "/v1/content"
    /// `POST` a `LeaveRequest`: a datakeeper going away.
    public static let leave = "/v1/leave"
    /// `POST` starts draining a datakeeper, `GET` tells how far it is (`DrainStatus`).
    public static func drain(_ id: String) -> String { "/v1/datakeepers/\(id)/drain" }
    /// `GET` lists the access keys (`KeyList`), `POST` a `CreateKeyRequest` makes one; admin only.
    public static let keys = "/v1/keys"
    /// `DELETE` revokes an access key (admin only); `GET` returns it whole, secret included, to
    /// the cluster's own parties only (the S3 gateway).
    public static func key(_ id: String) -> String { "/v1/keys/\(id)" }
    /// `GET` on every component: Prometheus metrics in the text format.
    public static let metrics = "/metrics"
    /// `GET` on the master: the web dashboard.
    public static let dashboard = "/"
    public static let health = "/v1/health"
    /// `GET` on every component: 200 while the process serves requests (liveness).
    public static let healthz = "/healthz"
    /// `GET` on every component: 200 when it is ready for work (the master has left safe mode;
    /// the datakeeper's last heartbeat was answered), else 503 saying why (readiness).
    public static let readyz = "/readyz"
    /// `GET` on a master, without credentials: `MasterRole`, whether it leads and in which epoch
    /// (`tydfs masters`).
    public static let role = "/v1/role"
    /// `POST` a `BadReplicaReport`.
    public static let badReplicas = "/v1/bad-replicas"
    /// `GET ?path=` — `FsckReport`.
    public static let fsck = "/v1/fsck"

    // DataKeeper
    /// `PUT` a chunk's frame (see `ChunkFrame`); `GET` it, or with `Query.rangeOffset` and
    /// `Query.rangeLength` the frame of a block-aligned range of it.
    public static func chunk(_ id: String) -> String { "/v1/chunks/\(id)" }
    /// `PUT` the frames of several small chunks going down the same pipeline, one after another
    /// (`Header.chunks` lists them, `Header.forward` as for one chunk): the small files of a
    /// `put -r` or `bench` share one request per hop. Answered with a
    /// `BatchResponse<ChunkWriteResult>`, each chunk on its own. `GET` several small chunks
    /// whole (`Header.chunks` lists them with their read tokens and the sizes the caller
    /// expects): a `get` of many small files reads them in one request per datakeeper. Answered
    /// 200 with `Header.chunkStatuses` and, one after another, the frames of the chunks served.
    public static let chunkBatch = "/v1/chunk-batch"
    /// `GET` the frame of `range` of chunk `id`.
    public static func chunk(_ id: String, range: ChunkRange) -> String {
        "/v1/chunks/\(id)?\(Query.rangeOffset)=\(range.offset)&\(Query.rangeLength)=\(range.length)"
    }
}

/// Query item names of the data path.
public enum Query {
    /// On a chunk `GET`: the first data byte of the range, a multiple of `ChunkFrame.blockBytes`.
    public static let rangeOffset = "offset"
    /// On a chunk `GET`: the range's length, whole blocks or up to the chunk's end.
    public static let rangeLength = "length"
    /// On a stat (`GET /v1/files`): `true` when the caller only looks (the dashboard, `tydfs
    /// stat`) and will not read the file, so the datakeepers are not counted busier for it.
    public static let inspect = "inspect"
    /// On a listing (`GET /v1/list`): `true` to answer the path's own entry instead of its
    /// children, with a directory's `ListResponse.subdirectoryCount` (the mount's `getattr`,
    /// which would otherwise fetch a whole directory to describe it).
    public static let entryOnly = "entry"
    /// On a listing: the most entries to answer (a page), capped at `Limits.maxListPageEntries`;
    /// without it, every entry at once, as masters did before listings were paged.
    public static let listLimit = "limit"
    /// On a paged listing: answer only the entries whose names sort after this one (the
    /// previous page's `ListResponse.nextAfter`).
    public static let listAfter = "after"
}

/// HTTP header names of the data path.
public enum Header {
    /// On a standby master's 307 answer: the URL of the master that leads.
    public static let leader = "X-TYDFS-Leader"
    /// On every request of one client operation, and on its answers: the operation's
    /// `RequestID`, the de facto standard header name.
    public static let requestID = "X-Request-ID"
    /// On a chunk `PUT`: the datakeepers still to receive the chunk after this one, in order,
    /// as `id=host:port` separated by commas (the HDFS-style write pipeline).
    public static let forward = "X-TYDFS-Forward"
    /// On a chunk batch `PUT`: its chunks, in the order of their frames (`BatchedChunk.encode`);
    /// on a chunk batch `GET`: the chunks to read, with their read tokens.
    public static let chunks = "X-TYDFS-Chunks"
    /// On a chunk batch `GET`'s answer: for each chunk asked, in order, its own HTTP status
    /// (`ChunkStatusList`): 200 when served, else the error a `GET` of it alone would have had,
    /// or 400 when it is held at another size than asked; the body holds the frame of each one
    /// answered 200, in the same order.
    public static let chunkStatuses = "X-TYDFS-Chunk-Statuses"
    /// On a chunk `PUT` and `GET`: the master's `ChunkToken` allowing it.
    public static let chunkToken = "X-TYDFS-Token"
    /// On a chunk `PUT` and a chunk `GET`'s answer: the number of data bytes in the frame
    /// (without the checksums that follow them).
    public static let dataBytes = "X-TYDFS-Data-Bytes"
    /// On a chunk report page: the datakeeper sending it.
    public static let dataKeeper = "X-TYDFS-DataKeeper"
    /// On a chunk report page: the report's id, the same on all its pages.
    public static let reportID = "X-TYDFS-Report"
    /// On a chunk report page: the page's number, from 0.
    public static let reportPage = "X-TYDFS-Report-Page"
    /// On a chunk report page: `true` on the last page.
    public static let reportLastPage = "X-TYDFS-Report-Last"
    /// On a chunk report page: the id of the heartbeat answer after which the snapshot was taken.
    public static let reportAnchor = "X-TYDFS-Report-Anchor"
}

/// The value of `Header.chunkStatuses`: HTTP status codes separated by commas.
public enum ChunkStatusList {
    public static func encode(_ statuses: [Int]) -> String { statuses.map(String.init).joined(separator: ",") }

    public static func decode(_ text: String) -> [Int]? {
        var statuses: [Int] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let status = Int(part), (100...599).contains(status) else { return nil }
            statuses.append(status)
        }
        return statuses
    }
}

/// Chunk ids as bytes, 16 per id (the high then the low 64 bits, big-endian): a page of a full
/// chunk report, about half the size of JSON and read without a parser.
public enum ChunkIDList {
    public static let bytesPerID = 16

    public static func encode<C: Collection>(_ ids: C) -> [UInt8] where C.Element == ChunkID {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ids.count * bytesPerID)
        for id in ids {
            for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: id.high >> UInt64(shift))) }
            for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: id.low >> UInt64(shift))) }
        }
        return bytes
    }

    public static func decode(_ bytes: UnsafeRawBufferPointer) throws -> [ChunkID] {
        guard bytes.count % bytesPerID == 0 else {
            throw TYDFSError(.invalidArgument, "a chunk id list is a multiple of \(bytesPerID) bytes long, not \(bytes.count)")
        }
        var ids: [ChunkID] = []
        ids.reserveCapacity(bytes.count / bytesPerID)
        var offset = 0
        while offset < bytes.count {
            var high: UInt64 = 0, low: UInt64 = 0
            for index in 0..<8 { high = high << 8 | UInt64(bytes[offset + index]) }
            for index in 8..<16 { low = low << 8 | UInt64(bytes[offset + index]) }
            ids.append(ChunkID(high: high, low: low))
            offset += bytesPerID
        }
        return ids
    }
}

/// One hop of a write pipeline: who the datakeeper is and where to reach it.
public struct PipelineHop: Equatable, Sendable {
    public var id: String
    public var address: String

    public init(id: String, address: String) {
        self.id = id
        self.address = address
    }

    /// `id=host:port,id=host:port` — the value of `Header.forward`.
    public static func encode(_ hops: [PipelineHop]) -> String {
        hops.map { "\($0.id)=\($0.address)" }.joined(separator: ",")
    }

    public static func decode(_ text: String) -> [PipelineHop]? {
        if text.isEmpty { return [] }
        var hops: [PipelineHop] = []
        for part in text.utf8.split(separator: UInt8(ascii: ",")) {
            let pieces = part.split(separator: UInt8(ascii: "="), maxSplits: 1)
            guard pieces.count == 2, !pieces[0].isEmpty, !pieces[1].isEmpty else { return nil }
            hops.append(PipelineHop(id: String(Substring(pieces[0])), address: String(Substring(pieces[1]))))
        }
        return hops
    }
}

/// One chunk of a chunk batch (`Route.chunkBatch`): its id, its data size, and the master's
/// token for it (each chunk of a batch is allowed on its own): a write token on a `PUT`, a read
/// token on a `GET`.
public struct BatchedChunk: Equatable, Sendable {
    public var chunk: ChunkID
    public var dataBytes: Int64
    public var token: String

    public init(chunk: ChunkID, dataBytes: Int64, token: String) {
        self.chunk = chunk
        self.dataBytes = dataBytes
        self.token = token
    }

    /// `id:dataBytes:token,id:dataBytes:token` — the value of `Header.chunks` (tokens hold
    /// neither `:` nor `,`).
    public static func encode(_ chunks: [BatchedChunk]) -> String {
        chunks.map { "\($0.chunk.value):\($0.dataBytes):\($0.token)" }.joined(separator: ",")
    }

    public static func decode(_ text: String) -> [BatchedChunk]? {
        var chunks: [BatchedChunk] = []
        for part in text.utf8.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false) {
            let pieces = part.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
            guard pieces.count == 3, let chunk = try? ChunkID(String(Substring(pieces[0]))), let dataBytes = Int64(Substring(pieces[1])) else { return nil }
            chunks.append(BatchedChunk(chunk: chunk, dataBytes: dataBytes, token: String(Substring(pieces[2]))))
        }
        return chunks
    }
}
