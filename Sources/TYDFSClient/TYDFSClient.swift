import AsyncHTTPClient
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import TYDFSCore
import TYDFSFileIO
import TYDFSProtocol
import TYDFSSecurity

/// The TYDFS client library: what the `tydfs` CLI uses and what other Swift programs can use
/// to put, get, list, stat and remove files. Talks JSON to the master and streams raw chunk
/// frames to and from datakeepers; never holds a whole chunk of a local file in memory (only
/// `put(bytes:)` and `read`, made for small files, hold the file they are given or return).
public final class TYDFSClient: Sendable {
    /// The masters given, and the one that leads as far as this client knows.
    public let masters: MasterDirectory
    /// The master requests go to now.
    public var masterURL: String { masters.current }
    let http: HTTPClient
    let logger: Logger
    /// Signs every request to the master; nil sends them unsigned (a master with `--anonymous`).
    let signer: RequestSigner?
    /// `https` when the master's URL is: a cluster runs TLS everywhere or nowhere, so the
    /// datakeepers are reached the same way.
    let scheme: String
    /// How quickly each datakeeper has answered this client's reads: the order replicas are
    /// asked in, and when a read is hedged.
    let replicaLatency = NIOLockedValueBox(ReplicaLatency())
    /// Stats asked at the same time, sent together.
    let lookups = RequestCoalescer<LookupRequest.Item, FileInfo>(
        inFlightLimit: Limits.lookupsInFlight, itemsLimit: Limits.maxLookupsPerRequest)
    /// Small chunks written at the same time down the same pipeline, sent together (`Route.chunkBatch`).
    let chunkBatches = ChunkBatches<ChunkInBatch, ChunkWriteResult>()
    /// Small chunks read whole at the same time from the same datakeeper, asked for together
    /// (`GET` of `Route.chunkBatch`); the answer for each is its frame.
    let chunkReadBatches = ChunkBatches<BatchedChunk, ByteBuffer>()
    /// Masters found without the batched open and commit routes (from before them).
    let batchlessMasters = MissingRoutes()
    /// Masters that refused a body in the compact form (from before it): sent JSON for a while.
    let mastersReadingJSONOnly = MissingRoutes()
    /// Puts opened at the same time, sent together (`Route.openUploads`).
    let uploadOpens = RequestCoalescer<CreateUploadRequest, UploadSession>(
        inFlightLimit: Limits.uploadBatchesInFlight, itemsLimit: Limits.maxUploadsPerBatch)
    /// One-chunk puts committed at the same time, sent together (`Route.commitUploads`).
    let uploadCommits = RequestCoalescer<UploadCommit, FileInfo>(
        inFlightLimit: Limits.uploadBatchesInFlight, itemsLimit: Limits.maxUploadsPerBatch)
    /// The uploads of the puts under way, renewed by one loop.
    let uploadRenewals = UploadRenewals()

    /// `masterURL` like `http://127.0.0.1:9333`, or several masters separated by commas (one
    /// leads; requests find it and follow it across a failover). `concurrency` is how many operations the caller
    /// runs at once (e.g. `put -r --concurrency 16`): the client keeps enough connections to each
    /// server for every range or chunk those operations may have in flight, so none waits for
    /// another's connection (a wait longer than the connect timeout fails the request).
    ///
    /// `signer` signs every request to the master (an access key, or the cluster secret for the
    /// master's own reader); `caFile` names the CA certificates to trust for `https` URLs
    /// (default: the system's).
    public init(
        masterURL: String, concurrency: Int = 1, signer: RequestSigner? = nil, caFile: String? = nil,
        logger: Logger = Logger(label: "tydfs.client")
    ) throws {
        self.masters = try MasterDirectory(masterURL)
        self.scheme = masterURL.hasPrefix("https://") ? "https" : "http"
        self.http = try Self.makeHTTPClient(
            readTimeoutSeconds: Limits.idleTransferTimeoutSeconds + 15, retryRefusedConnections: false,
            connectionsPerServer: concurrency * max(Limits.parallelRangeDownloads, Limits.parallelChunkUploads), caFile: caFile)
        self.signer = signer
        self.logger = logger
    }

