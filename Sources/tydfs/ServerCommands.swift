import ArgumentParser
import Foundation
import Logging
import NIOPosix
import ServiceLifecycle
import TYDFSClient
import TYDFSCore
import TYDFSDataKeeper
import TYDFSMaster
import TYDFSServerSupport

struct MasterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "master",
        abstract: "Run the master: namespace, heartbeats, placement. Stops cleanly on SIGTERM/SIGINT.")

    @Option(help: "host:port to listen on.") var listen = "127.0.0.1:9333"
    @Option(help: "Folder for the metadata database.") var data = "./tydfs-data/master"
    @Option(help: "Replicas per chunk.") var replication = 3
    @Option(help: "Chunk size, e.g. 64MiB.") var chunkSize = "64MiB"
    @Option(help: "A datakeeper silent this long is dead, e.g. 5s.") var heartbeatTimeout = "5s"
    @Option(help: "Time between replication manager rounds.") var repairInterval = "1s"
    @Option(help: "Re-replication copies one datakeeper takes part in at once.") var maxRepairsPerDatakeeper = 4
    @Option(help: "Age at which a chunk no file references is deleted from a datakeeper.") var orphanGrace = "1h"
    @Option(help: "Idle time after which an unfinished upload is abandoned.") var uploadTimeout = "1h"
    @Flag(help: "Log every request.") var verbose = false

    func run() async throws {
        try await TYDFSCommand.reportingErrors {
            var configuration = MasterConfiguration()
            configuration.repairIntervalSeconds = try DurationText.parseSeconds(repairInterval)
            configuration.maxRepairsPerDataKeeper = maxRepairsPerDatakeeper
            configuration.orphanGraceSeconds = try DurationText.parseSeconds(orphanGrace)
            configuration.uploadIdleTimeoutSeconds = try DurationText.parseSeconds(uploadTimeout)
            (configuration.host, configuration.port) = try splitHostPort(listen)
            configuration.dataDirectory = data
            configuration.replication = replication
            configuration.chunkSizeBytes = try ByteSize.parse(chunkSize)
            configuration.heartbeatTimeoutSeconds = try DurationText.parseSeconds(heartbeatTimeout)
            let host = configuration.host
            try await MasterServer.run(
                configuration: configuration, logger: TYDFSCommand.logger("tydfs.master", level: verbose ? .debug : .info)
            ) { port in say("tydfs master listening on http://\(host):\(port)") }
        }
    }
}

struct DataKeeperCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "datakeeper",
        abstract: "Run a datakeeper: stores chunks, serves them, heartbeats to the master.")

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
    @Flag(help: "Maintenance mode: have the master copy every chunk held here to others, then shut down.") var maintenance = false
    @Flag(help: "Log every request.") var verbose = false

    func run() async throws {
        try await TYDFSCommand.reportingErrors {
            var configuration = DataKeeperConfiguration()
            configuration.reportIntervalSeconds = try DurationText.parseSeconds(reportInterval)
            configuration.scrubIntervalSeconds = try DurationText.parseSeconds(scrubInterval)
            configuration.scrubBytesPerSecond = try ByteSize.parse(scrubRate)
            configuration.maxConcurrentRepairs = maxRepairs
            configuration.maintenance = maintenance
            configuration.masterURL = masterURL(master)
            (configuration.host, configuration.port) = try splitHostPort(listen)
            if let advertise { _ = try splitHostPort(advertise) }
            configuration.advertisedAddress = advertise
            configuration.dataDirectory = data
            configuration.id = try id.map { try DataKeeperID($0) }
            configuration.capacityBytes = try capacity.map { try ByteSize.parse($0) }
            configuration.heartbeatIntervalSeconds = try DurationText.parseSeconds(heartbeatInterval)
            let host = configuration.host
            try await DataKeeperServer.run(
                configuration: configuration, logger: TYDFSCommand.logger("tydfs.datakeeper", level: verbose ? .debug : .info)
            ) { port in say("tydfs datakeeper listening on http://\(host):\(port)") }
        }
    }
}

struct ClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster",
        abstract: "Run a master and N datakeepers on loopback in one process, for trying TYDFS out.",
        discussion: "Ctrl-C or SIGTERM stops them all cleanly. Data stays in --data for the next run.")

    @Option(help: "Number of datakeepers.") var datakeepers = 3
    @Option(help: "Folder for all data (master/ and dk1/, dk2/, …).") var data = "./tydfs-data"
    @Option(help: "Master port.") var port = 9333
    @Option(help: "Replicas per chunk.") var replication = 3
    @Option(help: "Chunk size, e.g. 64MiB.") var chunkSize = "64MiB"

    func run() async throws {
        try await TYDFSCommand.reportingErrors {
            guard (1...64).contains(datakeepers) else { throw TYDFSError(.invalidArgument, "--datakeepers must be 1…64") }
            let logger = TYDFSCommand.logger("tydfs.cluster", level: .notice)
            var master = MasterConfiguration()
            master.port = port
            master.dataDirectory = data + "/master"
            master.replication = replication
            master.chunkSizeBytes = try ByteSize.parse(chunkSize)
            let count = datakeepers
            let port = self.port
            let masterParts = try await MasterServer.makeServices(configuration: master, logger: logger) { port in
                say("tydfs cluster: master on http://127.0.0.1:\(port) with \(count) datakeepers; Ctrl-C stops")
            }
            let httpClient = TYDFSClient.makeHTTPClient()
            var services = masterParts.services
            for index in 1...datakeepers {
                var keeper = DataKeeperConfiguration()
                keeper.masterURL = "http://127.0.0.1:\(port)"
                keeper.dataDirectory = "\(data)/dk\(index)"
                keeper.id = try DataKeeperID("dk\(index)")
                services += try DataKeeperServer.makeServices(configuration: keeper, httpClient: httpClient, logger: logger) { _ in }
            }
            let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            defer { say("tydfs cluster stopped") }
            do {
                try await group.run()
            } catch {
                try? await httpClient.shutdown()
                try? await masterParts.store.close()
                throw error
            }
            try await httpClient.shutdown()
            try await masterParts.store.close()
        }
    }
}

/// The master URL a command should use: the flag, else `$TYDFS_MASTER`, else the default.
func masterURL(_ flag: String?) -> String {
    flag ?? ProcessInfo.processInfo.environment["TYDFS_MASTER"] ?? "http://127.0.0.1:9333"
}
