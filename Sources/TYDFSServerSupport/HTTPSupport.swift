import Foundation
import HTTPTypes
import Hummingbird
import Logging
import HummingbirdCore
import HummingbirdTLS
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import ServiceLifecycle
import TYDFSCore
import TYDFSProtocol

extension TYDFSError: HTTPResponseError {
    /// The HTTP status each error code travels with.
    public var status: HTTPResponse.Status {
        switch code {
        case .invalidArgument, .protocolViolation: return .badRequest
        case .notFound, .uploadUnknown: return .notFound
        case .alreadyExists, .directoryNotEmpty: return .conflict
        case .unavailable, .unreachable, .notLeader: return .serviceUnavailable
        case .insufficientSpace: return HTTPResponse.Status(code: 507, reasonPhrase: "Insufficient Storage")
        case .checksumMismatch: return .unprocessableContent
        case .unauthenticated: return .unauthorized
        case .forbidden: return .forbidden
        default: return .internalServerError
        }
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = try JSON.response(ErrorResponse(self))
        response.status = status
        return response
    }
}

/// JSON in and out of control requests: bounded reads, one encoder configuration everywhere.
public enum JSON {
    public static func response(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try JSONEncoder().encode(value)
        return Response(
            status: status, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// Reads and decodes a request body of at most `Limits.maxControlMessageBytes`.
    public static func decode<T: Decodable>(_ type: T.Type, from request: Request) async throws -> T {
        try decode(type, body: try await collectBody(of: request))
    }

    /// As `decode(_:from:)`, but a body sent with `Content-Type: CompactCodec.contentType` is read
    /// in that form.
    public static func decodeJSONOrCompact<T: Decodable & CompactCodable>(_ type: T.Type, from request: Request) async throws -> T {
        let body = try await collectBody(of: request)
        guard request.headers[.contentType] == CompactCodec.contentType else { return try decode(type, body: body) }
        return try body.withUnsafeReadableBytes { bytes in
            do {
                return try CompactCodec.decode(type, from: bytes)
            } catch let error as TYDFSError {
                throw TYDFSError(.protocolViolation, CompactCodec.malformedCompactRequestPrefix + "\(T.self) request: \(error.message)")
            }
        }
    }

    /// `value` in the compact form when `request` accepts it (`Accept: CompactCodec.contentType`),
    /// else in JSON.
    public static func responseJSONOrCompact(_ value: some Encodable & CompactCodable, to request: Request) throws -> Response {
        guard request.headers[.accept] == CompactCodec.contentType else { return try response(value) }
        return Response(
            status: .ok, headers: [.contentType: CompactCodec.contentType],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: CompactCodec.encode(value))))
    }

    private static func collectBody(of request: Request) async throws -> ByteBuffer {
        do {
            return try await request.body.collect(upTo: Limits.maxControlMessageBytes)
        } catch {
            throw TYDFSError(.protocolViolation, "request body is larger than \(Limits.maxControlMessageBytes) bytes or was cut off")
        }
    }

    private static func decode<T: Decodable>(_ type: T.Type, body: ByteBuffer) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: Data(body.readableBytesView))
        } catch let error as TYDFSError {
            throw error
        } catch {
            throw TYDFSError(.protocolViolation, CompactCodec.malformedJSONRequestPrefix + "\(T.self) request: \(Self.describe(error))")
        }
    }

    /// A decoding error in one line, naming the field that was wrong.
    public static func describe(_ error: Error) -> String {
        guard let decodingError = error as? DecodingError else { return "\(error)" }
        switch decodingError {
        case .keyNotFound(let key, _): return "missing field '\(key.stringValue)'"
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            if let underlying = context.underlyingError as? TYDFSError { return underlying.message }
            return path.isEmpty ? context.debugDescription : "field '\(path)': \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }
}

extension Request {
    /// A required query item; a clear 400 when it is missing.
    public func queryItem(_ name: String) throws -> String {
        guard let value = try optionalQueryItem(name) else {
            throw TYDFSError(.invalidArgument, "missing query parameter '\(name)'")
        }
        return value
    }

    /// The first query item `name`, percent-decoded strictly: a malformed escape or bytes that
    /// are not UTF-8 are a 400, never replaced (Hummingbird's `queryParameters` substitutes
    /// U+FFFD, so two different byte strings would name one file).
    public func optionalQueryItem(_ name: String) throws -> String? {
        guard let query = uri.query else { return nil }
        for item in query.utf8.split(separator: UInt8(ascii: "&")) {
            let parts = item.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            guard try Self.percentDecoded(parts[0], item: name) == name else { continue }
            return try parts.count > 1 ? Self.percentDecoded(parts[1], item: name) : ""
        }
        return nil
    }

    private static func percentDecoded(_ text: Substring.UTF8View, item: String) throws -> String {
        guard let bytes = Hex.percentDecodedBytes(text) else {
            throw TYDFSError(.invalidArgument, "query parameter '\(item)' has a malformed %-escape")
        }
        guard let decoded = String(validating: bytes, as: UTF8.self) else {
            throw TYDFSError(.invalidArgument, "query parameter '\(item)' is not valid UTF-8")
        }
        return decoded
    }
}

/// Turns any error a handler throws into a JSON error response, so that no client ever sees an
/// HTML page or an empty 500, and logs the ones that are the server's fault.
public struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as TYDFSError {
            if error.status == .internalServerError {
                context.logger.error("request failed", metadata: ["error": "\(error.message)", "path": "\(request.uri.path)"])
            }
            throw error
        } catch let error as HTTPResponseError {
            let wrapped = TYDFSError(error.status == .notFound ? .notFound : .invalidArgument, "\(request.method) \(request.uri.path): HTTP \(error.status.code)")
            throw wrapped
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(error)", "path": "\(request.uri.path)"])
            throw TYDFSError(.internal, "\(error)")
        }
    }
}

