import ArgumentParser
import Foundation
import Logging
import NIOPosix
import ServiceLifecycle
import TYDFSClient
import TYDFSCore
import TYDFSDataKeeper
import TYDFSMaster
import TYDFSS3Gateway
import TYDFSSecurity
import TYDFSServerSupport

struct MasterCommand: AsyncParsableCommand, SettingsCommand {
    static let configuration = CommandConfiguration(
        commandName: "master",
        abstract: "Run the master: namespace, heartbeats, placement. Stops cleanly on SIGTERM/SIGINT.",
        discussion: "Every option can also come from TYDFS_MASTER_<OPTION> or the config file's \"master\" section (see `tydfs config`).")

    @Option(help: "host:port to listen on.") var listen = "127.0.0.1:9333"
    @Option(help: "Folder for the cluster secret, the access keys and (unless --metadata says otherwise) the metadata database.")
    var data = "./tydfs-data/master"
    @Option(help: ArgumentHelp(
        "Where the metadata lives: a folder (SQLite, the default: the --data folder) or postgres://user@host:port/db, shared by several masters.",
        discussion: "Masters on one PostgreSQL database elect a leader among themselves; the others are standbys that redirect to it."))
    var metadata: String?
    @Option(help: "URL clients and datakeepers reach this master at (default: http(s)://the --listen address).") var advertise: String?
    @Option(help: "Replicas per chunk.") var replication = 3
    @Option(help: "Chunk size, e.g. 64MiB.") var chunkSize = "64MiB"
    @Option(help: "A datakeeper silent this long is dead, e.g. 5s.") var heartbeatTimeout = "5s"
    @Option(help: "Time between replication manager rounds.") var repairInterval = "1s"
    @Option(help: "Re-replication copies one datakeeper takes part in at once.") var maxRepairsPerDatakeeper = 4
    @Option(help: "Age at which a chunk no file references is deleted from a datakeeper.") var orphanGrace = "1h"
    @Option(help: "Idle time after which an unfinished upload is abandoned.") var uploadTimeout = "1h"
    @Option(help: "Time a removed or replaced file's chunks are kept, so gets under way can finish.") var deletionGrace = "30s"
    @OptionGroup var security: ServerSecurityOptions
    @OptionGroup var connections: ServerConnectionOptions
    @Option(help: "What requests without credentials may do: read-only or read-write (default: refused).") var anonymous: String?
    @Option(help: "Also serve the S3 gateway in this process, on host:port (as `tydfs s3`; needs a fixed --listen port).") var s3: String?
    @OptionGroup var log: LogOptions
    @OptionGroup var config: ConfigFileOption

    static let section = "master"
    var configFile: String? { config.path }

