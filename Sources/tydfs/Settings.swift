import ArgumentParser
import Configuration
import Foundation
import SystemPackage
import TYDFSCore

/// Where a command's settings come from, first match wins: its flag on the command line, else a
/// `TYDFS_*` environment variable, else the config file, else the flag's built-in default.
///
/// Every option of a command is a setting named by its flag (`--chunk-size` is `chunk-size`),
/// in the command's section: the file holds `{"master": {"chunk-size": "64MiB"}}`, and the
/// environment `TYDFS_MASTER_CHUNK_SIZE=64MiB`. The master URL of clients and datakeepers is the
/// one setting outside a section: `"master-url"` at the top of the file, `TYDFS_MASTER` (or
/// `TYDFS_MASTER_URL`) in the environment. The
/// environment and the file are read with apple/swift-configuration; each resolved setting is
/// recorded with its source, which `tydfs config print` shows.
final class Settings {
    /// Where one value came from.
    enum Source: CustomStringConvertible {
        case flag
        case environment(String)
        case file(String)
        case builtIn

        var description: String {
            switch self {
            case .flag: return "command line"
            case .environment(let name): return "environment \(name)"
            case .file(let path): return "config file \(path)"
            case .builtIn: return "default"
            }
        }
    }

    /// One resolved setting, as `tydfs config print --json` prints it.
    struct Entry: Encodable {
        var key: String
        var value: String
        var source: String
    }

    let section: String
    private let arguments: [String]
    private let environment: ConfigReader
    private let file: ConfigReader?
    let filePath: String?
    private(set) var entries: [Entry] = []

    private init(section: String, arguments: [String], environment: ConfigReader, file: ConfigReader?, filePath: String?) {
        self.section = section
        self.arguments = arguments
        self.environment = environment
        self.file = file
        self.filePath = filePath
    }

