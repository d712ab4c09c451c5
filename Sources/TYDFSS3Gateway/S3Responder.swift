import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import NIOCore
import TYDFSClient
import TYDFSCore
import TYDFSProtocol
import TYDFSS3
import TYDFSSecurity

/// Answers every S3 request: checks its signature, then carries it out through the client library
/// acting for the caller's key. Every failure becomes S3's XML error with the code a client
/// expects; nothing from deeper down leaks out as a 5xx unless the cluster itself failed.
struct S3Responder: HTTPResponder {
    typealias Context = BasicRequestContext

    let cluster: TYDFSClient
    let keys: AccessKeyCache
    let region: String
    let logger: Logger
    /// Buckets seen to exist recently, so a put need not list its bucket every time.
    let knownBuckets = RecentlySeen(lifetimeSeconds: 5)

    func respond(to request: Request, context: BasicRequestContext) async throws -> Response {
        let requestID = hex64(UInt64.random(in: .min ... .max)).uppercased()
        var resource = request.head.path ?? "/"
        do {
            let s3 = try S3Request(request)
            resource = "/" + (s3.bucket ?? "") + (s3.key.map { "/" + $0 } ?? "")
            let caller = try await authenticate(s3, authority: request.head.authority)
            var response = try await S3Operations(request: s3, body: request.body, caller: caller, responder: self).run()
            response.headers[HTTPField.Name("x-amz-request-id")!] = requestID
            return response
        } catch {
            let failure = S3Responder.s3Error(error, resource: resource)
            if failure.httpStatus >= 500 {
                logger.error("S3 request failed", metadata: ["method": "\(request.method)", "resource": "\(resource)", "error": "\(error)"])
            }
            return S3Responder.errorResponse(failure, requestID: requestID, head: request.method == .head)
        }
    }

    /// The caller's client, once the request's signature checks out against its key.
    private func authenticate(_ request: S3Request, authority: String?) async throws -> Caller {
        if request.query["AWSAccessKeyId"] != nil || request.header("authorization")?.hasPrefix("AWS ") == true {
            throw S3Error.invalidRequest("Signature Version 2 is not supported: sign with Signature Version 4 (boto3: Config(signature_version='s3v4'))")
        }
        let signed = request.signedParts(authority: authority)
        let now = Int64(Date().timeIntervalSince1970)
        // The entry whose secret checked the signature is the one the request then acts with.
        var entry: AccessKeyCache.Entry?
        var result = SigV4.verify(signed, now: now) { id in
            entry = keys.cached(id)
            return entry?.key.secretAccessKey
        }
        if case .failure(.unknownAccessKey(let id)) = result, let fetched = try await keys.fetch(id) {
            entry = fetched
            result = SigV4.verify(signed, now: now) { _ in fetched.key.secretAccessKey }
        }
        switch result {
        case .success(let verified):
            guard let entry else { throw S3Error.invalidAccessKeyId() }
            if verified.presigned { try Self.refuseUnsignedAmzHeaders(request) }
            switch verified.payloadHash {
            case SigV4.unsignedPayload:
                return Caller(client: entry.client, payloadSHA256: nil, streaming: nil)
            case let hash where hash.utf8.count == 64 && hash.allSatisfy(\.isHexDigit):
                return Caller(client: entry.client, payloadSHA256: hash, streaming: nil)
            default:
                guard let mode = AwsChunkedDecoder.mode(for: verified) else {
                    throw S3Error.notImplemented("payload mode \(verified.payloadHash.prefix(60)) is not supported; sign the payload's SHA-256, send UNSIGNED-PAYLOAD or an aws-chunked body")
                }
                return Caller(client: entry.client, payloadSHA256: nil, streaming: mode)
            }
        case .failure(let failure):
            throw S3Error(code: failure.s3Code, message: failure.message, httpStatus: failure.httpStatus)
        }
    }

    /// A presigned URL covers only the headers it names: any other `x-amz-*` header would change
    /// what the request does (`x-amz-copy-source` turns a PUT into a copy of another object), so
    /// it is refused, as S3 refuses it.
    static func refuseUnsignedAmzHeaders(_ request: S3Request) throws {
        let signed = Set((request.query["X-Amz-SignedHeaders"] ?? "").split(separator: ";").map { $0.lowercased() })
        let unsigned = request.headers.map(\.name.canonicalName).filter { $0.hasPrefix("x-amz-") && !signed.contains($0) }
        guard unsigned.isEmpty else {
            throw S3Error.accessDenied("There were headers present in the request which were not signed: \(Set(unsigned).sorted().joined(separator: ", "))")
        }
    }

    /// An S3 error for any failure: S3's own as they are, TYDFS's by what they mean for the
    /// object or bucket the request names.
    static func s3Error(_ error: Error, resource: String) -> S3Error {
        if var failure = error as? S3Error {
            failure.resource = failure.resource ?? resource
            return failure
        }
        guard let failure = error as? TYDFSError else {
            return .internalError("the gateway failed: \(error)", resource: resource)
        }
        switch failure.code {
        case .notFound: return .noSuchKey(failure.message, resource: resource)
        case .forbidden, .unauthenticated: return .accessDenied(failure.message, resource: resource)
        case .directoryNotEmpty: return .bucketNotEmpty(failure.message, resource: resource)
        case .invalidArgument, .alreadyExists: return .invalidArgument(failure.message, resource: resource)
        case .unavailable, .unreachable, .insufficientSpace:
            return S3Error(code: "ServiceUnavailable", message: failure.message, httpStatus: 503, resource: resource)
        default: return .internalError(failure.message, resource: resource)
        }
    }

    static func errorResponse(_ error: S3Error, requestID: String, head: Bool) -> Response {
        var headers: HTTPFields = [.contentType: "application/xml", HTTPField.Name("x-amz-request-id")!: requestID]
        let body = head ? ByteBuffer() : ByteBuffer(string: error.xml(requestID: requestID))
        headers[.contentLength] = String(head ? 0 : body.readableBytes)
        return Response(status: HTTPResponse.Status(code: error.httpStatus), headers: headers, body: ResponseBody(byteBuffer: body))
    }
}

/// Who a request comes from, once checked: a client acting for its key, the body's SHA-256 its
/// signature covers (nil: `UNSIGNED-PAYLOAD` or streaming), and for an `aws-chunked` body how
/// its chunks are signed.
struct Caller {
    let client: TYDFSClient
    let payloadSHA256: String?
    let streaming: AwsChunkedDecoder.Mode?
}

/// Names seen recently; forgotten after `lifetimeSeconds` (expired ones are dropped on every
/// insert, so names that never come back do not pile up).
final class RecentlySeen: Sendable {
    private let lifetime: Duration
    /// By bytes, as the namespace keeps names (see `EntryName`).
    private let seen = NIOLockedValueBox<[EntryName: ContinuousClock.Instant]>([:])

    init(lifetimeSeconds: Int) { lifetime = .seconds(lifetimeSeconds) }

    func contains(_ name: String) -> Bool {
        seen.withLockedValue { seen in
            guard let when = seen[EntryName(name)], ContinuousClock.now - when < lifetime else {
                seen[EntryName(name)] = nil
                return false
            }
            return true
        }
    }

    func insert(_ name: String) {
        seen.withLockedValue { seen in
            let now = ContinuousClock.now
            seen = seen.filter { now - $0.value < lifetime }
            seen[EntryName(name)] = now
        }
    }
    func remove(_ name: String) { seen.withLockedValue { $0[EntryName(name)] = nil } }
}