/// Logs every request refused for its credentials (401) or their scope (403), with the reason.
public struct RefusalLogMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as TYDFSError where error.code == .unauthenticated || error.code == .forbidden {
            context.logger.requestRefused(error, method: "\(request.method)", path: request.uri.path)
            throw error
        }
    }
}

extension Logger {
    /// Logs `refusal` as every refused request is logged (`RefusalLogMiddleware`, the master's
    /// access checks); `details` say which part of a batched request (a lookup's file) was
    /// refused on its own.
    public func requestRefused(_ refusal: TYDFSError, method: String, path: String, details: Logger.Metadata = [:]) {
        warning("request refused", metadata: details.merging([
            "method": "\(method)", "path": "\(path)", "reason": "\(refusal.message)",
        ]) { _, refusalField in refusalField })
    }
}

/// Tunes each accepted connection:
/// - raises its receive buffer from NIO's 64 KiB default, which roughly halves the CPU a server
///   spends per byte received (measured: see shared/notes/data-path-facts.md);
/// - sets `TCP_USER_TIMEOUT`, so a peer that stops taking what is sent (a reader that stopped
///   reading, a vanished host) has the connection dropped by the kernel after
///   `Limits.unacknowledgedSendSeconds`, instead of holding the response, and its transfer slot,
///   until the connection dies of old age. It covers a full receive window too (measured here:
///   a stopped reader's connection fails about 0.5 s after the timeout).
final class ConnectionTuning: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    let maximumBytes: Int

    init(maximumBytes: Int) { self.maximumBytes = maximumBytes }

    func handlerAdded(context: ChannelHandlerContext) {
        let allocator = AdaptiveRecvByteBufferAllocator(minimum: 64 * 1024, initial: maximumBytes, maximum: maximumBytes)
        _ = context.channel.setOption(ChannelOptions.recvAllocator, value: allocator)
        _ = context.channel.setOption(
            ChannelOptions.tcpOption(NIOBSDSocket.Option(rawValue: CInt(TCP_USER_TIMEOUT))),
            value: SocketOptionValue(Limits.unacknowledgedSendSeconds * 1000))
    }
}

/// The certificate chain and private key (PEM files) a server presents with `--tls-cert` and
/// `--tls-key`.
public struct TLSFiles: Sendable, Equatable {
    public var certificate: String
    public var privateKey: String

    public init(certificate: String, privateKey: String) {
        self.certificate = certificate
        self.privateKey = privateKey
    }

    /// Both flags or neither.
    public static func from(certificate: String?, privateKey: String?) throws -> TLSFiles? {
        switch (certificate, privateKey) {
        case (nil, nil): return nil
        case (let certificate?, let privateKey?): return TLSFiles(certificate: certificate, privateKey: privateKey)
        default: throw TYDFSError(.invalidArgument, "--tls-cert and --tls-key go together: give both, or neither for plain HTTP")
        }
    }

    func serverConfiguration() throws -> TLSConfiguration {
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(certificate).map { NIOSSLCertificateSource.certificate($0) }
            let key = try NIOSSLPrivateKey(file: privateKey, format: .pem)
            var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
            // Closing a connection waits for the peer's close_notify at most this long (NIO's
            // default is 5 s): a server shutting down closes its idle keep-alive connections,
            // and waited 5 s for each peer that never answered (measured: `tydfs cluster --tls`
            // took 5 s to stop, 15 s after a few commands).
            configuration.shutdownTimeout = .milliseconds(Int64(Limits.tlsCloseWaitMillis))
            return configuration
        } catch {
            throw TYDFSError(.invalidArgument, "cannot load the TLS certificate \(certificate) and key \(privateKey): \(error)")
        }
    }
}

/// Closes a connection on arrival when its remote address already holds
/// `Limits.maxConnectionsPerPeer`, so one host cannot take every socket a server has.
final class ConnectionsPerPeer: Sendable {
    private let counts = NIOLockedValueBox<[String: Int]>([:])
    let limit: Int

    init(limit: Int) { self.limit = limit }

    /// One per connection, sharing the counts.
    func handler() -> Tracker { Tracker(owner: self) }

    final class Tracker: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = NIOAny
        let owner: ConnectionsPerPeer
        private var peer: String?

        init(owner: ConnectionsPerPeer) { self.owner = owner }

