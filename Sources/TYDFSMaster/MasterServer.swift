import Hummingbird
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle
import TYDFSClient
import TYDFSCore
import TYDFSFileIO
import TYDFSMetadata
import TYDFSProtocol
import TYDFSSecurity
import TYDFSServerSupport

/// The master process: the metadata store, the state actor and the HTTP routes over them.
public enum MasterServer {
    /// Routes of the master's HTTP API (see `Route` for the paths). Each handler checks what
    /// its caller may do (`RequestPrincipal.require`) before it reads or changes anything.
    static func router(
        state: MasterState, reader: TYDFSClient, access: AccessMiddleware<BasicRequestContext>
    ) -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: MetricsMiddleware())
        router.add(middleware: RequestIDMiddleware())
        router.add(middleware: ErrorMiddleware())
        router.add(middleware: access)
        let require = RequestPrincipal.require
        /// Why one item of a batched request may not go on (nil: it may), logged as a refused
        /// request is: the items of several callers travel together, and each is authorized alone.
        @Sendable func refusal(of need: Principal.Need, file: RemotePath, route: String, _ context: BasicRequestContext) -> TYDFSError? {
            do {
                try require(need)
                return nil
            } catch {
                let refusal = TYDFSError.from(error)
                context.logger.requestRefused(refusal, method: "POST", path: route, details: ["file": "\(file)"])
                return refusal
            }
        }
        /// Answers every item of a batch with `answer`, all at once, each with its value or its own error.
        @Sendable func answeringEach<Item: Sendable, Value: Codable & Sendable>(
            _ items: [Item], _ answer: @escaping @Sendable (Item) async throws -> Value
        ) async -> [BatchAnswer<Value>] {
            await items.concurrentMap { item in
                do { return BatchAnswer(.success(try await answer(item))) } catch { return BatchAnswer(.failure(TYDFSError.from(error))) }
            }
        }
        @Sendable func checkBatch(_ count: Int) throws {
            guard count <= Limits.maxUploadsPerBatch else {
                throw TYDFSError(.invalidArgument, "a batch carries at most \(Limits.maxUploadsPerBatch) puts, not \(count)")
            }
        }
        let keys = access.keys
        router.get(RouterPath(Route.dashboard)) { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-cache"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: DashboardPage.html)))
        }
        router.get(RouterPath(Route.metrics)) { _, _ in
            MasterMetrics.publish(try await state.clusterSummary())
            return Telemetry.response()
        }
        router.get(RouterPath(Route.cluster)) { _, _ in
            try require(.look)
            return try JSON.response(try await state.clusterSummary())
        }
        router.get(RouterPath(Route.events)) { request, _ in
            try require(.look)
            guard let after = Int(try request.optionalQueryItem("after") ?? "0"), after >= 0 else { throw TYDFSError(.invalidArgument, "'after' must be an event id (a whole number ≥ 0)") }
            return try JSON.response(await state.events.after(after))
        }
        let downloads = NIOLockedValueBox(0)
        router.get(RouterPath(Route.content)) { request, _ in
            let path = try RemotePath(try request.queryItem("path"))
            try require(.read(path))
            let info = try await state.stat(path)
            // Each download holds a piece of a chunk in the master's memory (`Limits.readPieceBytes`): a few at once, no more.
            guard downloads.withLockedValue({ count in
                guard count < Limits.masterDownloadsAtOnce else { return false }
                count += 1
                return true
            }) else {
                throw TYDFSError(.unavailable, "the master serves \(Limits.masterDownloadsAtOnce) downloads at once; try again, or use `tydfs get`")
            }
            let name = info.path.isRoot ? "file" : info.path.name
            let quoted = name.replacingOccurrences(of: "\\", with: "_").replacingOccurrences(of: "\"", with: "_")
            // The slot is given back when the body is done with, written or not: Hummingbird
            // never runs the body of a response whose client left before its head went out.
            let slot = DownloadSlot(downloads)
            let body = ResponseBody(contentLength: Int(info.sizeBytes)) { writer in
                try await slot.holding {
                    try await reader.read(info) { try await writer.write(contentsOf: $0) }
                    try await writer.finish(nil)
                }
            }
            return Response(status: .ok, headers: [
                .contentType: "application/octet-stream", .contentDisposition: "attachment; filename=\"\(quoted)\"",
            ], body: body)
        }
        router.post(RouterPath(Route.leave)) { request, _ in
            try require(.cluster)
            await state.leave(try await JSON.decode(LeaveRequest.self, from: request))
            return try JSON.response(["status": "left"])
        }
        let drainPath = RouterPath(Route.drain(":datakeeper"))
        @Sendable func datakeeper(_ context: BasicRequestContext) throws -> DataKeeperID {
            try DataKeeperID(try context.parameters.require("datakeeper"))
        }
        router.post(drainPath) { _, context in
            try require(.admin)
            return try JSON.response(try await state.drain(try datakeeper(context)))
        }
        router.get(drainPath) { _, context in
            try require(.look)
            return try JSON.response(try await state.drainStatus(try datakeeper(context)))
        }
        router.delete(drainPath) { _, context in
            try require(.admin)
            return try JSON.response(try await state.cancelDrain(try datakeeper(context)))
        }
        router.get(RouterPath(Route.keys)) { _, _ in
            try require(.admin)
            return try JSON.response(KeyList(keys: keys.list().map(KeyListing.init)))
        }
        router.post(RouterPath(Route.keys)) { request, context in
            try require(.admin)
            let wanted = try await JSON.decode(CreateKeyRequest.self, from: request)
            let key = try keys.create(access: wanted.access, prefix: wanted.prefix)
            context.logger.notice("access key created", metadata: ["key": "\(key.accessKeyID)", "access": "\(key.access.rawValue)", "prefix": "\(key.prefix?.value ?? "/")"])
            return try JSON.response(key)
        }
        // The whole key, secret included, for the cluster's own parties only: the S3 gateway
        // checks S3 signatures with it.
        router.get(RouterPath(Route.key(":key"))) { _, context in
            try require(.cluster)
            let id = try context.parameters.require("key")
            guard let key = keys.lookup(id) else { throw TYDFSError(.notFound, "no access key \(id.prefix(40))") }
            return try JSON.response(key)
        }
        router.delete(RouterPath(Route.key(":key"))) { request, context in
            try require(.admin)
            let id = try context.parameters.require("key")
            guard try keys.revoke(id) else { throw TYDFSError(.notFound, "no access key \(id.prefix(40))") }
            context.logger.notice("access key revoked", metadata: ["key": "\(id)"])
            return try JSON.response(["revoked": id])
        }
        for path in [Route.health, Route.healthz] {
            router.get(RouterPath(path)) { _, _ in try JSON.response(["status": "ok"]) }
        }
        router.get(RouterPath(Route.readyz)) { _, _ in
            guard await state.inSafeMode else { return try JSON.response(["status": "ready"]) }
            return try JSON.response(
                ["status": "safe mode: waiting for the datakeepers that hold replicas to report"], status: .serviceUnavailable)
        }
        router.post(RouterPath(Route.heartbeat)) { request, _ in
            try require(.cluster)
            return try JSON.response(try await state.heartbeat(try await JSON.decode(HeartbeatRequest.self, from: request)))
        }
        router.post(RouterPath(Route.chunkReport)) { request, _ in
            try require(.cluster)
            let headers = request.headers
            guard let datakeeper = headers[.tydfsDataKeeper].flatMap({ try? DataKeeperID($0) }),
                  let reportID = headers[.tydfsReportID], !reportID.isEmpty, reportID.utf8.count <= 64,
                  let page = headers[.tydfsReportPage].flatMap({ Int($0) }), page >= 0,
                  let anchor = headers[.tydfsReportAnchor].flatMap({ UInt64($0) }),
                  let last = headers[.tydfsReportLastPage].flatMap({ Bool($0) })
            else {
                throw TYDFSError(.invalidArgument, "a chunk report page needs the headers \(Header.dataKeeper), \(Header.reportID), \(Header.reportPage), \(Header.reportAnchor) and \(Header.reportLastPage)")
            }
            let body: ByteBuffer
            do {
                body = try await request.body.collect(upTo: Limits.chunksPerReportPage * ChunkIDList.bytesPerID)
            } catch {
                throw TYDFSError(.protocolViolation, "a chunk report page holds at most \(Limits.chunksPerReportPage) chunk ids")
            }
            let chunks = try body.withUnsafeReadableBytes { try ChunkIDList.decode($0) }
            try await state.chunkReportPage(
                from: datakeeper, reportID: reportID, page: page, anchor: anchor, chunks: chunks, isLast: last)
            return try JSON.response(["status": "accepted"])
        }
        router.get(RouterPath(Route.nodes)) { _, _ in
            try require(.look)
            return try JSON.response(try await state.nodes())
        }
        router.get(RouterPath(Route.fsck)) { request, _ in
            let path = try RemotePath(request.optionalQueryItem("path") ?? "/")
            try require(.read(path))
            return try JSON.response(try await state.fsck(path))
        }
        router.post(RouterPath(Route.badReplicas)) { request, _ in
            try require(.look)
            await state.badReplicaReported(try await JSON.decode(BadReplicaReport.self, from: request))
            return try JSON.response(["status": "verification ordered"])
        }
        router.post(RouterPath(Route.uploads)) { request, _ in
            let body = try await JSON.decode(CreateUploadRequest.self, from: request)
            try require(.write(body.path))
            return try JSON.response(try await state.createUpload(body))
        }
        // An upload's later steps are allowed to whoever may write its path (checked again:
        // a key revoked or narrowed mid-upload stops there).
        @Sendable func uploadID(_ context: BasicRequestContext) async throws -> String {
            let id = try context.parameters.require("upload")
            try require(.write(try await state.uploadPath(uploadID: id)))
            return id
        }
        router.post("/v1/uploads/:upload/chunks") { request, context in
            let id = try await uploadID(context)
            let body = try await JSON.decode(AllocateChunkRequest.self, from: request)
            return try JSON.response(try await state.allocateChunk(uploadID: id, request: body))
        }
        router.post("/v1/uploads/:upload/commit") { request, context in
            let id = try await uploadID(context)
            let body = try await JSON.decode(CommitUploadRequest.self, from: request)
            return try JSON.response(try await state.commit(uploadID: id, request: body))
        }
        router.post("/v1/uploads/:upload/renew") { _, context in
            try await state.renewUpload(uploadID: try await uploadID(context))
            return try JSON.response(["status": "renewed"])
        }
        router.delete("/v1/uploads/:upload") { _, context in
            await state.abortUpload(uploadID: try await uploadID(context))
            return try JSON.response(["status": "aborted"])
        }
        router.post(RouterPath(Route.openUploads)) { request, context in
            let body = try await JSON.decodeJSONOrCompact(OpenUploadsRequest.self, from: request)
            try checkBatch(body.items.count)
            // All at once: one that waits (a retried put's commit becoming durable) holds up no other.
            let answers = await answeringEach(body.items) { item in
                if let refused = refusal(of: .write(item.path), file: item.path, route: Route.openUploads, context) { throw refused }
                return try await state.createUpload(item)
            }
            return try JSON.responseJSONOrCompact(OpenUploadsResponse(answers: answers), to: request)
        }
        router.post(RouterPath(Route.commitUploads)) { request, context in
            let body = try await JSON.decodeJSONOrCompact(CommitUploadsRequest.self, from: request)
            try checkBatch(body.items.count)
            // Each authorized on its own, then all committed together: one transaction, one fsync.
            var refusals: [TYDFSError?] = []
            for item in body.items {
                do {
                    let path = try await state.uploadPath(uploadID: item.uploadID)
                    refusals.append(refusal(of: .write(path), file: path, route: Route.commitUploads, context))
                } catch {
                    refusals.append(TYDFSError.from(error))
                }
            }
            var committed = await state.commit(zip(body.items, refusals).compactMap { $1 == nil ? $0 : nil }).makeIterator()
            let answers = refusals.map { refused in
                BatchAnswer<FileInfo>(refused.map { .failure($0) } ?? committed.next()!.mapError(TYDFSError.from))
            }
            return try JSON.responseJSONOrCompact(CommitUploadsResponse(answers: answers), to: request)
        }
        router.get(RouterPath(Route.files)) { request, _ in
            let path = try RemotePath(try request.queryItem("path"))
            try require(.read(path))
            let reading = try request.optionalQueryItem(Query.inspect) != "true"
            return try JSON.response(try await state.stat(path, countingReads: reading))
        }
        router.post(RouterPath(Route.lookup)) { request, context in
            let body = try await JSON.decodeJSONOrCompact(LookupRequest.self, from: request)
            guard body.items.count <= Limits.maxLookupsPerRequest else {
                throw TYDFSError(.invalidArgument, "a lookup asks for at most \(Limits.maxLookupsPerRequest) files, not \(body.items.count)")
            }
            // Each path is authorized on its own (the stats of several callers may travel
            // together), and a refused one is logged as a refused request is.
            let refusals = body.items.map { item in refusal(of: .read(item.path), file: item.path, route: Route.lookup, context) }
            let answers = await state.lookup(body.items, refused: refusals)
            return try JSON.responseJSONOrCompact(LookupResponse(answers: answers.map(LookupResponse.Answer.init)), to: request)
        }
        router.delete(RouterPath(Route.files)) { request, _ in
            let path = try RemotePath(try request.queryItem("path"))
            try require(.write(path))
            return try JSON.response(try await state.remove(path))
        }
        router.post(RouterPath(Route.rename)) { request, _ in
            let body = try await JSON.decode(RenameRequest.self, from: request)
            try require(.write(body.from))
            try require(.write(body.to))
            return try JSON.response(try await state.rename(body))
        }
        router.post(RouterPath(Route.attributes)) { request, _ in
            let body = try await JSON.decode(SetAttributesRequest.self, from: request)
            try require(.write(body.path))
            return try JSON.response(try await state.setAttributes(body))
        }
        router.post(RouterPath(Route.concatenate)) { request, _ in
            let body = try await JSON.decode(ConcatenateRequest.self, from: request)
            for path in body.sources + [body.target] { try require(.write(path)) }
            return try JSON.response(try await state.concatenate(body))
        }
        router.post(RouterPath(Route.directories)) { request, _ in
            let body = try await JSON.decode(MakeDirectoryRequest.self, from: request)
            try require(.write(body.path))
            return try JSON.response(try await state.makeDirectory(body))
        }
        router.delete(RouterPath(Route.directories)) { request, _ in
            let path = try RemotePath(try request.queryItem("path"))
            try require(.write(path))
            return try JSON.response(try await state.removeDirectory(path))
        }
        router.get(RouterPath(Route.list)) { request, _ in
            let path = try RemotePath(request.optionalQueryItem("path") ?? "/")
            try require(.read(path))
            let entryOnly = try request.optionalQueryItem(Query.entryOnly) == "true"
            var page: ListPage?
            if let limit = try request.optionalQueryItem(Query.listLimit) {
                guard let entries = Int(limit), entries > 0 else {
                    throw TYDFSError(.invalidArgument, "query parameter '\(Query.listLimit)' must be a whole number above 0, not '\(limit)'")
                }
                page = ListPage(after: try request.optionalQueryItem(Query.listAfter), limit: min(entries, Limits.maxListPageEntries))
            }
            return try JSON.responseJSONOrCompact(try await state.list(path, entryOnly: entryOnly, page: page), to: request)
        }
        return router
    }

    /// Runs a master until SIGTERM or SIGINT, then shuts down cleanly.
    /// `onListening` receives the port actually bound. `alongside` gives services to run in the
    /// same process once the master's are made (its secret file exists then), stopped first
    /// (the S3 gateway of `tydfs master --s3`).
    public static func run(
        configuration: MasterConfiguration, logger: Logger, alongside: () throws -> [any Service] = { [] },
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) async throws {
        // A listing of a million entries left the master 102 MiB larger than before it, kept in
        // the heaps of the threads that built the answer (`bench/master-scale.sh 1000000
        // 1000000`); with a datakeeper's settings, 38 MiB (with the map threshold at 32 MiB, as a
        // client command's, 68 MiB).
        MemoryPolicy.configureForServer()
        let parts = try await makeServices(configuration: configuration, logger: logger, onListening: onListening)
        let group = ServiceGroup(configuration: .init(
            services: parts.services + (try alongside()), gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            await parts.close()
            throw error
        }
        await parts.close()
    }

    /// The master's services, for a caller that runs them in its own `ServiceGroup` (`tydfs cluster`),
    /// and what to call once they have all stopped. They must run in the order given: shutdown
    /// goes in reverse, so the metadata writer stops last.
    ///
    /// With SQLite the master leads from the start (epoch `.solo`). With PostgreSQL it starts
    /// as a standby and leads only while it holds the lease (`LeadershipService`).
    public static func makeServices(
        configuration: MasterConfiguration, logger: Logger, onListening: @escaping @Sendable (Int) async -> Void
    ) async throws -> (services: [any Service], close: @Sendable () async -> Void) {
        try configuration.validate()
        Telemetry.bootstrap()
        try LocalFileSystem.makeDirectories(configuration.dataDirectory)
        if let folder = configuration.metadata, configuration.metadataURL == nil { try LocalFileSystem.makeDirectories(folder) }
        let secretFile = configuration.secretFilePath
        let (secret, madeSecret) = try ClusterSecret.readOrCreate(at: secretFile)
        if madeSecret { logger.notice("cluster secret created: give this file to every datakeeper (--secret-file)", metadata: ["file": "\(secretFile)"]) }
        let keys = try AccessKeyStore(directory: configuration.dataDirectory)
        let adminKey = keys.isEmpty ? try keys.create(access: .admin, prefix: nil) : nil
        logger.info("master configured", metadata: [
            "listen": "\(configuration.host):\(configuration.port)", "data": "\(configuration.dataDirectory)",
            "metadata": "\(configuration.metadataDisplay)",
            "replication": "\(configuration.replication)", "chunk_size": "\(configuration.chunkSizeBytes)",
            "heartbeat_timeout_s": "\(configuration.heartbeatTimeoutSeconds)",
        ])
        // Reads files for the dashboard's download links, as any client does.
        let wildcard = ["0.0.0.0", "::", "[::]", ""].contains(configuration.host)
        let scheme = configuration.tls == nil ? "http" : "https"
        let ownURL = { @Sendable (port: Int) in "\(scheme)://\(wildcard ? "127.0.0.1" : configuration.host):\(port)" }
        let reader = try TYDFSClient(
            masterURL: ownURL(configuration.port), signer: RequestSigner(cluster: secret), caFile: configuration.caFile, logger: logger)
        let shared = LeaderParts(
            configuration: configuration, tokens: ChunkTokenIssuer(secret: secret), reader: reader,
            access: AccessMiddleware<BasicRequestContext>(secret: secret, keys: keys, anonymous: configuration.anonymousAccess), logger: logger)
        let advertised = configuration.advertisedURL ?? ownURL(configuration.port)
        let board = MasterRoleBoard()
        let app = try HTTPServer.application(
            responder: MasterResponder(board: board, url: advertised), host: configuration.host, port: configuration.port,
            tls: configuration.tls, idleTimeoutSeconds: configuration.idleTimeoutSeconds, logger: logger, onListening: { port in
                if let adminKey {
                    // First start: the admin's client config, so the first commands just work.
                    let path = configuration.dataDirectory + "/" + ClientConfigFile.adminFileName
                    do {
                        try ClientConfigFile(masterURL: ownURL(port), key: adminKey, caFile: configuration.caFile).write(to: path)
                        logger.notice("admin key created; its client config is written", metadata: ["file": "\(path)", "key": "\(adminKey.accessKeyID)"])
                    } catch {
                        logger.error("cannot write the admin client config", metadata: ["file": "\(path)", "error": "\(error)"])
                    }
                }
                await onListening(port)
            })
        if let url = configuration.metadataURL {
            let link = try PostgresLink(url: url, applicationName: "tydfs master \(advertised)", logger: logger)
            let leadership = LeadershipService(
                link: link, lease: LeaderLease(link: try PostgresLink(url: url, applicationName: "tydfs master \(advertised) lease", logger: logger)), url: advertised,
                timing: configuration.leaseTiming, parts: shared, board: board)
            return ([ClientCloser(client: reader), leadership, app], { await link.close() })
        }
        var opened: SQLMetadataStore?
        do {
            let store = try await SQLMetadataStore.openSQLite(path: configuration.sqlitePath, logger: logger)
            opened = store
            let leader = try await shared.lead(store: store, epoch: .solo)
            board.set(.leading(.solo, leader.responder))
            return ([ClientCloser(client: reader)] + leader.services.prefix(1) + [app] + leader.services.dropFirst(), { try? await store.close() })
        } catch {
            // Nothing runs yet to close them (a store that cannot be loaded, say): closed here,
            // or their deinit traps and the master dies without its message.
            try? await opened?.close()
            try? await reader.shutdown()
            throw error
        }
    }
}