    /// The configuration and logger these flags, the environment and the config file give.
    func resolve(_ settings: Settings) throws -> (configuration: MasterConfiguration, s3: S3GatewayConfiguration?, logger: Logger) {
        var configuration = MasterConfiguration()
        configuration.repairIntervalSeconds = try DurationText.parseSeconds(settings.string("repair-interval", repairInterval))
        configuration.maxRepairsPerDataKeeper = try settings.int("max-repairs-per-datakeeper", maxRepairsPerDatakeeper)
        configuration.orphanGraceSeconds = try DurationText.parseSeconds(settings.string("orphan-grace", orphanGrace))
        configuration.uploadIdleTimeoutSeconds = try DurationText.parseSeconds(settings.string("upload-timeout", uploadTimeout))
        configuration.deletionGraceSeconds = try DurationText.parseSeconds(settings.string("deletion-grace", deletionGrace))
        (configuration.host, configuration.port) = try splitHostPort(settings.string("listen", listen))
        configuration.dataDirectory = try settings.string("data", data)
        configuration.metadata = try settings.optionalString("metadata", metadata)
        configuration.advertisedURL = try settings.optionalString("advertise", advertise)
        configuration.replication = try settings.int("replication", replication)
        configuration.chunkSizeBytes = try ByteSize.parse(settings.string("chunk-size", chunkSize))
        configuration.heartbeatTimeoutSeconds = try DurationText.parseSeconds(settings.string("heartbeat-timeout", heartbeatTimeout))
        (configuration.secretFile, configuration.tls, configuration.caFile) = try security.resolve(settings)
        configuration.idleTimeoutSeconds = try connections.idleTimeoutSeconds(settings)
        configuration.anonymousAccess = try settings.optionalString("anonymous", anonymous).map { text in
            guard let level = AccessLevel(rawValue: text), level != .admin else {
                throw TYDFSError(.invalidArgument, "--anonymous must be read-only or read-write, not '\(text)'")
            }
            return level
        }
        let gateway = try settings.optionalString("s3", s3).map { address in
            guard configuration.port != 0 else { throw TYDFSError(.invalidArgument, "--s3 needs a fixed master --listen port, not 0") }
            var gateway = S3GatewayConfiguration()
            (gateway.host, gateway.port) = try splitHostPort(address)
            let wildcard = ["0.0.0.0", "::", "[::]", ""].contains(configuration.host)
            gateway.masterURL = "\(configuration.tls == nil ? "http" : "https")://\(wildcard ? "127.0.0.1" : configuration.host):\(configuration.port)"
            gateway.secretFile = configuration.secretFilePath
            gateway.tls = configuration.tls
            gateway.caFile = configuration.caFile
            gateway.idleTimeoutSeconds = configuration.idleTimeoutSeconds
            return gateway
        }
        return (configuration, gateway, try log.logger("tydfs.master", settings: settings))
    }

    func run() async throws {
        try await TYDFSCommand.reportingErrors {
            let ((configuration, gateway, logger), _) = try await resolved()
            let host = configuration.host
            let scheme = configuration.tls == nil ? "http" : "https"
            try await MasterServer.run(configuration: configuration, logger: logger, alongside: {
                guard let gateway else { return [] }
                return try S3Gateway.makeServices(configuration: gateway, logger: logger) { port in
                    say("tydfs s3 gateway listening on \(scheme)://\(gateway.host):\(port) for \(gateway.masterURL)")
                }
            }) { port in
                say("tydfs master listening on \(scheme)://\(host):\(port)")
            }
        }
    }
}

struct DataKeeperCommand: AsyncParsableCommand, SettingsCommand {
    static let configuration = CommandConfiguration(
        commandName: "datakeeper",
        abstract: "Run a datakeeper: stores chunks, serves them, heartbeats to the master.",
        discussion: """
            Every option can also come from TYDFS_DATAKEEPER_<OPTION> or the config file's "datakeeper" section; \
            the master URL from TYDFS_MASTER or the file's top-level "master-url" (see `tydfs config`). On SIGTERM it tells \
            the master it is leaving (repair starts at once) and finishes the transfers under way.
            """)

    @Option(help: "Master URL (default: $TYDFS_MASTER, else http://127.0.0.1:9333).") var master: String?
    @Option(help: "host:port to listen on; port 0 picks a free one.") var listen = "127.0.0.1:0"
    @Option(help: "host:port others should connect to, if not the listen address.") var advertise: String?
    @Option(help: "Folder for chunks.") var data = "./tydfs-data/datakeeper"
    @Option(help: "Name of this datakeeper (default: made once and kept in the data folder).") var id: String?
    @Option(help: "Bytes this datakeeper may hold, e.g. 100GiB (default: its disk's free space).") var capacity: String?
    @Option(help: "Time between heartbeats, e.g. 1s.") var heartbeatInterval = "1s"
    @Option(help: "Time between full chunk reports to the master (heartbeats carry changes in between).") var reportInterval = "1h"
    @Option(help: "Time from one scrub pass (re-reading every chunk) to the next.") var scrubInterval = "1h"
    @Option(help: "Bytes per second the scrubber may read, e.g. 64MiB.") var scrubRate = "64MiB"
    @Option(help: "Copy and verify orders run at once.") var maxRepairs = 4
    @Flag(inversion: .prefixedNo, help: "Maintenance mode: have the master copy every chunk held here to others, then shut down.")
    var maintenance = false
    @OptionGroup var security: ServerSecurityOptions
    @OptionGroup var connections: ServerConnectionOptions
    @OptionGroup var log: LogOptions
    @OptionGroup var config: ConfigFileOption