        func channelActive(context: ChannelHandlerContext) {
            let peer = context.channel.remoteAddress?.ipAddress ?? "?"
            let admitted = owner.counts.withLockedValue { counts in
                guard counts[peer, default: 0] < owner.limit else { return false }
                counts[peer, default: 0] += 1
                return true
            }
            guard admitted else {
                context.close(promise: nil)
                return
            }
            self.peer = peer
            context.fireChannelActive()
        }

        func channelInactive(context: ChannelHandlerContext) {
            if let peer {
                owner.counts.withLockedValue { counts in
                    counts[peer, default: 1] -= 1
                    if counts[peer] == 0 { counts[peer] = nil }
                }
                self.peer = nil
            }
            context.fireChannelInactive()
        }
    }
}

/// Builds the Hummingbird application every TYDFS server runs: the routes, the error handling,
/// a larger receive buffer, at most `Limits.maxConnectionsPerPeer` connections per remote
/// address, HTTPS when `tls` is given, a connection closed when a request stops arriving for
/// `idleTimeoutSeconds`, and a callback with the port actually bound (it may be 0).
public enum HTTPServer {
    public static func application<Responder: HTTPResponder>(
        responder: Responder, host: String, port: Int, tls: TLSFiles? = nil, idleTimeoutSeconds: Double, logger: Logger,
        onListening: @escaping @Sendable (Int) async -> Void
    ) throws -> some Service where Responder.Context == BasicRequestContext {
        let peers = ConnectionsPerPeer(limit: Limits.maxConnectionsPerPeer)
        // idleTimeout closes a connection whose request body stops arriving (a stalled or
        // vanished sender), which frees the chunk's reservation and temporary file.
        let http = HTTPServerBuilder.http1(configuration: .init(
            additionalChannelHandlers: [peers.handler(), ConnectionTuning(maximumBytes: Limits.ioBufferBytes / 4), ExpectContinueHandler()],
            idleTimeout: .nanoseconds(Int64(idleTimeoutSeconds * 1e9))))
        return Listener(address: "\(host):\(port)", application: Application(
            responder: responder,
            server: try tls.map { try .tls(http, tlsConfiguration: try $0.serverConfiguration()) } ?? http,
            configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: "tydfs"),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? port) },
            logger: logger))
    }

    /// Runs an application and turns a failure to bind into a message that names the address,
    /// so `tydfs master --listen` on a taken port says so instead of quoting a system call.
    struct Listener<App: ApplicationProtocol>: Service {
        let address: String
        let application: App

        func run() async throws {
            do {
                try await application.run()
            } catch let error as IOError where [EADDRINUSE, EADDRNOTAVAIL, EACCES].contains(error.errnoCode) {
                let reason = switch error.errnoCode {
                case EADDRINUSE: "the port is already in use by another process"
                case EADDRNOTAVAIL: "no interface of this machine has that address"
                default: "permission denied (ports below 1024 need privileges)"
                }
                throw TYDFSError(.invalidArgument, "cannot listen on \(address): \(reason); choose another --listen address")
            }
        }
    }
}

/// Splits `host:port`, as given to `--listen`, `--advertise` or found in a pipeline header.
public func splitHostPort(_ text: String) throws -> (host: String, port: Int) {
    guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
          (0...65535).contains(port), colon != text.startIndex
    else {
        throw TYDFSError(.invalidArgument, "'\(text)' is not host:port (e.g. 127.0.0.1:9333)")
    }
    return (String(text[..<colon]), port)
}

extension HTTPField.Name {
    /// `Header.dataBytes` as a field name.
    public static let tydfsDataBytes = HTTPField.Name(Header.dataBytes)!
    /// `Header.forward` as a field name.
    public static let tydfsForward = HTTPField.Name(Header.forward)!
    public static let tydfsDataKeeper = HTTPField.Name(Header.dataKeeper)!
    public static let tydfsReportID = HTTPField.Name(Header.reportID)!
    public static let tydfsReportPage = HTTPField.Name(Header.reportPage)!
    public static let tydfsReportLastPage = HTTPField.Name(Header.reportLastPage)!
    public static let tydfsReportAnchor = HTTPField.Name(Header.reportAnchor)!
    public static let tydfsChunkToken = HTTPField.Name(Header.chunkToken)!
    public static let tydfsChunks = HTTPField.Name(Header.chunks)!
    public static let tydfsChunkStatuses = HTTPField.Name(Header.chunkStatuses)!
    public static let tydfsLeader = HTTPField.Name(Header.leader)!
}

extension HTTPField.Name {
    /// `Header.requestID` as a field name.
    public static let tydfsRequestID = HTTPField.Name(Header.requestID)!
}

/// Runs a request that carries a `RequestID` with that id as the task's current one, so every
/// log line it causes (here, and on the datakeepers it forwards to) names it; echoes it back.
public struct RequestIDMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let id = request.headers[.tydfsRequestID].flatMap(RequestID.validated) else { return try await next(request, context) }
        var response = try await RequestID.$current.withValue(id) { try await next(request, context) }
        response.headers[.tydfsRequestID] = id
        return response
    }
}