    /// The default config file: `$TYDFS_CONFIG`, else `$XDG_CONFIG_HOME/tydfs/config.json`, else
    /// `~/.config/tydfs/config.json`.
    static func defaultFilePath(environment: [String: String]) -> (path: String, mustExist: Bool) {
        if let path = environment["TYDFS_CONFIG"], !path.isEmpty { return (path, true) }
        let base = environment["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (environment["HOME"] ?? NSHomeDirectory()) + "/.config"
        return (base + "/tydfs/config.json", false)
    }

    /// Reads the environment and the config file (`configPath`, else the default one, which may
    /// be absent) for a command whose flags are `arguments`.
    static func load(
        section: String, configPath: String?, arguments: [String] = Array(CommandLine.arguments.dropFirst()),
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) async throws -> Settings {
        var variables: [String: String] = [:]
        for (name, value) in environment where name.hasPrefix("TYDFS_") { variables[String(name.dropFirst(6))] = value }
        let environmentReader = ConfigReader(providers: [EnvironmentVariablesProvider(environmentVariables: variables)])
        let (path, mustExist) = configPath.map { ($0, true) } ?? defaultFilePath(environment: environment)
        guard FileManager.default.fileExists(atPath: path) else {
            if mustExist { throw TYDFSError(.notFound, "config file \(path) does not exist") }
            return Settings(section: section, arguments: arguments, environment: environmentReader, file: nil, filePath: nil)
        }
        let provider: FileProvider<JSONSnapshot>
        do {
            provider = try await FileProvider<JSONSnapshot>(filePath: FilePath(path))
        } catch {
            throw TYDFSError(.invalidArgument, "config file \(path) is not a JSON object of settings: \(error)")
        }
        return Settings(
            section: section, arguments: arguments, environment: environmentReader,
            file: ConfigReader(providers: [provider]), filePath: path)
    }

    // MARK: - Resolving

    /// `flags`: every flag that sets it (by default `--NAME`).
    func string(_ name: String, _ flagValue: String, flags: [String]? = nil) throws -> String {
        try resolve(name, flagValue, flags: flags, show: { $0 }) { $0 }
    }

    func optionalString(_ name: String, _ flagValue: String?) throws -> String? {
        try resolve(name, flagValue, show: { $0 ?? "(unset)" }) { $0 }
    }

    func int(_ name: String, _ flagValue: Int) throws -> Int {
        try resolve(name, flagValue, expected: "a whole number", show: { String($0) }) { Int($0) }
    }

    /// A flag with an inverse (`--maintenance`, `--no-maintenance`): either on the command line wins.
    func bool(_ name: String, _ flagValue: Bool) throws -> Bool {
        try resolve(name, flagValue, flags: ["--" + name, "--no-" + name], expected: "true or false", show: { String($0) }) { text in
            switch text.lowercased() {
            case "true", "yes", "1": return true
            case "false", "no", "0": return false
            default: return nil
            }
        }
    }

    /// The master URL of clients and datakeepers, outside any section.
    func masterURL(_ flagValue: String?) throws -> String? {
        try resolve("master-url", flagValue, key: "master-url", flags: ["--master"], environmentKeys: ["master", "master-url"],
                    show: { $0 ?? "(unset)" }) { $0 }
    }

    /// A setting outside any section (`secret-file`, `access-key-id`, …): the file's top-level
    /// key and `TYDFS_<NAME>` in the environment. A `secret` one is shown as "(set)", never printed.
    func topLevel(_ name: String, _ flagValue: String?, flags: [String]? = nil, secret: Bool = false) throws -> String? {
        try resolve(name, flagValue, key: name, flags: flags ?? ["--" + name], environmentKeys: [name],
                    show: { value in value.map { secret ? "(set)" : $0 } ?? "(unset)" }) { $0 }
    }

    private func resolve<T>(
        _ name: String, _ flagValue: T, key: String? = nil, flags: [String]? = nil, environmentKeys: [String]? = nil,
        expected: String = "", show: (T) -> String, parse: (String) -> T?
    ) throws -> T {
        let flags = flags ?? ["--" + name]
        let key = key ?? section + "." + name
        func record(_ value: T, _ source: Source) -> T {
            entries.append(Entry(key: key, value: show(value), source: source.description))
            return value
        }
        if arguments.contains(where: { argument in flags.contains { argument == $0 || argument.hasPrefix($0 + "=") } }) {
            return record(flagValue, .flag)
        }
        var places: [(reader: ConfigReader, key: String, source: Source)] = (environmentKeys ?? [key]).map { name in
            (environment, name, Source.environment("TYDFS_" + String(name.uppercased().map { $0.isLetter || $0.isNumber ? $0 : "_" })))
        }
        if let file { places.append((file, key, .file(filePath ?? ""))) }
        for (reader, key, source) in places {
            guard let text = Self.lookup(key, in: reader) else { continue }
            guard let value = parse(text) else {
                throw TYDFSError(.invalidArgument, "\(source) sets \(key) to '\(text)', which is not \(expected)")
            }
            return record(value, source)
        }
        return record(flagValue, .builtIn)
    }

    /// A value of any JSON or environment type, as text.
    private static func lookup(_ key: String, in reader: ConfigReader) -> String? {
        let key = ConfigKey(key)
        if let text = reader.string(forKey: key) { return text }
        if let number = reader.int(forKey: key) { return String(number) }
        if let number = reader.double(forKey: key) { return String(number) }
        if let flag = reader.bool(forKey: key) { return String(flag) }
        return nil
    }
}

/// A command whose options are settings: `run` and `tydfs config print` both go through
/// `resolve`, so what `config print` shows is what the command uses.
protocol SettingsCommand: ParsableArguments {
    associatedtype Resolved
    /// The config file's section and the environment's `TYDFS_<SECTION>_` prefix.
    static var section: String { get }
    var configFile: String? { get }
    /// Every setting the command uses, from these options, the environment and the file.
    func resolve(_ settings: Settings) throws -> Resolved
}

extension SettingsCommand {
    /// Loads the environment and the config file for flags `arguments` (by default the command
    /// line's) and resolves every setting; also returns the settings, with their sources.
    func resolved(arguments: [String] = Array(CommandLine.arguments.dropFirst())) async throws -> (Resolved, Settings) {
        let settings = try await Settings.load(section: Self.section, configPath: configFile, arguments: arguments)
        return (try resolve(settings), settings)
    }
}

/// `--config FILE`, on every command that reads settings.
struct ConfigFileOption: ParsableArguments {
    @Option(name: .customLong("config"), help: "Config file (JSON; default: $TYDFS_CONFIG, else ~/.config/tydfs/config.json if present).")
    var path: String?
}