    /// The HTTP client every TYDFS party uses to talk to another: a connection that cannot be made
    /// within `Limits.connectTimeoutSeconds` fails; a peer that sends nothing for
    /// `readTimeoutSeconds` (response head or body) fails; every request also has a deadline
    /// (`Limits.transferDeadlineSeconds` for chunk transfers). Clients wait a little longer than
    /// datakeepers (`readTimeoutSeconds`), so that a datakeeper waiting on a dead peer below it
    /// answers its caller before the caller gives up on it. Idle pooled connections are closed
    /// after 30 s, before servers close them (60 s), so a request never lands on a closing one.
    ///
    /// `retryRefusedConnections`: whether a connection that fails to open is tried again, with
    /// back-off, until the connect timeout. Datakeepers keep it (a peer restarting is worth 2 s);
    /// the client library does not, so a command against a master that is down fails at once
    /// with "connection refused" instead of after the connect timeout.
    /// `connectionsPerServer`: connections kept per server, at least AHC's default of 8.
    /// `caFile`: CA certificates (PEM) to trust for `https`, instead of the system's.
    public static func makeHTTPClient(
        readTimeoutSeconds: Int64 = Limits.idleTransferTimeoutSeconds, retryRefusedConnections: Bool = true,
        connectionsPerServer: Int = 8, caFile: String? = nil
    ) throws -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        if let caFile {
            guard FileManager.default.isReadableFile(atPath: caFile) else {
                throw TYDFSError(.notFound, "CA file \(caFile) does not exist or cannot be read")
            }
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .file(caFile)
            tls.shutdownTimeout = .milliseconds(Int64(Limits.tlsCloseWaitMillis))
            configuration.tlsConfiguration = tls
        }
        configuration.timeout = .init(
            connect: .seconds(Limits.connectTimeoutSeconds), read: .seconds(readTimeoutSeconds),
            write: .seconds(Limits.idleTransferTimeoutSeconds))
        configuration.connectionPool.idleTimeout = .seconds(Limits.idleTransferTimeoutSeconds / 2)
        configuration.connectionPool.retryConnectionEstablishment = retryRefusedConnections
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = max(8, connectionsPerServer)
        configuration.decompression = .disabled
        // A standby master's 307 names the leader: callers follow it themselves and remember it.
        configuration.redirectConfiguration = .disallow
        // No tracer: with the default (a no-op tracer) every request still builds a span and its
        // attributes, ~5 % of a small-file client's CPU (measured with perf).
        configuration.tracing.tracer = nil
        return HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
    }

    /// This client acting for another key: the same master and connections, every request
    /// signed by `signer` (the S3 gateway acts for each S3 caller this way). Shut down only the
    /// client it came from, which owns the connections.
    public func signed(by signer: RequestSigner) -> TYDFSClient {
        TYDFSClient(sharing: self, signer: signer)
    }

    private init(sharing other: TYDFSClient, signer: RequestSigner) {
        masters = other.masters
        http = other.http
        logger = other.logger
        scheme = other.scheme
        self.signer = signer
    }

    /// The whole access key `id`, secret included; only the cluster secret may ask (the S3 gateway).
    public func accessKey(_ id: String) async throws -> AccessKey {
        try await control(.GET, Route.key(id))
    }

    public func shutdown() async throws {
        uploadRenewals.stop()
        try await http.shutdown()
    }

    // MARK: - Namespace

    /// `inspecting`: only to look (`tydfs stat`), not to read the file next.
    /// Stats asked at the same time go to the master together (`RequestCoalescer`).
    public func stat(_ path: RemotePath, inspecting: Bool = false) async throws -> FileInfo {
        try await lookups.ask(LookupRequest.Item(path: path, inspect: inspecting)) { items in
            var answers: [Result<FileInfo, any Error>]
            do {
                let response: LookupResponse = try await self.controlCompact(.POST, Route.lookup, body: LookupRequest(items: items), repeatable: true)
                guard response.answers.count == items.count else {
                    throw TYDFSError(.protocolViolation, "the master answered \(response.answers.count) of \(items.count) lookups")
                }
                answers = response.answers.map { answer in Result { try answer.get() } }
            } catch let error as TYDFSError where error.code == .notFound {
                // A master from before lookups: the route itself is missing (a file that is not
                // found is answered inside a 200). One stat each, as then.
                answers = items.map { _ in .failure(TYDFSError(.askAlone, "")) }
            }
            // Files the master left for a stat of their own (too many chunks for one answer).
            for (index, answer) in answers.enumerated() {
                guard case .failure(let error as TYDFSError) = answer, error.code == .askAlone else { continue }
                do {
                    answers[index] = .success(try await self.statAlone(items[index]))
                } catch {
                    answers[index] = .failure(error)
                }
            }
            return answers
        }
    }

    /// One stat, in a request of its own (`GET /v1/files`).
    private func statAlone(_ item: LookupRequest.Item) async throws -> FileInfo {
        try await control(.GET, item.inspect == true ? Route.files + "?\(Query.inspect)=true" : Route.files, query: item.path)
    }

    /// One level of the namespace; with `entryOnly`, `path`'s own entry instead of its children
    /// (a master from before `Query.entryOnly` lists the children, without a subdirectory count).
    /// A directory's children are fetched in pages (see `forEachListPage`) and returned together.
    public func list(_ path: RemotePath, entryOnly: Bool = false) async throws -> ListResponse {
        if entryOnly { return try await controlAnsweredCompact(.GET, Route.list + "?\(Query.entryOnly)=true", query: path) }
        var listing: ListResponse?
        try await forEachListPage(path) { page in
            if listing == nil { listing = page } else { listing!.entries += page.entries }
        }
        return listing!
    }

    /// Lists `path` a page of `pageEntries` entries at a time, handing each page to
    /// `body` as it comes, so a directory of any size is listed in bounded answers (a file lists
    /// as itself, on one page). Each page starts after the last name of the one before: an entry
    /// that stays in the directory meanwhile is listed exactly once, one added or removed
    /// meanwhile may or may not be. A master from before paging answers every entry at once.
    public func forEachListPage(
        _ path: RemotePath, pageEntries: Int = Limits.listPageEntries, _ body: (ListResponse) async throws -> Void
    ) async throws {
        var after: String?
        repeat {
            var page = try await listPage(path, after: after, limit: pageEntries)
            if let after {
                if page.file != nil { throw TYDFSError(.notFound, "\(path) was replaced by a file while it was listed; list it again") }
                if let next = page.nextAfter, !after.precedesByteWise(next) {
                    throw TYDFSError(.protocolViolation, "the master answered a page of \(path) that does not move past '\(after)'")
                }
            }
            after = page.nextAfter
            page.nextAfter = nil
            try await body(page)
        } while after != nil
    }

    /// One page of `path`'s listing: at most `limit` of its entries (a master may answer
    /// fewer), those whose names sort after `after` (byte-wise; all with nil), and `nextAfter`
    /// while more follow. A file lists as itself.
    public func listPage(_ path: RemotePath, after: String?, limit: Int) async throws -> ListResponse {
        var route = Route.list + "?\(Query.listLimit)=\(limit)"
        if let after {
            route += "&\(Query.listAfter)=" + after.asQueryValue
        }
        var page: ListResponse = try await controlAnsweredCompact(.GET, route, query: path)
        if let after {
            // A master from before paging (met in a failover during a rolling upgrade)
            // answers every entry: keep those past `after`.
            let prefix = path.childPrefix
            page.entries.removeAll { entry in entry.path.removingPrefixByteWise(prefix).map { !after.precedesByteWise($0) } ?? false }
        }
        return page
    }

    /// Renames `source` (a file or a directory) to `destination`, or into it when it is an
    /// existing directory; atomic at the master. With `replacing`, as `rename(2)`: to
    /// `destination` itself, replacing a file or empty directory there in the same step.
    @discardableResult
    public func rename(_ source: RemotePath, to destination: RemotePath, replacing: Bool = false) async throws -> RenameResponse {
        try await control(.POST, Route.rename, body: RenameRequest(from: source, to: destination, replace: replacing ? true : nil))
    }

    /// Sets the modification time of the file `path` (milliseconds since 1970; nil keeps it)
    /// and lays `attributes` over those it keeps (an empty value removes one); `path` may also
    /// be a directory, which keeps attributes but no time of its own. Answers what `path` is now.
    @discardableResult
    public func setAttributes(_ path: RemotePath, mtimeMillis: Int64? = nil, attributes: [String: String] = [:]) async throws -> ListEntry {
        try await control(.POST, Route.attributes, body: SetAttributesRequest(path: path, mtimeMillis: mtimeMillis, attributes: attributes))
    }

    /// Joins the files `sources` into one at `target` by moving their chunks, and removes them
    /// (see `ConcatenateRequest` for the files this works on).
    public func concatenate(
        _ sources: [RemotePath], into target: RemotePath, overwrite: Bool, attributes: [String: String] = [:]
    ) async throws -> FileInfo {
        try await control(.POST, Route.concatenate, body: ConcatenateRequest(
            sources: sources, target: target, overwrite: overwrite, attributes: attributes.isEmpty ? nil : attributes))
    }

    /// Makes a directory that exists while empty; with `parents`, one that exists already is fine.
    @discardableResult
    public func makeDirectory(_ path: RemotePath, parents: Bool = false, attributes: [String: String]? = nil) async throws -> DirectoryResponse {
        try await control(.POST, Route.directories, body: MakeDirectoryRequest(path: path, parents: parents, attributes: attributes))
    }

    /// Removes the empty directory at `path`.
    @discardableResult
    public func removeDirectory(_ path: RemotePath) async throws -> DirectoryResponse {
        try await control(.DELETE, Route.directories, query: path)
    }

    @discardableResult
    public func remove(_ path: RemotePath) async throws -> FileInfo {
        try await control(.DELETE, Route.files, query: path)
    }

    /// What each master given says of leadership (`tydfs masters`), asked all at once; a master
    /// that cannot be reached gives its error.
    public func masterRoles() async -> [(url: String, role: Result<MasterRole, TYDFSError>)] {
        await withTaskGroup(of: (Int, Result<MasterRole, TYDFSError>).self) { group in
            for (position, url) in masters.urls.enumerated() {
                group.addTask {
                    do {
                        let response = try await self.http.execute(HTTPClientRequest(url: url + Route.role), timeout: .seconds(5))
                        let payload = try await response.body.collect(upTo: Limits.maxControlMessageBytes)
                        return (position, .success(try PeerError.decode(MasterRole.self, status: response.status, payload: payload, peer: url)))
                    } catch let error as TYDFSError {
                        return (position, .failure(error))
                    } catch {
                        return (position, .failure(TYDFSError(.unreachable, "cannot reach \(url): \(PeerError.describe(error))")))
                    }
                }
            }
            var answers = [(Int, Result<MasterRole, TYDFSError>)]()
            for await answer in group { answers.append(answer) }
            return answers.sorted { $0.0 < $1.0 }.map { (masters.urls[$0.0], $0.1) }
        }
    }

    public func nodes() async throws -> NodesResponse {
        try await control(.GET, Route.nodes)
    }

    /// Starts draining a datakeeper (`tydfs drain`).
    public func drain(_ id: DataKeeperID) async throws -> DrainStatus {
        try await control(.POST, Route.drain(id.value))
    }

    public func drainStatus(_ id: DataKeeperID) async throws -> DrainStatus {
        try await control(.GET, Route.drain(id.value))
    }

    /// Puts a draining or retired datakeeper back in service.
    public func cancelDrain(_ id: DataKeeperID) async throws -> DrainStatus {
        try await control(.DELETE, Route.drain(id.value))
    }

    /// Makes an access key (admin only); the answer holds its secret, shown this once.
    public func createKey(access: AccessLevel, prefix: RemotePath?) async throws -> AccessKey {
        try await control(.POST, Route.keys, body: CreateKeyRequest(access: access, prefix: prefix))
    }

    public func listKeys() async throws -> KeyList {
        try await control(.GET, Route.keys)
    }

    public func revokeKey(_ id: String) async throws {
        let _: [String: String] = try await control(.DELETE, Route.key(id))
    }

    public func fsck(_ path: RemotePath) async throws -> FsckReport {
        try await control(.GET, Route.fsck, query: path)
    }

    /// Tells the master a replica sent bytes that do not match its checksum (best effort).
    func reportBadReplica(_ chunk: ChunkID, on datakeeper: DataKeeperID, message: String) async {
        let _: [String: String]? = try? await control(
            .POST, Route.badReplicas, body: BadReplicaReport(chunk: chunk, datakeeper: datakeeper, message: message))
    }

    // MARK: - Control requests

    func control<Response: Decodable>(_ method: HTTPMethod, _ route: String, query: RemotePath? = nil, repeatable: Bool? = nil) async throws -> Response {
        try await control(method, route, query: query, body: Optional<String>.none, repeatable: repeatable)
    }

    /// One request to the leading master. `repeatable` (default: for GET only) says whether the
    /// request may be sent again after a master took it and then gave no answer (it may have
    /// acted on it): a put's steps are (a retried commit is recognised by its commit id), a
    /// rename or a key creation is not. A request no master received is always sent again.
    func control<Body: Encodable, Response: Decodable>(
        _ method: HTTPMethod, _ route: String, query: RemotePath? = nil, body: Body?, extraSeconds: Int64 = 0, repeatable: Bool? = nil
    ) async throws -> Response {
        let (response, payload, _) = try await exchange(
            method, route, query: query, body: body, compactBody: nil, accept: nil, extraSeconds: extraSeconds, repeatable: repeatable)
        return try PeerError.decode(Response.self, status: response.status, payload: payload, peer: "the master")
    }

    /// As `control`, with the answer asked for in the compact form (`CompactCodec`) and read in
    /// whichever form it comes (a master from before the form answers JSON).
    func controlAnsweredCompact<Response: Decodable & CompactCodable>(_ method: HTTPMethod, _ route: String, query: RemotePath) async throws -> Response {
        let (response, payload, _) = try await exchange(
            method, route, query: query, body: Optional<String>.none, compactBody: nil, accept: CompactCodec.contentType, extraSeconds: 0, repeatable: nil)
        return try PeerError.decode(Response.self, from: response, payload: payload, peer: "the master")
    }

    /// As `control`, in the compact form (`CompactCodec`) both ways: the body is sent in it and the
    /// answer asked for in it, and read in whichever form it comes. A master from before the form
    /// answers JSON, and refuses a compact body (400, having read it as a malformed JSON request;
    /// no route acts before its body is read): the request is then sent again in JSON, as are the
    /// next ones to that master for a while (`mastersReadingJSONOnly`). Any other 400 stands.
    func controlCompact<Body: Encodable & CompactCodable, Response: Decodable & CompactCodable>(
        _ method: HTTPMethod, _ route: String, body: Body, repeatable: Bool? = nil
    ) async throws -> Response {
        let compactBody = CompactCodec.encode(body)
        var (response, payload, compactSentTo) = try await exchange(
            method, route, query: nil, body: body, compactBody: compactBody, accept: CompactCodec.contentType, extraSeconds: 0, repeatable: repeatable)
        if response.status == .badRequest, let master = compactSentTo,
           let refusal = try? JSONDecoder().decode(ErrorResponse.self, from: Data(payload.readableBytesView)).tydfsError,
           refusal.code == .protocolViolation, refusal.message.hasPrefix(CompactCodec.malformedJSONRequestPrefix),
           !refusal.message.hasPrefix(CompactCodec.malformedCompactRequestPrefix) {
            // Read as malformed JSON: a master from before the form (one that reads it refuses a
            // body it cannot read as malformed compact, and that error stands).
            logger.info("master does not read compact bodies, sending JSON", metadata: ["master": "\(master)"])
            mastersReadingJSONOnly.missing(at: master)
            (response, payload, _) = try await exchange(
                method, route, query: nil, body: body, compactBody: nil, accept: CompactCodec.contentType, extraSeconds: 0, repeatable: repeatable)
        }
        return try PeerError.decode(Response.self, from: response, payload: payload, peer: "the master")
    }

    /// One exchange with the leading master (see `control`): its answer, not yet read, and the
    /// master the body went to in the compact form, if it did. `compactBody` goes instead of
    /// `body`'s JSON to a master not known to read JSON only.
    private func exchange<Body: Encodable>(
        _ method: HTTPMethod, _ route: String, query: RemotePath?, body: Body?, compactBody: [UInt8]?, accept: String?, extraSeconds: Int64,
        repeatable: Bool?
    ) async throws -> (response: HTTPClientResponse, payload: ByteBuffer, compactSentTo: String?) {
        var target = route
        if let query {
            target += (route.contains("?") ? "&" : "?") + "path=" + query.value.asQueryValue
        }
        // JSON only when some master is sent it.
        var json: [UInt8]?
        func jsonBytes() throws -> [UInt8] {
            if let json { return json }
            let encoded = try body.map { Array(try JSONEncoder().encode($0)) } ?? []
            json = encoded
            return encoded
        }
        var compactSentTo: String?
        // With several masters, a dead leader or a standby is not the end: the request goes to
        // the leader a standby names, or to the next master, until one leads (a failover takes
        // a lease period) or `Limits.masterFailoverSeconds` pass.
        // With several masters, one that does not answer within `Limits.masterAnswerSeconds`
        // (paused, hung) is left for the next; a lone master gets the whole control timeout.
        let (response, payload) = try await masters.send(
            http, timeout: .seconds((masters.isSeveral ? Limits.masterAnswerSeconds : Limits.controlRequestTimeoutSeconds) + extraSeconds),
            patienceSeconds: masters.isSeveral ? Limits.masterFailoverSeconds : 0, repeatable: repeatable ?? (method == .GET)
        ) { master in
            var request = HTTPClientRequest(url: master + target)
            request.method = method
            request.carryRequestID()
            var bytes: [UInt8] = []
            compactSentTo = nil
            if let compactBody, !mastersReadingJSONOnly.isMissing(at: master) {
                bytes = compactBody
                compactSentTo = master
                request.headers.add(name: "Content-Type", value: CompactCodec.contentType)
                request.body = .bytes(ByteBuffer(bytes: bytes))
            } else if body != nil {
                bytes = try jsonBytes()
                request.headers.add(name: "Content-Type", value: "application/json")
                request.body = .bytes(ByteBuffer(bytes: bytes))
            }
            if let accept { request.headers.add(name: "Accept", value: accept) }
            if let signer { request.sign(with: signer, target: target, body: bytes) }
            return request
        }
        return (response, payload, compactSentTo)
    }
}

