import Foundation
import HTTPTypes
import Hummingbird
import Logging
import TYDFSCore
import TYDFSProtocol
import TYDFSSecurity
import TYDFSServerSupport

/// Who the request being handled comes from, set by `AccessMiddleware` for the handler.
enum RequestPrincipal {
    @TaskLocal static var current: Principal?

    /// Allows the current request `need`, or throws 401/403.
    static func require(_ need: Principal.Need) throws {
        guard let principal = current else {
            throw TYDFSError(.unauthenticated, "this request needs credentials")
        }
        try principal.authorize(need)
    }
}

/// The master's front door: every request but the open ones (health, readiness, metrics, the
/// dashboard's page) must be signed (`RequestSignature`) with an access key or the cluster
/// secret. The body is read (up to `Limits.maxControlMessageBytes`) to check its digest, and the
/// handler then finds the caller in `RequestPrincipal.current` and checks what it needs.
/// Every refusal, here or in a handler, is logged.
struct AccessMiddleware<Context: RequestContext>: RouterMiddleware {
    let secret: ClusterSecret
    let keys: AccessKeyStore
    /// Rights of a request without credentials; nil (the default) refuses it.
    let anonymous: AccessLevel?

    static var digestField: HTTPField.Name { HTTPField.Name(RequestSignature.digestHeader)! }

    /// Paths anyone may read: they carry no file data, and probes and scrapers hold no key.
    static var openPaths: Set<String> { [Route.health, Route.healthz, Route.readyz, Route.metrics, Route.dashboard] }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if Self.openPaths.contains(request.uri.path) { return try await next(request, context) }
        var request = request
        let principal: Principal
        var keyID = "-"
        do {
            if let header = request.headers[.authorization] {
                guard let claimed = RequestSignature.parse(header) else {
                    throw TYDFSError(.unauthenticated, "the Authorization header is not \(RequestSignature.scheme) Credential=…, Date=…, Signature=…")
                }
                keyID = claimed.keyID
                let signing: SigningSecret
                if claimed.keyID == RequestSigner.clusterKeyID {
                    signing = SigningSecret(cluster: secret)
                    principal = .cluster
                } else if let key = keys.lookup(claimed.keyID) {
                    signing = SigningSecret(accessKeySecret: key.secretAccessKey)
                    principal = .key(id: key.accessKeyID, access: key.access, prefix: key.prefix)
                } else {
                    throw TYDFSError(.unauthenticated, "access key \(claimed.keyID.prefix(40)) is unknown or revoked")
                }
                // The signature first, over the digest the request declares: no byte of the body
                // is read for a request that is not genuine.
                guard let declared = request.headers[Self.digestField], declared.utf8.count == 64 else {
                    throw TYDFSError(.unauthenticated, "a signed request carries its body's SHA-256 in \(RequestSignature.digestHeader)")
                }
                if let refusal = RequestSignature.verify(
                    claimed, secret: signing, method: request.method.rawValue, target: request.head.path ?? "",
                    bodyDigest: declared, now: UnixClock.now) {
                    throw TYDFSError(.unauthenticated, refusal)
                }
                let body: ByteBuffer
                do {
                    body = try await request.collectBody(upTo: Limits.maxControlMessageBytes)
                } catch {
                    throw TYDFSError(.protocolViolation, "request body is larger than \(Limits.maxControlMessageBytes) bytes or was cut off")
                }
                guard RequestSignature.digest(body.readableBytesView) == declared.lowercased() else {
                    throw TYDFSError(.unauthenticated, "the request's body does not match its signed SHA-256 (\(RequestSignature.digestHeader))")
                }
            } else if let anonymous {
                principal = .anonymous(anonymous)
            } else {
                throw TYDFSError(.unauthenticated, "this request needs credentials: sign it with an access key (`tydfs key create`; the CLI reads it from its config file) or run the master with --anonymous")
            }
            return try await RequestPrincipal.$current.withValue(principal) { try await next(request, context) }
        } catch let error as TYDFSError where error.code == .unauthenticated || error.code == .forbidden {
            context.logger.requestRefused(error, method: "\(request.method)", path: request.uri.path, details: ["key": "\(keyID)"])
            throw error
        }
    }
}
