import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle
import TYDFSClient
import TYDFSCore
import TYDFSFileIO
import TYDFSProtocol
import TYDFSSecurity
import TYDFSServerSupport

/// The datakeeper process: the chunk store, its HTTP data service, the heartbeat sender and the
/// background workers (repairs, deletions, scrubbing).
public enum DataKeeperServer {
    static func router(transfer: ChunkTransfer, registered: NIOLockedValueBox<Bool>, deletions: DeletionQueue) -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: MetricsMiddleware())
        router.add(middleware: RequestIDMiddleware())
        router.add(middleware: ErrorMiddleware())
        router.add(middleware: RefusalLogMiddleware())
        router.get(RouterPath(Route.metrics)) { _, _ in
            transfer.counters.publish(
                usage: await transfer.store.usage(), freeDiskBytes: LocalFileSystem.availableBytes(at: transfer.store.directory),
                pendingDeletions: deletions.queuedCount)
            return Telemetry.response()
        }
        for path in [Route.health, Route.healthz] {
            router.get(RouterPath(path)) { _, _ in try JSON.response(["status": "ok", "id": transfer.id.value]) }
        }
        router.get(RouterPath(Route.readyz)) { _, _ in
            guard registered.withLockedValue({ $0 }) else {
                return try JSON.response(["status": "not registered: the master has not answered the last heartbeat"], status: .serviceUnavailable)
            }
            return try JSON.response(["status": "ready", "id": transfer.id.value])
        }
        /// The request's chunk token, checked for `operations` on `chunk` (401 or 403 if not).
        @Sendable func token(_ request: Request, _ chunk: ChunkID, _ operations: Set<ChunkToken.Operation>) throws -> (ChunkToken, String) {
            let text = request.headers[.tydfsChunkToken]
            return (try ChunkToken.verify(text, secret: transfer.secret, chunk: chunk, operations: operations, now: UnixClock.now), text ?? "")
        }
        /// The hops of `Header.forward` (400 if malformed).
        @Sendable func forwardHops(_ request: Request) throws -> [PipelineHop] {
            guard let hops = PipelineHop.decode(request.headers[.tydfsForward] ?? "") else {
                throw TYDFSError(.invalidArgument, "header \(Header.forward) must be id=host:port,… ")
            }
            return hops
        }
        /// Forward only to the hops the master chose: what the write token `claims` of `chunk`
        /// names after this datakeeper (403 if not).
        @Sendable func checkHops(_ hops: [PipelineHop], of chunk: ChunkID, against claims: ChunkToken) throws {
            guard try claims.downstream(of: transfer.id) == hops else {
                throw TYDFSError(.forbidden, "header \(Header.forward) names hops the master did not choose for chunk \(chunk)")
            }
        }
        /// The chunks `Header.chunks` lists on a chunk batch (400 if malformed).
        @Sendable func batchedChunks(_ request: Request) throws -> [BatchedChunk] {
            guard let chunks = BatchedChunk.decode(request.headers[.tydfsChunks] ?? ""),
                  (1...Limits.maxChunksPerBatch).contains(chunks.count), Set(chunks.map(\.chunk)).count == chunks.count,
                  chunks.allSatisfy({ (0...Limits.batchedChunkMaxBytes).contains($0.dataBytes) })
            else {
                throw TYDFSError(.invalidArgument, "header \(Header.chunks) must list 1…\(Limits.maxChunksPerBatch) distinct chunks as id:dataBytes:token, each of at most \(Limits.batchedChunkMaxBytes) bytes")
            }
            return chunks
        }
        router.put("/v1/chunks/:chunk") { request, context in
            let chunk = try ChunkID(try context.parameters.require("chunk"))
            let (claims, token) = try token(request, chunk, [.write])
            guard let text = request.headers[.tydfsDataBytes], let dataBytes = Int64(text),
                  (0...Limits.maxChunkSizeBytes).contains(dataBytes)
            else {
                throw TYDFSError(.invalidArgument, "header \(Header.dataBytes) must give the chunk's data size (0…\(Limits.maxChunkSizeBytes))")
            }
            let hops = try forwardHops(request)
            try checkHops(hops, of: chunk, against: claims)
            return try JSON.response(try await transfer.receive(chunk, dataBytes: dataBytes, body: request.body, downstream: hops, token: token))
        }
        router.put(RouterPath(Route.chunkBatch)) { request, _ in
            let chunks = try batchedChunks(request)
            let hops = try forwardHops(request)
            // Each chunk is allowed on its own: its token, and the hops it names after this one.
            let refusals = chunks.map { chunk -> TYDFSError? in
                do {
                    let claims = try ChunkToken.verify(chunk.token, secret: transfer.secret, chunk: chunk.chunk, operations: [.write], now: UnixClock.now)
                    try checkHops(hops, of: chunk.chunk, against: claims)
                    return nil
                } catch {
                    return TYDFSError.from(error)
                }
            }
            // Nothing allowed: refused whole, before its body is read.
            if refusals.allSatisfy({ $0 != nil }) { throw refusals[0]! }
            return try JSON.responseJSONOrCompact(try await transfer.receive(chunks, refused: refusals, body: request.body, downstream: hops), to: request)
        }
        router.get(RouterPath(Route.chunkBatch)) { request, _ in
            let chunks = try batchedChunks(request)
            // Each chunk is allowed on its own, and answered with its own status.
            let refusals = chunks.map { chunk -> TYDFSError? in
                do {
                    _ = try ChunkToken.verify(chunk.token, secret: transfer.secret, chunk: chunk.chunk, operations: [.read, .replicate], now: UnixClock.now)
                    return nil
                } catch {
                    return TYDFSError.from(error)
                }
            }
            return await transfer.serveWhole(chunks, refused: refusals)
        }
        router.get("/v1/chunks/:chunk") { request, context in
            let chunk = try ChunkID(try context.parameters.require("chunk"))
            _ = try token(request, chunk, [.read, .replicate])
            switch (try request.optionalQueryItem(Query.rangeOffset), try request.optionalQueryItem(Query.rangeLength)) {
            case (nil, nil):
                return try await transfer.serve(chunk, range: nil)
            case (let offset?, let length?):
                guard let offset = Int64(offset), let length = Int64(length) else {
                    throw TYDFSError(.invalidArgument, "\(Query.rangeOffset) and \(Query.rangeLength) must be whole numbers of bytes")
                }
                return try await transfer.serve(chunk, range: (offset, length))
            default:
                throw TYDFSError(.invalidArgument, "a range read needs both \(Query.rangeOffset) and \(Query.rangeLength)")
            }
        }
        return router
    }

    /// Runs a datakeeper until SIGTERM or SIGINT. `onListening` receives the port actually bound.
    public static func run(
        configuration: DataKeeperConfiguration, logger: Logger, onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) async throws {
        // Measured with a 1 GiB put (alternating builds): the datakeepers' CPU fell from
        // 3.6-4.2 to 2.9-3.4 CPU-seconds in all with the freed memory kept and the heaps limited;
        // with 32 transfers at once their peak RSS stayed at 152-182 MiB. Keeping 64 MiB in every heap instead peaked at 326.
        MemoryPolicy.configureForServer()
        // Every upload passing through forwards to the next hop on a connection of its own: allow
        // as many per peer as transfers may run at once, so none waits for a pooled connection
        // (a wait longer than the connect timeout fails the hop; seen with 32 transfers at once).
        let httpClient = try TYDFSClient.makeHTTPClient(connectionsPerServer: Limits.maxConcurrentFileTransfers, caFile: configuration.caFile)
        do {
            let services = try makeServices(configuration: configuration, httpClient: httpClient, logger: logger, onListening: onListening)
            // A service that ends by itself (the heartbeat sender, once drained in maintenance
            // mode) ends the datakeeper as SIGTERM does: in-flight transfers finish first.
            let group = ServiceGroup(configuration: .init(
                services: services.map { .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup) },
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await group.run()
        } catch {
            try? await httpClient.shutdown()
            throw error
        }
        try await httpClient.shutdown()
    }

    /// The datakeeper's services, for a caller that runs them in its own `ServiceGroup`.
    public static func makeServices(
        configuration: DataKeeperConfiguration, httpClient: HTTPClient, logger baseLogger: Logger,
        onListening: @escaping @Sendable (Int) async -> Void
    ) throws -> [any Service] {
        try configuration.validate()
        Telemetry.bootstrap()
        try LocalFileSystem.makeDirectories(configuration.dataDirectory)
        guard let secretFile = configuration.secretFile else {
            throw TYDFSError(.invalidArgument, "a datakeeper needs the cluster secret: --secret-file FILE (or TYDFS_SECRET_FILE), the master's <data>/cluster.secret")
        }
        let secret = try ClusterSecret.read(from: secretFile)
        let id = try configuration.id ?? persistentID(in: configuration.dataDirectory)
        var logger = baseLogger
        logger[metadataKey: "datakeeper.id"] = "\(id)"
        let startedLoading = ContinuousClock.now
        let store = try ChunkStore(directory: configuration.dataDirectory, capacityBytes: configuration.capacityBytes, logger: logger)
        logger.info("chunk store loaded", metadata: ["seconds": "\(ContinuousClock.now - startedLoading)"])
        let deletions = DeletionQueue()
        let counters = TransferCounters(datakeeper: id)
        let events = DataKeeperEvents()
        let transfer = ChunkTransfer(
            id: id, store: store, counters: counters, events: events, httpClient: httpClient, secret: secret,
            scheme: configuration.masterURL.hasPrefix("https://") ? "https" : "http", logger: logger)
        let (repairJobs, repairContinuation) = AsyncStream.makeStream(of: RepairJob.self)
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let registered = NIOLockedValueBox(false)
        let app = try HTTPServer.application(
            responder: router(transfer: transfer, registered: registered, deletions: deletions).buildResponder(), host: configuration.host, port: configuration.port,
            tls: configuration.tls, idleTimeoutSeconds: configuration.idleTimeoutSeconds, logger: logger, onListening: { port in
                portContinuation.yield(port)
                portContinuation.finish()
                await onListening(port)
            })
        let advertised = configuration.advertisedAddress
        let host = configuration.host
        let heartbeat = HeartbeatSender(
            id: id, masters: try MasterDirectory(configuration.masterURL),
            intervalSeconds: configuration.heartbeatIntervalSeconds, reportIntervalSeconds: configuration.reportIntervalSeconds,
            address: {
                if let advertised { return advertised }
                var iterator = ports.makeAsyncIterator()
                let port = await iterator.next() ?? configuration.port
                return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
            },
            store: store, counters: counters, events: events, deletions: deletions, repairs: repairContinuation, httpClient: httpClient, signer: RequestSigner(cluster: secret), registered: registered,
            maintenance: configuration.maintenance, logger: logger)
        logger.info("datakeeper configured", metadata: [
            "listen": "\(configuration.host):\(configuration.port)", "data": "\(configuration.dataDirectory)",
            "master": "\(configuration.masterURL)", "heartbeat_interval_s": "\(configuration.heartbeatIntervalSeconds)",
            "scrub_interval_s": "\(configuration.scrubIntervalSeconds)", "scrub_rate": "\(configuration.scrubBytesPerSecond)",
        ])
        let repairs = RepairWorker(jobs: repairJobs, transfer: transfer, deletions: deletions, concurrency: configuration.maxConcurrentRepairs)
        let deleter = DeletionWorker(queue: deletions, delete: { try await store.delete($0) }, logger: logger)
        let scrubber = Scrubber(
            transfer: transfer, intervalSeconds: configuration.scrubIntervalSeconds,
            bytesPerSecond: Double(configuration.scrubBytesPerSecond), logger: logger)
        return [app, heartbeat, repairs, deleter, scrubber]
    }

    /// The id kept in `<data>/datakeeper-id`, made on first start: a datakeeper keeps its name
    /// across restarts, so the master recognises its chunks.
    static func persistentID(in directory: String) throws -> DataKeeperID {
        let file = directory + "/datakeeper-id"
        if let text = try? String(contentsOfFile: file, encoding: .utf8) {
            return try DataKeeperID(text.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let id = try DataKeeperID("dk-" + hex64(UInt64.random(in: .min ... .max)).prefix(12))
        do {
            try (id.value + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        } catch {
            throw TYDFSError(.io, "cannot write \(file): \(error.localizedDescription)")
        }
        return id
    }
}