/// Reading peers' answers, for every TYDFS party that calls another: a typed value on success,
/// the peer's own error message otherwise.
public enum PeerError {
    /// Throws the peer's error (or says it gave none) unless `status` is 200 OK.
    public static func check(status: HTTPResponseStatus, payload: ByteBuffer, peer: String) throws {
        guard status == .ok else {
            if let error = try? JSONDecoder().decode(ErrorResponse.self, from: Data(payload.readableBytesView)) { throw error.tydfsError }
            throw TYDFSError(.protocolViolation, "\(peer) answered HTTP \(status.code) without an error message")
        }
    }

    public static func decode<T: Decodable>(_ type: T.Type, status: HTTPResponseStatus, payload: ByteBuffer, peer: String) throws -> T {
        try check(status: status, payload: payload, peer: peer)
        do {
            return try JSONDecoder().decode(T.self, from: Data(payload.readableBytesView))
        } catch {
            throw TYDFSError(.protocolViolation, "\(peer) sent a malformed \(T.self): \(error)")
        }
    }

    /// As `decode(_:status:payload:peer:)`, for an answer asked for in the compact form
    /// (`CompactCodec`): read in the form its `Content-Type` names.
    public static func decode<T: Decodable & CompactCodable>(
        _ type: T.Type, from response: HTTPClientResponse, payload: ByteBuffer, peer: String
    ) throws -> T {
        guard response.status == .ok, response.headers.first(name: "Content-Type") == CompactCodec.contentType else {
            return try decode(type, status: response.status, payload: payload, peer: peer)
        }
        do {
            return try payload.withUnsafeReadableBytes { try CompactCodec.decode(T.self, from: $0) }
        } catch let error as TYDFSError {
            throw TYDFSError(.protocolViolation, "\(peer) sent a malformed \(T.self): \(error.message)")
        }
    }