    static let section = "datakeeper"
    var configFile: String? { config.path }

    func resolve(_ settings: Settings) throws -> (configuration: DataKeeperConfiguration, logger: Logger) {
        var configuration = DataKeeperConfiguration()
        configuration.reportIntervalSeconds = try DurationText.parseSeconds(settings.string("report-interval", reportInterval))
        configuration.scrubIntervalSeconds = try DurationText.parseSeconds(settings.string("scrub-interval", scrubInterval))
        configuration.scrubBytesPerSecond = try ByteSize.parse(settings.string("scrub-rate", scrubRate))
        configuration.maxConcurrentRepairs = try settings.int("max-repairs", maxRepairs)
        configuration.maintenance = try settings.bool("maintenance", maintenance)
        configuration.masterURL = try settings.masterURL(master) ?? defaultMasterURL
        (configuration.host, configuration.port) = try splitHostPort(settings.string("listen", listen))
        let advertised = try settings.optionalString("advertise", advertise)
        if let advertised { _ = try splitHostPort(advertised) }
        configuration.advertisedAddress = advertised
        configuration.dataDirectory = try settings.string("data", data)
        configuration.id = try settings.optionalString("id", id).map { try DataKeeperID($0) }
        configuration.capacityBytes = try settings.optionalString("capacity", capacity).map { try ByteSize.parse($0) }
        configuration.heartbeatIntervalSeconds = try DurationText.parseSeconds(settings.string("heartbeat-interval", heartbeatInterval))
        (configuration.secretFile, configuration.tls, configuration.caFile) = try security.resolve(settings)
        configuration.idleTimeoutSeconds = try connections.idleTimeoutSeconds(settings)
        return (configuration, try log.logger("tydfs.datakeeper", settings: settings))
    }

    func run() async throws {
        try await TYDFSCommand.reportingErrors {
            let ((configuration, logger), _) = try await resolved()
            let host = configuration.host
            let scheme = configuration.tls == nil ? "http" : "https"
            try await DataKeeperServer.run(configuration: configuration, logger: logger) { port in
                say("tydfs datakeeper listening on \(scheme)://\(host):\(port)")
            }
        }
    }
}