/// One of the master's few download slots (`Limits.masterDownloadsAtOnce`), given back when
/// the response that holds it is released, whether or not its body was ever written.
final class DownloadSlot: Sendable {
    private let count: NIOLockedValueBox<Int>

    init(_ count: NIOLockedValueBox<Int>) { self.count = count }

    /// Runs `body` while the slot is held (keeps the slot alive at least that long).
    func holding(_ body: () async throws -> Void) async throws { try await body() }

    deinit { count.withLockedValue { $0 -= 1 } }
}

/// Runs the group committer: the one writer of the metadata store. Stops after the HTTP server,
/// writing what is queued, so no acknowledged-to-be change is left behind. It stops on
/// cancellation too: a service that fails (a port already in use) cancels the group, and a
/// writer that waited only for a graceful shutdown kept the failed master running for ever.
struct MetadataWriter: Service {
    let committer: GroupCommitter
    let state: MasterState
    /// Told of every batch that failed (after the rollback): a refused epoch ends the leadership.
    var failed: @Sendable (TYDFSError) -> Void = { _ in }

    func run() async throws {
        await withTaskCancellationOrGracefulShutdownHandler {
            await committer.run { durable, error in
                await state.rollBack(durable: durable, error: error)
                failed(error)
            }
        } onCancelOrGracefulShutdown: {
            committer.stop()
        }
    }
}

/// The seed's "replica process": every interval, one round of planning and ordering copies and
/// trims, until the master shuts down.
struct ReplicationManager: Service {
    let state: MasterState
    let intervalSeconds: Double
    let logger: Logger

    func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            await state.replicationRound()
            try? await cancelWhenGracefulShutdown { try await Task.sleep(nanoseconds: UInt64(intervalSeconds * 1e9)) }
        }
    }
}

/// Reads the master's liveness clock every `Limits.masterClockTickSeconds`, so that any longer
/// gap between readings is the master's own pause (see `LivenessClock`).
struct MasterClockTicker: Service {
    let state: MasterState

    func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            _ = await state.now()
            try? await cancelWhenGracefulShutdown { try await Task.sleep(nanoseconds: UInt64(Limits.masterClockTickSeconds * 1e9)) }
        }
    }
}

/// Shuts the master's own client down once everything that may use it has stopped.
struct ClientCloser: Service {
    let client: TYDFSClient

    func run() async throws {
        try? await gracefulShutdown()
        try await client.shutdown()
    }
}
