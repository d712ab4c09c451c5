import ArgumentParser
import Foundation
import TYDFSCore

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Settings from flags, TYDFS_* environment variables and the config file.",
        discussion: """
            Precedence, first match wins: the command-line flag, then the environment variable \\
            TYDFS_<SECTION>_<OPTION> (e.g. TYDFS_MASTER_CHUNK_SIZE), then the config file, then the built-in default. \\
            The config file is JSON: --config FILE, else $TYDFS_CONFIG, else ~/.config/tydfs/config.json if present. \\
            It has one object per command, named as the command, with options named as their flags: \\
            {"master": {"listen": "0.0.0.0:9333", "chunk-size": "64MiB"}, "datakeeper": {"data": "/srv/tydfs"}}. \\
            Clients (put, get, ls, …) read the section "client". The master URL of clients and datakeepers is the \\
            top-level "master-url" (environment TYDFS_MASTER or TYDFS_MASTER_URL).
            """,
        subcommands: [ConfigPrintCommand.self])
}

struct ConfigPrintCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "print",
        abstract: "Show the settings a command would run with, and where each comes from.",
        discussion: "Example: tydfs config print master --replication 2")

    /// The sections: the commands that read settings.
    enum Section: String, ExpressibleByArgument, CaseIterable {
        case master, datakeeper, cluster, client
    }

    @Flag(help: "Print one JSON document instead of text.") var json = false
    @Argument(help: "The command: master, datakeeper, cluster or client.") var command: Section = .client
    @Argument(parsing: .allUnrecognized, help: "Its flags, as you would give them to it.") var options: [String] = []

    /// The settings of client commands: the shared options and `--concurrency`.
    struct ClientSettings: ParsableArguments {
        @OptionGroup var client: ClientOptions
        @OptionGroup var transfers: ConcurrencyOptions
    }

    /// `config print --json`.
    struct Report: Encodable {
        var command: String
        var configFile: String?
        var settings: [Settings.Entry]
    }

    func run() async throws {
        try await TYDFSCommand.reportingErrors {
            let settings: Settings
            switch command {
            case .master:
                let parsed = try MasterCommand.parse(options)
                settings = try await Settings.load(section: command.rawValue, configPath: parsed.config.path, arguments: options)
                _ = try parsed.resolve(settings)
                _ = try parsed.log.logger("tydfs.master", settings: settings)
            case .datakeeper:
                let parsed = try DataKeeperCommand.parse(options)
                settings = try await Settings.load(section: command.rawValue, configPath: parsed.config.path, arguments: options)
                _ = try parsed.resolve(settings)
                _ = try parsed.log.logger("tydfs.datakeeper", settings: settings)
            case .cluster:
                let parsed = try ClusterCommand.parse(options)
                settings = try await Settings.load(section: command.rawValue, configPath: parsed.config.path, arguments: options)
                _ = try parsed.resolve(settings)
                _ = try LogOptions.logger("tydfs.cluster", level: parsed.logLevel, format: parsed.logFormat, settings: settings)
            case .client:
                let parsed = try ClientSettings.parse(options)
                settings = try await Settings.load(section: command.rawValue, configPath: parsed.client.config.path, arguments: options)
                _ = try parsed.client.resolveMaster(settings)
                _ = try settings.bool("verbose", parsed.client.verbose)
                _ = try parsed.transfers.resolve(settings)
            }
            if json {
                return try OutputOptions.printJSON(Report(command: command.rawValue, configFile: settings.filePath, settings: settings.entries))
            }
            say("# tydfs \(command.rawValue); config file: \(settings.filePath ?? "none")")
            let rows = [["KEY", "VALUE", "FROM"]] + settings.entries.map { [$0.key, $0.value, $0.source] }
            for line in alignedColumns(rows) { say(line) }
        }
    }
}
