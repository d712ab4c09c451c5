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
            top-level "master-url" (environment TYDFS_MASTER or TYDFS_MASTER_URL). Also top-level: a client's access key, \\
            "access-key-id" and "secret-access-key" (TYDFS_ACCESS_KEY_ID, TYDFS_SECRET_ACCESS_KEY), the CA file "ca-file" \\
            (TYDFS_CA_FILE) and the cluster secret file "secret-file" (TYDFS_SECRET_FILE).
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
        case master, datakeeper, cluster, s3, client
    }

    @Flag(help: "Print one JSON document instead of text.") var json = false
    @Argument(help: "The command: master, datakeeper, cluster, s3 or client.") var command: Section = .client
    @Argument(parsing: .allUnrecognized, help: "Its flags, as you would give them to it.") var options: [String] = []

    /// `config print --json`.
    struct Report: Encodable {
        var command: String
        var configFile: String?
        var settings: [Settings.Entry]
    }

    /// Resolves `Command`'s settings from `options` exactly as the command does when it runs.
    private func report<Command: SettingsCommand>(_ command: Command.Type) async throws -> Settings {
        try await Command.parse(options).resolved(arguments: options).1
    }

    func run() async throws {
        try await TYDFSCommand.reportingErrors {
            let settings: Settings
            switch command {
            case .master: settings = try await report(MasterCommand.self)
            case .datakeeper: settings = try await report(DataKeeperCommand.self)
            case .cluster: settings = try await report(ClusterCommand.self)
            case .s3: settings = try await report(S3Command.self)
            case .client: settings = try await report(ClientSettings.self)
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
