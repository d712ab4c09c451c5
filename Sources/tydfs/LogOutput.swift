import ArgumentParser
import Foundation
import Logging
import TYDFSCore
import TYDFSProtocol

/// How servers write their logs: one line per event, as text or as JSON.
enum LogFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

/// `--log-level`, `--log-format` and `--verbose`, on the commands that run servers.
struct LogOptions: ParsableArguments {
    @Option(help: "Least severe level logged: trace, debug, info, notice, warning, error or critical.") var logLevel = "info"
    @Option(help: "text (one line per event) or json (one JSON object per line).") var logFormat = LogFormat.text
    @Flag(help: "Log every request (as --log-level debug).") var verbose = false

    /// The logger `label` writes to stderr, with the level and format these options (or the
    /// environment, or the config file) give.
    func logger(_ label: String, settings: Settings) throws -> Logger {
        try Self.logger(label, level: verbose ? "debug" : logLevel, format: logFormat, settings: settings)
    }

    static func logger(_ label: String, level: String, format: LogFormat, settings: Settings) throws -> Logger {
        let levelText = try settings.string("log-level", level, flags: ["--log-level", "--verbose"])
        guard let level = Logger.Level(rawValue: levelText.lowercased()) else {
            throw TYDFSError(.invalidArgument, "log level '\(levelText)' is not one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let formatText = try settings.string("log-format", format.rawValue)
        guard let format = LogFormat(rawValue: formatText) else {
            throw TYDFSError(.invalidArgument, "log format '\(formatText)' is not text or json")
        }
        return LogOutput.logger(label, level: level, format: format)
    }
}

/// Loggers writing to stderr, each line tagged with the current `RequestID`.
enum LogOutput {
    static let requestIDProvider = Logger.MetadataProvider {
        RequestID.current.map { ["request.id": .string($0)] } ?? [:]
    }

    static func logger(_ label: String, level: Logger.Level, format: LogFormat = .text) -> Logger {
        var logger = Logger(label: label) { label in
            switch format {
            case .text: return StreamLogHandler.standardError(label: label, metadataProvider: requestIDProvider)
            case .json: return JSONLogHandler(label: label, metadataProvider: requestIDProvider)
            }
        }
        logger.logLevel = level
        return logger
    }
}

/// One JSON object per log event on stderr: `time`, `level`, `label`, `message`, `source`, and
/// every metadata field as a string, for log shippers that parse JSON lines.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(label: String, metadataProvider: Logger.MetadataProvider?) {
        self.label = label
        self.metadataProvider = metadataProvider
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    func log(
        level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?, source: String,
        file: String, function: String, line: UInt
    ) {
        var fields: [String: String] = [:]
        for (key, value) in metadata { fields[key] = "\(value)" }
        for (key, value) in metadataProvider?.get() ?? [:] { fields[key] = "\(value)" }
        for (key, value) in explicit ?? [:] { fields[key] = "\(value)" }
        fields["time"] = Date().ISO8601Format()
        fields["level"] = level.rawValue
        fields["label"] = label
        fields["message"] = message.description
        fields["source"] = source
        guard var line = try? Self.encoder.encode(fields) else { return }
        line.append(UInt8(ascii: "\n"))
        FileHandle.standardError.write(line)
    }
}
