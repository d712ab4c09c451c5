import ArgumentParser
import Logging
import TYDFSCore
import TYDFSS3Gateway
import TYDFSServerSupport

struct S3Command: AsyncParsableCommand, SettingsCommand {
    static let configuration = CommandConfiguration(
        commandName: "s3",
        abstract: "Run an S3 gateway in front of a master: buckets are top-level folders, keys the paths below them.",
        discussion: """
            S3 callers sign with TYDFS access keys (`tydfs key create`; the admin key of `tydfs cluster` works): \
            access key id and secret as S3 credentials, path-style URLs (awscli and boto3 with --endpoint-url). \
            The gateway needs the cluster secret to look keys up. It keeps no state: several may run side by side. \
            Every option can also come from TYDFS_S3_<OPTION> or the config file's "s3" section.
            """)

    @Option(help: "host:port to listen on.") var listen = "127.0.0.1:9000"
    @Option(help: "Master URL (default: $TYDFS_MASTER, else http://127.0.0.1:9333).") var master: String?
    @Option(help: "The region the gateway names (GetBucketLocation); requests signed for any region are accepted.") var region = "us-east-1"
    @Option(help: "Remove a multipart upload no part has reached for this long, e.g. 24h.") var multipartExpiry = "24h"
    @Option(help: "How often to look for such uploads.") var multipartSweepInterval = "1h"
    @OptionGroup var security: ServerSecurityOptions
    @OptionGroup var connections: ServerConnectionOptions
    @OptionGroup var log: LogOptions
    @OptionGroup var config: ConfigFileOption

    static let section = "s3"
    var configFile: String? { config.path }

    func resolve(_ settings: Settings) throws -> (configuration: S3GatewayConfiguration, logger: Logger) {
        var configuration = S3GatewayConfiguration()
        (configuration.host, configuration.port) = try splitHostPort(settings.string("listen", listen))
        configuration.masterURL = try settings.masterURL(master) ?? defaultMasterURL
        configuration.region = try settings.string("region", region)
        (configuration.secretFile, configuration.tls, configuration.caFile) = try security.resolve(settings)
        configuration.idleTimeoutSeconds = try connections.idleTimeoutSeconds(settings)
        configuration.multipartExpirySeconds = try DurationText.parseSeconds(settings.string("multipart-expiry", multipartExpiry))
        configuration.multipartSweepSeconds = try DurationText.parseSeconds(settings.string("multipart-sweep-interval", multipartSweepInterval))
        guard configuration.multipartExpirySeconds > 0, configuration.multipartSweepSeconds > 0 else {
            throw TYDFSError(.invalidArgument, "--multipart-expiry and --multipart-sweep-interval must be longer than 0")
        }
        return (configuration, try log.logger("tydfs.s3", settings: settings))
    }

    func run() async throws {
        try await TYDFSCommand.reportingErrors {
            let ((configuration, logger), _) = try await resolved()
            let scheme = configuration.tls == nil ? "http" : "https"
            try await S3Gateway.run(configuration: configuration, logger: logger) { port in
                say("tydfs s3 gateway listening on \(scheme)://\(configuration.host):\(port) for \(configuration.masterURL)")
            }
        }
    }
}
