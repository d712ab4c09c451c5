import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import TYDFSClient
import TYDFSCore
import TYDFSSecurity
import TYDFSServerSupport

/// What `tydfs s3` needs: where to listen, which master to serve, and the cluster secret with
/// which it fetches the access keys that S3 callers sign with.
public struct S3GatewayConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 9000
    public var masterURL = "http://127.0.0.1:9333"
    /// The master's cluster secret: the gateway reads access keys (secrets included) with it.
    public var secretFile: String?
    public var tls: TLSFiles?
    public var caFile: String?
    /// The region the gateway names (GetBucketLocation); requests signed for any region pass.
    public var region = "us-east-1"
    public var idleTimeoutSeconds = Double(Limits.idleTransferTimeoutSeconds)
    /// A multipart upload no part has reached for this long is removed.
    public var multipartExpirySeconds: Double = 24 * 3600
    /// How often the gateway looks for such uploads.
    public var multipartSweepSeconds: Double = 3600

    public init() {}
}

/// The S3 gateway process: stateless, so several may run side by side in front of one master.
/// Each request is checked (SigV4) against the caller's access key and then carried out by the
/// client library acting for that key, so the master enforces what the key may do.
public enum S3Gateway {
    /// Runs a gateway until SIGTERM or SIGINT. `onListening` receives the port actually bound.
    public static func run(
        configuration: S3GatewayConfiguration, logger: Logger, onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) async throws {
        let services = try makeServices(configuration: configuration, logger: logger, onListening: onListening)
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }

    /// The gateway's services, for a caller that runs them in its own `ServiceGroup`.
    public static func makeServices(
        configuration: S3GatewayConfiguration, logger: Logger, onListening: @escaping @Sendable (Int) async -> Void
    ) throws -> [any Service] {
        guard let secretFile = configuration.secretFile else {
            throw TYDFSError(.invalidArgument, "the S3 gateway needs the cluster secret to check S3 signatures: --secret-file FILE (the master's <data>/cluster.secret)")
        }
        let secret = try ClusterSecret.read(from: secretFile)
        let cluster = try TYDFSClient(
            masterURL: configuration.masterURL, concurrency: 16, signer: RequestSigner(cluster: secret), caFile: configuration.caFile, logger: logger)
        let responder = S3Responder(
            cluster: cluster, keys: AccessKeyCache(cluster: cluster), region: configuration.region, logger: logger)
        let app = try HTTPServer.application(
            responder: responder, host: configuration.host, port: configuration.port, tls: configuration.tls,
            idleTimeoutSeconds: configuration.idleTimeoutSeconds, logger: logger, onListening: onListening)
        let sweeper = AbandonedUploadSweeper(
            cluster: cluster, expirySeconds: configuration.multipartExpirySeconds, intervalSeconds: configuration.multipartSweepSeconds,
            logger: logger, nowMillis: { Int64(Date().timeIntervalSince1970 * 1000) })
        return [GatewayClientCloser(client: cluster), app, sweeper]
    }
}

/// Shuts the gateway's client down once the HTTP server has stopped.
struct GatewayClientCloser: Service {
    let client: TYDFSClient

    func run() async throws {
        try? await gracefulShutdown()
        try await client.shutdown()
    }
}