    /// A transport error in a few words a user can act on.
    public static func describe(_ error: Error) -> String {
        if let error = error as? TYDFSError { return error.message }
        if let error = error as? HTTPClientError {
            switch error {
            case .connectTimeout: return "connection timed out"
            case .readTimeout: return "no data for too long"
            case .writeTimeout: return "could not send for \(Limits.idleTransferTimeoutSeconds) s"
            case .deadlineExceeded: return "request took too long"
            case .remoteConnectionClosed: return "connection closed by the peer"
            default: return "\(error)"
            }
        }
        if let error = error as? NIOConnectionError {
            if error.dnsAError != nil || error.dnsAAAAError != nil, error.connectionErrors.isEmpty {
                return "cannot resolve \(error.host)"
            }
            guard let first = error.connectionErrors.first?.error else { return "cannot connect to \(error.host):\(error.port)" }
            return describe(first)
        }
        if let error = error as? IOError {
            return error.errnoCode == ECONNREFUSED ? "connection refused" : error.description
        }
        return "\(error)"
    }
}

extension CharacterSet {
    /// Characters that may stand unescaped in a query value.
    static let urlQueryValueAllowed: CharacterSet = {
        var set = CharacterSet.urlQueryAllowed
        set.remove(charactersIn: "&=+#?")
        return set
    }()
}

extension String {
    /// This text as a query value: escaped where `CharacterSet.urlQueryValueAllowed` says.
    var asQueryValue: String { addingPercentEncoding(withAllowedCharacters: .urlQueryValueAllowed) ?? self }
}

extension HTTPClientRequest {
    /// Signs the request (`RequestSignature`): `target` is its path and query as sent, `body`
    /// the bytes it carries.
    public mutating func sign(with signer: RequestSigner, target: String, body: some Sequence<UInt8>) {
        for (name, value) in signer.headers(method: method.rawValue, target: target, body: body, date: UnixClock.now) {
            headers.replaceOrAdd(name: name, value: value)
        }
    }

    /// Adds the current operation's `RequestID`, if any, so the peer's log names it too.
    public mutating func carryRequestID() {
        if let id = RequestID.current { headers.replaceOrAdd(name: Header.requestID, value: id) }
    }
}