struct ClusterCommand: AsyncParsableCommand, SettingsCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster",
        abstract: "Run a master and N datakeepers on loopback in one process, for trying TYDFS out.",
        discussion: "Ctrl-C or SIGTERM stops them all cleanly. Data stays in --data for the next run.")

    @Option(help: "Number of datakeepers.") var datakeepers = 3
    @Option(help: "Folder for all data (master/ and dk1/, dk2/, …).") var data = "./tydfs-data"
    @Option(help: "Master port.") var port = 9333
    @Option(help: "Replicas per chunk.") var replication = 3
    @Option(help: "Chunk size, e.g. 64MiB.") var chunkSize = "64MiB"
    @Option(help: "Least severe level logged: trace, debug, info, notice, warning, error or critical.") var logLevel = "notice"
    @Option(help: "text (one line per event) or json (one JSON object per line).") var logFormat = LogFormat.text
    @Flag(help: "Serve HTTPS everywhere, with a throwaway CA made in <data>/tls (by openssl) for local use.") var tls = false
    @Option(help: "Port of the S3 gateway on 127.0.0.1 (the admin key works as S3 credentials); 0 turns it off.") var s3Port = 9000
    @OptionGroup var config: ConfigFileOption

    static let section = "cluster"
    var configFile: String? { config.path }

    /// The cluster's shape: datakeepers, data folder, port, the master's configuration, and the logger.
    func resolve(_ settings: Settings) throws -> (datakeepers: Int, data: String, tls: Bool, s3Port: Int, master: MasterConfiguration, logger: Logger) {
        let count = try settings.int("datakeepers", datakeepers)
        guard (1...64).contains(count) else { throw TYDFSError(.invalidArgument, "--datakeepers must be 1…64") }
        let data = try settings.string("data", data)
        var master = MasterConfiguration()
        master.port = try settings.int("port", port)
        master.dataDirectory = data + "/master"
        master.replication = try settings.int("replication", replication)
        master.chunkSizeBytes = try ByteSize.parse(settings.string("chunk-size", chunkSize))
        let s3Port = try settings.int("s3-port", self.s3Port)
        guard (0...65535).contains(s3Port) else { throw TYDFSError(.invalidArgument, "--s3-port must be 0…65535") }
        if s3Port != 0 && master.port == 0 { throw TYDFSError(.invalidArgument, "the S3 gateway needs a fixed master --port (or --s3-port 0)") }
        return (count, data, try settings.bool("tls", tls), s3Port, master,
                try LogOptions.logger("tydfs.cluster", level: logLevel, format: logFormat, settings: settings))
    }

    func run() async throws {
        try await TYDFSCommand.reportingErrors {
            let ((count, data, tls, s3Port, baseMaster, logger), _) = try await resolved()
            var master = baseMaster
            let port = master.port
            let scheme = tls ? "https" : "http"
            var certificates: ThrowawayCA?
            if tls {
                let made = try ThrowawayCA.makeOrReuse(in: data + "/tls")
                master.tls = made.server
                master.caFile = made.caFile
                certificates = made
            }
            let adminConfig = master.dataDirectory + "/" + ClientConfigFile.adminFileName
            let caFile = master.caFile
            let masterParts = try await MasterServer.makeServices(configuration: master, logger: logger) { port in
                let configPath = Settings.defaultFilePath(environment: ProcessInfo.processInfo.environment).path
                do {
                    try ClusterCommand.writeClientConfig(from: adminConfig, to: configPath,
                                                         masterURL: "\(scheme)://127.0.0.1:\(port)", caFile: caFile)
                    say("tydfs cluster: master on \(scheme)://127.0.0.1:\(port) with \(count) datakeepers; admin key in \(configPath); Ctrl-C stops")
                } catch {
                    say("tydfs cluster: master on \(scheme)://127.0.0.1:\(port) with \(count) datakeepers; Ctrl-C stops")
                    warn("cannot write the client config \(configPath): \(error)")
                }
            }
            let httpClient = try TYDFSClient.makeHTTPClient(caFile: certificates?.caFile)
            var services = masterParts.services
            for index in 1...count {
                var keeper = DataKeeperConfiguration()
                keeper.masterURL = "\(scheme)://127.0.0.1:\(port)"
                keeper.dataDirectory = "\(data)/dk\(index)"
                keeper.secretFile = master.secretFilePath
                keeper.tls = certificates?.server
                keeper.caFile = certificates?.caFile
                keeper.id = try DataKeeperID("dk\(index)")
                services += try DataKeeperServer.makeServices(configuration: keeper, httpClient: httpClient, logger: logger) { _ in }
            }
            if s3Port != 0 {
                // Last: shutdown goes in reverse, so the gateway stops before what it calls.
                var gateway = S3GatewayConfiguration()
                gateway.port = s3Port
                gateway.masterURL = "\(scheme)://127.0.0.1:\(port)"
                gateway.secretFile = master.secretFilePath
                gateway.tls = certificates?.server
                gateway.caFile = certificates?.caFile
                services += try S3Gateway.makeServices(configuration: gateway, logger: logger) { bound in
                    say("tydfs cluster: S3 gateway on \(scheme)://127.0.0.1:\(bound) (aws --endpoint-url; credentials: the admin key)")
                }
            }
            let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            defer { say("tydfs cluster stopped") }
            do {
                try await group.run()
            } catch {
                try? await httpClient.shutdown()
                await masterParts.close()
                throw error
            }
            try await httpClient.shutdown()
            await masterParts.close()
        }
    }
}

