import TYDFSCore
import TYDFSClient
import TYDFSServerSupport

/// Everything a datakeeper needs to start, each field with its default.
public struct DataKeeperConfiguration: Sendable {
    /// Base URL of the master, e.g. `http://10.0.0.1:9333`, or of several masters separated by
    /// commas (the datakeeper beats to whichever leads).
    public var masterURL = "http://127.0.0.1:9333"
    /// Interface and port the data service listens on; port 0 picks a free one.
    public var host = "127.0.0.1"
    public var port = 0
    /// `host:port` other parties should use to reach this datakeeper, when it differs from the
    /// listen address (a wildcard listen address, NAT). Defaults to the listen host and bound port.
    public var advertisedAddress: String?
    /// Folder holding `chunks/`, `tmp/` and the datakeeper's id.
    public var dataDirectory = "./tydfs-data/datakeeper"
    /// Name of this datakeeper; by default a random one is made on first start and kept in the data folder.
    public var id: DataKeeperID?
    /// Bytes this datakeeper may hold; by default what it holds plus the free space of its disk.
    public var capacityBytes: Int64?
    /// Seconds between heartbeats.
    public var heartbeatIntervalSeconds = 1.0
    /// Seconds between full chunk reports, the master's check of what this datakeeper holds
    /// (between them, every heartbeat carries what changed).
    public var reportIntervalSeconds = 3600.0
    /// Seconds from the start of one scrub pass (re-reading every chunk) to the start of the next.
    public var scrubIntervalSeconds = 3600.0
    /// Bytes per second the scrubber may read, so that it never crowds out clients.
    public var scrubBytesPerSecond: Int64 = 64 * 1024 * 1024
    /// Copy and verify orders from the master run at once.
    public var maxConcurrentRepairs = 4
    /// Maintenance mode: the master copies every chunk held here to other datakeepers, then this
    /// datakeeper shuts down (HDFS's decommissioning, asked for by the datakeeper itself).
    public var maintenance = false
    /// The cluster secret's file (the master's `<data>/cluster.secret`): required.
    public var secretFile: String?
    /// Serve HTTPS with this certificate and key instead of HTTP.
    public var tls: TLSFiles?
    /// Seconds a connection may send nothing in the middle of a request (a stalled or vanished
    /// sender) before it is closed, freeing what the request held.
    public var idleTimeoutSeconds = Double(Limits.idleTransferTimeoutSeconds)
    /// CA certificates to trust when calling the master and other datakeepers over HTTPS.
    public var caFile: String?

    public init() {}

    public func validate() throws {
        guard heartbeatIntervalSeconds > 0 else { throw TYDFSError(.invalidArgument, "--heartbeat-interval must be positive") }
        guard reportIntervalSeconds > 0 else { throw TYDFSError(.invalidArgument, "--report-interval must be positive") }
        guard scrubIntervalSeconds > 0 else { throw TYDFSError(.invalidArgument, "--scrub-interval must be positive") }
        guard scrubBytesPerSecond > 0 else { throw TYDFSError(.invalidArgument, "--scrub-rate must be positive") }
        guard idleTimeoutSeconds > 0 else { throw TYDFSError(.invalidArgument, "--idle-timeout must be positive") }
        guard maxConcurrentRepairs > 0 else { throw TYDFSError(.invalidArgument, "--max-repairs must be positive") }
        if let capacityBytes, capacityBytes <= 0 { throw TYDFSError(.invalidArgument, "--capacity must be positive") }
        guard (try? MasterDirectory(masterURL)) != nil else {
            throw TYDFSError(.invalidArgument, "--master must be a URL like http://127.0.0.1:9333 (or several, separated by commas), not '\(masterURL)'")
        }
        if advertisedAddress == nil, host == "0.0.0.0" || host == "::" {
            throw TYDFSError(.invalidArgument, "listening on \(host) needs --advertise HOST:PORT so others know where to connect")
        }
    }
}
