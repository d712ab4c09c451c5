import TYDFSCore
import TYDFSMetadata
import TYDFSSecurity
import TYDFSServerSupport

/// Everything a master needs to start, each field with its default.
public struct MasterConfiguration: Sendable {
    /// Interface and port the master listens on.
    public var host = "127.0.0.1"
    public var port = 9333
    /// Folder of the cluster secret, the access keys and, unless `metadata` says otherwise, the
    /// metadata database (`metadata.sqlite`).
    public var dataDirectory = "./tydfs-data/master"
    /// Where the metadata lives (`--metadata`): nil for `<data>/metadata.sqlite`, a folder for
    /// its `metadata.sqlite`, or a `postgres://` URL: a database several masters share, one of
    /// them leading at a time (issue 17).
    public var metadata: String?
    /// The URL clients and datakeepers reach this master at, which the leader lease names for
    /// the standbys' redirects; nil means http(s)://host:port.
    public var advertisedURL: String?
    /// Lease length and renewal pace, with PostgreSQL.
    public var leaseTiming = LeadershipStateMachine.Timing.standard
    /// The PostgreSQL URL, when `metadata` is one.
    public var metadataURL: String? { metadata.flatMap { PostgresLink.isURL($0) ? $0 : nil } }
    /// The SQLite file, when the metadata is not on PostgreSQL.
    public var sqlitePath: String { (metadata ?? dataDirectory) + "/metadata.sqlite" }
    /// Where the metadata is, for logs (no password).
    public var metadataDisplay: String { metadataURL.map(PostgresLink.redacted) ?? sqlitePath }
    /// Replicas every chunk should have.
    public var replication = 3
    /// Size files are cut at; the last chunk of a file is shorter.
    public var chunkSizeBytes: Int64 = 64 * 1024 * 1024
    /// A datakeeper silent for this long is dead: no new work, not offered to readers.
    public var heartbeatTimeoutSeconds = 5.0
    /// Seconds between two rounds of the replication manager.
    public var repairIntervalSeconds = 1.0
    /// Re-replication copies one datakeeper may take part in at once (as source or destination),
    /// so that repair does not starve clients.
    public var maxRepairsPerDataKeeper = 4
    /// A chunk no file references is deleted from a datakeeper once it has been reported this
    /// long: long enough that no upload still writing it can be affected.
    public var orphanGraceSeconds = 3600.0
    /// An upload with no activity (no chunk allocated) for this long is abandoned: its path is
    /// free again and its chunks become unreferenced, to be deleted after the orphan grace.
    public var uploadIdleTimeoutSeconds = 3600.0
    /// A chunk whose file was removed or replaced is deleted from the datakeepers only this long
    /// after, so a get that had already read the file's chunk list can finish.
    public var deletionGraceSeconds = 30.0
    /// The longest path the master takes: its store's limit (`MetadataStore.maxPathBytes`), set
    /// when it starts to lead.
    public var maxPathBytes = Limits.maxPathBytes
    /// The cluster secret's file; nil means `<data>/cluster.secret`, made on first start.
    public var secretFile: String?
    /// The file the cluster secret is in: `secretFile`, or the default in the data folder (what
    /// the master's own datakeepers and gateway are given in `tydfs cluster` and `master --s3`).
    public var secretFilePath: String { secretFile ?? dataDirectory + "/cluster.secret" }
    /// What a request without credentials may do; nil (the default) refuses it.
    public var anonymousAccess: AccessLevel?
    /// Serve HTTPS with this certificate and key instead of HTTP.
    public var tls: TLSFiles?
    /// Seconds a connection may send nothing in the middle of a request (a stalled or vanished
    /// sender) before it is closed, freeing what the request held.
    public var idleTimeoutSeconds = Double(Limits.idleTransferTimeoutSeconds)
    /// CA certificates the master's own client (the dashboard's downloads) trusts, with TLS.
    public var caFile: String?

    public init() {}

    /// Checks every field; the message names the flag to fix.
    public func validate() throws {
        guard (1...Limits.maxReplication).contains(replication) else {
            throw TYDFSError(.invalidArgument, "--replication must be 1…\(Limits.maxReplication), not \(replication)")
        }
        guard (Limits.minChunkSizeBytes...Limits.maxChunkSizeBytes).contains(chunkSizeBytes) else {
            throw TYDFSError(.invalidArgument, "--chunk-size must be \(ByteSize.format(Limits.minChunkSizeBytes))…\(ByteSize.format(Limits.maxChunkSizeBytes)), not \(ByteSize.format(chunkSizeBytes))")
        }
        guard heartbeatTimeoutSeconds > 0 else {
            throw TYDFSError(.invalidArgument, "--heartbeat-timeout must be positive")
        }
        guard repairIntervalSeconds > 0 else { throw TYDFSError(.invalidArgument, "--repair-interval must be positive") }
        guard maxRepairsPerDataKeeper >= 1 else { throw TYDFSError(.invalidArgument, "--max-repairs-per-datakeeper must be at least 1") }
        guard orphanGraceSeconds >= 0 else { throw TYDFSError(.invalidArgument, "--orphan-grace must not be negative") }
        guard idleTimeoutSeconds > 0 else { throw TYDFSError(.invalidArgument, "--idle-timeout must be positive") }
        guard uploadIdleTimeoutSeconds > 0 else { throw TYDFSError(.invalidArgument, "--upload-timeout must be positive") }
        if metadataURL != nil, port == 0, advertisedURL == nil {
            throw TYDFSError(.invalidArgument, "masters on PostgreSQL name their URL in the leader lease: give a fixed --listen port or --advertise URL")
        }
        if let advertisedURL, !(advertisedURL.hasPrefix("http://") || advertisedURL.hasPrefix("https://")) {
            throw TYDFSError(.invalidArgument, "--advertise must be a URL like http://10.0.0.1:9333, not '\(advertisedURL)'")
        }
        guard deletionGraceSeconds >= 0 else { throw TYDFSError(.invalidArgument, "--deletion-grace must not be negative") }
    }
}