extension ClusterCommand {
    /// Puts the admin key of `adminConfig` (the master's `admin-client.conf`), the master URL and
    /// the CA file into the per-user client config at `path`, keeping the file's other settings,
    /// so that the README's first commands just work.
    static func writeClientConfig(from adminConfig: String, to path: String, masterURL: String, caFile: String?) throws {
        guard let data = FileManager.default.contents(atPath: adminConfig),
              let admin = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let keyID = admin[ClientConfigFile.Setting.accessKeyID] as? String,
              let secret = admin[ClientConfigFile.Setting.secretAccessKey] as? String
        else {
            throw TYDFSError(.notFound, "\(adminConfig) is missing or holds no access key (make a key with `tydfs key create`)")
        }
        var settings: [String: Any] = [:]
        if let existing = FileManager.default.contents(atPath: path) {
            guard let object = try? JSONSerialization.jsonObject(with: existing) as? [String: Any] else {
                throw TYDFSError(.invalidArgument, "\(path) is not a JSON object; not overwriting it")
            }
            settings = object
        }
        settings[ClientConfigFile.Setting.masterURL] = masterURL
        settings[ClientConfigFile.Setting.accessKeyID] = keyID
        settings[ClientConfigFile.Setting.secretAccessKey] = secret
        settings[ClientConfigFile.Setting.caFile] = admin[ClientConfigFile.Setting.caFile] ?? caFile.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        let text = try JSONSerialization.data(withJSONObject: settings, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try SecretFile.create(path, contents: String(decoding: text, as: UTF8.self) + "\n", replacing: true)
    }
}

/// The security options of the master and of datakeepers.
struct ServerSecurityOptions: ParsableArguments {
    @Option(help: "Cluster secret file (mode 0600; default for the master: <data>/cluster.secret, made on first start; a datakeeper must be given the master's). Also TYDFS_SECRET_FILE.")
    var secretFile: String?
    @Option(help: "Serve HTTPS: the certificate chain (PEM). Needs --tls-key.") var tlsCert: String?
    @Option(help: "Serve HTTPS: the private key (PEM) of --tls-cert.") var tlsKey: String?
    @Option(help: "CA certificates (PEM) to trust when calling other TYDFS servers over HTTPS (default: the system's). Also TYDFS_CA_FILE.")
    var caFile: String?

    func resolve(_ settings: Settings) throws -> (secretFile: String?, tls: TLSFiles?, caFile: String?) {
        (try settings.topLevel("secret-file", secretFile),
         try TLSFiles.from(certificate: settings.optionalString("tls-cert", tlsCert), privateKey: settings.optionalString("tls-key", tlsKey)),
         try settings.topLevel(ClientConfigFile.Setting.caFile, caFile))
    }
}

/// How long a server waits on a sender, for the master and datakeepers alike.
struct ServerConnectionOptions: ParsableArguments {
    @Option(help: "Close a connection whose request sends nothing for this long (a stalled or vanished sender), e.g. 60s.")
    var idleTimeout = "\(Limits.idleTransferTimeoutSeconds)s"

    func idleTimeoutSeconds(_ settings: Settings) throws -> Double {
        try DurationText.parseSeconds(settings.string("idle-timeout", idleTimeout))
    }
}

/// The master URL when no flag, `TYDFS_MASTER` or config file names one.
let defaultMasterURL = "http://127.0.0.1:9333"
