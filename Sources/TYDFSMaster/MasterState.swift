import Foundation
import Logging
import TYDFSCore
import TYDFSMetadata
import TYDFSProtocol
import TYDFSServerSupport

/// The master's live state and the rules that act on it: the datakeeper table, open uploads,
/// and the namespace operations, which it carries out on the metadata store.
///
/// An actor so that the node table and the upload sessions change one event at a time.
actor MasterState {
    struct Upload {
        let path: RemotePath
        let overwrite: Bool
        var allocated: Set<ChunkID> = []
        var lastActivitySeconds: Double
    }

    let configuration: MasterConfiguration
    let store: any MetadataStore
    let logger: Logger
    var registry: NodeRegistry
    private var uploads: [String: Upload] = [:]
    /// Re-replication copies ordered and not yet reported, by chunk and destination.
    var copiesInFlight: [ChunkID: [DataKeeperID: InFlightCopy]] = [:]
    /// Copy orders waiting for their destination's next heartbeat.
    var copyOrders: [DataKeeperID: [CopyChunkOrder]] = [:]
    /// Chunks a datakeeper must verify, waiting for its next heartbeat.
    var verifyOrders: [DataKeeperID: Set<ChunkID>] = [:]
    /// Replicas found corrupt whose chunk is not back at its factor yet (for fsck).
    var corruptReplicas: Set<Replica> = []
    /// When each unreferenced chunk a datakeeper reported was first seen there.
    var unreferencedSince: [DataKeeperID: [ChunkID: Double]] = [:]
    /// Datakeepers whose holdings the master has not been told since it (or they) started.
    var awaitingReport: Set<DataKeeperID> = []
    /// The boot id each datakeeper last heartbeated with.
    private var bootIDs: [DataKeeperID: String] = [:]
    /// True until the replica map can be trusted after a start (see `replicationRound`).
    var inSafeMode = true
    /// When this master started, on the monotonic clock.
    let startedSeconds = MasterState.monotonicSeconds()

    init(configuration: MasterConfiguration, store: any MetadataStore, logger: Logger) {
        self.configuration = configuration
        self.store = store
        self.logger = logger
        self.registry = NodeRegistry(heartbeatTimeoutSeconds: configuration.heartbeatTimeoutSeconds)
    }

    /// Seconds on a clock that never jumps; liveness is measured with it.
    nonisolated static func monotonicSeconds() -> Double {
        Double(DispatchTime.now().uptimeNanoseconds) / 1e9
    }

    // MARK: - Heartbeats

    func heartbeat(_ beat: HeartbeatRequest) async throws -> HeartbeatResponse {
        let bytes = 0...Limits.maxReportedBytes
        guard bytes.contains(beat.capacityBytes), bytes.contains(beat.usedBytes), beat.inFlight >= 0, beat.chunkCount >= 0,
              beat.chunksServed >= 0, (try? splitHostPort(beat.address)) != nil
        else {
            throw TYDFSError(.invalidArgument, "heartbeat from \(beat.id) has a negative or impossible count, size or address")
        }
        let now = Self.monotonicSeconds()
        let state = DataKeeperState(
            id: beat.id, address: beat.address, capacityBytes: beat.capacityBytes, usedBytes: beat.usedBytes,
            chunkCount: beat.chunkCount, reportedInFlight: beat.inFlight, chunksServed: beat.chunksServed,
            lastHeartbeatSeconds: now)
        let restarted = bootIDs.updateValue(beat.bootID, forKey: beat.id) != beat.bootID
        if registry.heartbeat(state, now: now) || restarted {
            logger.info("datakeeper is alive", metadata: ["datakeeper.id": "\(beat.id)", "datakeeper.address": "\(beat.address)"])
            awaitingReport.insert(beat.id)
        }
        var unreferenced: [ChunkID]?
        if let report = beat.chunkReport {
            let result = try await store.reconcile(datakeeper: beat.id, reported: Set(report))
            unreferenced = result.unreferenced
            awaitingReport.remove(beat.id)
            logger.info("chunk report reconciled", metadata: [
                "datakeeper.id": "\(beat.id)", "chunks": "\(report.count)", "replicas.added": "\(result.added)",
                "replicas.removed": "\(result.removed)", "chunks.unreferenced": "\(result.unreferenced.count)",
            ])
        }
        try await store.deletionsDone(datakeeper: beat.id, chunks: beat.deletedChunks)
        try await absorbRepairReports(beat, unreferenced: unreferenced)
        let deletions = try await store.pendingDeletions(for: beat.id, limit: 1000)
        let orders = takeOrders(for: beat.id)
        return HeartbeatResponse(
            sendChunkReport: awaitingReport.contains(beat.id), deleteChunks: deletions, copyChunks: orders.copies, verifyChunks: orders.verify)
    }

    func nodes() async throws -> NodesResponse {
        let pending = try await store.pendingDeletionCounts()
        let now = Self.monotonicSeconds()
        let rows = registry.nodes.values.sorted { $0.id < $1.id }.map { node in
            NodeInfo(
                id: node.id, address: node.address, alive: registry.isAlive(node, now: now), inFlight: node.load,
                capacityBytes: node.capacityBytes, usedBytes: node.usedBytes, chunkCount: node.chunkCount,
                chunksServed: node.chunksServed, secondsSinceHeartbeat: max(0, now - node.lastHeartbeatSeconds),
                repairCopies: repairCopies(of: node.id), pendingDeletions: pending[node.id] ?? 0)
        }
        return NodesResponse(heartbeatTimeoutSeconds: configuration.heartbeatTimeoutSeconds, nodes: rows)
    }

    // MARK: - Uploads

    func createUpload(_ request: CreateUploadRequest) async throws -> UploadSession {
        let now = Self.monotonicSeconds()
        forgetAbandonedUploads(now: now)
        try await checkWritable(request.path, overwrite: request.overwrite)
        guard !registry.alive(now: now).isEmpty else {
            throw TYDFSError(.unavailable, "no live datakeeper: start one with `tydfs datakeeper --master URL`")
        }
        let id = hex64(UInt64.random(in: .min ... .max))
        uploads[id] = Upload(path: request.path, overwrite: request.overwrite, lastActivitySeconds: now)
        var session = UploadSession(uploadID: id, chunkSizeBytes: configuration.chunkSizeBytes, replication: configuration.replication)
        if let first = request.firstChunkBytes, first > 0 {
            do {
                session.firstChunk = try allocateChunk(uploadID: id, request: AllocateChunkRequest(exclude: [], dataBytes: first))
            } catch {
                uploads[id] = nil
                throw error
            }
        }
        return session
    }

    private func checkWritable(_ path: RemotePath, overwrite: Bool) async throws {
        guard !path.isRoot else { throw TYDFSError(.invalidArgument, "/ is the root folder, not a file name") }
        if !overwrite, try await store.file(at: path) != nil {
            throw TYDFSError(.alreadyExists, "\(path) already exists; use --overwrite to replace it")
        }
        if let conflict = try await store.conflictingFile(for: path), conflict != path {
            throw SQLMetadataStore.conflictError(path, conflict)
        }
    }

    func allocateChunk(uploadID: String, request: AllocateChunkRequest) throws -> ChunkAllocation {
        guard var upload = uploads[uploadID] else { throw Self.unknownUpload(uploadID) }
        guard request.dataBytes > 0, request.dataBytes <= configuration.chunkSizeBytes else {
            throw TYDFSError(.invalidArgument, "a chunk holds 1…\(configuration.chunkSizeBytes) bytes, not \(request.dataBytes)")
        }
        let now = Self.monotonicSeconds()
        let targets = registry.chooseTargets(
            count: configuration.replication, chunkBytes: ChunkFrame.frameBytes(dataBytes: request.dataBytes),
            excluding: Set(request.exclude), now: now)
        guard !targets.isEmpty else {
            let alive = registry.alive(now: now).count
            throw TYDFSError(.unavailable, alive == 0
                ? "no live datakeeper to store the chunk on"
                : "none of the \(alive) live datakeepers can take a \(ByteSize.format(request.dataBytes)) chunk (full, or already failed for this chunk)")
        }
        for target in targets { registry.assign(target.id) }
        let id = ChunkID.random()
        upload.allocated.insert(id)
        upload.lastActivitySeconds = now
        uploads[uploadID] = upload
        return ChunkAllocation(
            chunkID: id, targets: targets.map { DataKeeperAddress(id: $0.id, address: $0.address, alive: true) },
            replication: configuration.replication)
    }

    func commit(uploadID: String, request: CommitUploadRequest) async throws -> FileInfo {
        guard let upload = uploads[uploadID] else { throw Self.unknownUpload(uploadID) }
        try ChunkLayout.validate(lengths: request.chunks.map(\.sizeBytes), fileBytes: request.sizeBytes,
                                 chunkBytes: configuration.chunkSizeBytes)
        for (position, chunk) in request.chunks.enumerated() {
            guard chunk.index == position else { throw TYDFSError(.invalidArgument, "chunk \(position) is out of order") }
            guard upload.allocated.contains(chunk.id) else {
                throw TYDFSError(.invalidArgument, "chunk \(chunk.id) was not allocated to this upload")
            }
            guard !chunk.replicas.isEmpty, Set(chunk.replicas).count == chunk.replicas.count else {
                throw TYDFSError(.invalidArgument, "chunk \(chunk.index) must name at least one datakeeper, each once")
            }
        }
        let file = StoredFile(
            path: upload.path, sizeBytes: request.sizeBytes, mtimeMillis: Int64(Date().timeIntervalSince1970 * 1000),
            crc32c: request.crc32c, chunkSizeBytes: configuration.chunkSizeBytes, replication: configuration.replication,
            chunks: request.chunks.map {
                StoredChunk(index: $0.index, id: $0.id, sizeBytes: $0.sizeBytes, crc32c: $0.crc32c, replicas: $0.replicas)
            })
        // Taken before the await: a second commit of the same upload (a retry racing the first)
        // finds no session instead of replacing the file with itself and deleting its chunks.
        uploads[uploadID] = nil
        do {
            try await store.commit(file, overwrite: upload.overwrite)
        } catch {
            uploads[uploadID] = upload
            throw error
        }
        let info = fileInfo(file)
        logger.info("file committed", metadata: [
            "path": "\(file.path)", "size": "\(file.sizeBytes)", "chunks": "\(file.chunks.count)",
            "under_replicated": "\(info.underReplicated)",
        ])
        return info
    }

    /// Chunks allocated to uploads still open: stored somewhere, not yet referenced, not orphans.
    func openUploadChunks() -> [ChunkID] {
        forgetAbandonedUploads(now: Self.monotonicSeconds())
        return uploads.values.flatMap(\.allocated)
    }

    private func forgetAbandonedUploads(now: Double) {
        uploads = uploads.filter { now - $0.value.lastActivitySeconds < configuration.uploadIdleTimeoutSeconds }
    }

    func abortUpload(uploadID: String) {
        uploads[uploadID] = nil
    }

    private static func unknownUpload(_ id: String) -> TYDFSError {
        TYDFSError(.notFound, "upload \(id) is unknown or expired (the master may have restarted); start the put again")
    }

    // MARK: - Namespace

    func stat(_ path: RemotePath) async throws -> FileInfo {
        guard let file = try await store.file(at: path) else { throw TYDFSError(.notFound, "\(path): no such file") }
        let info = fileInfo(file)
        // Reading counts as work for the datakeeper each chunk will be read from first.
        for chunk in info.chunks { if let first = chunk.replicas.first, first.alive { registry.assign(first.id) } }
        return info
    }

    func list(_ path: RemotePath) async throws -> ListResponse {
        let files = try await store.files(under: path)
        if let exact = files.first(where: { $0.path == path }) {
            return ListResponse(path: path.value, entries: [
                ListEntry(path: exact.path.value, isDirectory: false, sizeBytes: exact.sizeBytes, mtimeMillis: exact.mtimeMillis),
            ])
        }
        guard !files.isEmpty || path.isRoot else {
            throw TYDFSError(.notFound, "\(path): no such file or directory")
        }
        var entries: [ListEntry] = []
        for file in files {
            guard let child = path.child(leadingTo: file.path) else { continue }
            if let last = entries.last, last.path == child.path {
                entries[entries.count - 1].sizeBytes += file.sizeBytes
                entries[entries.count - 1].mtimeMillis = max(last.mtimeMillis, file.mtimeMillis)
            } else {
                entries.append(ListEntry(path: child.path, isDirectory: !child.isLeaf, sizeBytes: file.sizeBytes, mtimeMillis: file.mtimeMillis))
            }
        }
        return ListResponse(path: path.value, entries: entries)
    }

    func remove(_ path: RemotePath) async throws -> FileInfo {
        let file = try await store.remove(path)
        logger.info("file removed", metadata: ["path": "\(path)", "chunks": "\(file.chunks.count)"])
        return fileInfo(file)
    }

    /// A stored file as clients see it: each chunk's replicas in the order to read them.
    private func fileInfo(_ file: StoredFile) -> FileInfo {
        let now = Self.monotonicSeconds()
        var underReplicated = false
        let chunks = file.chunks.map { chunk -> ChunkInfo in
            let live = registry.readOrder(of: chunk.replicas, spread: chunk.index, now: now)
            let liveIDs = Set(live.map(\.id))
            if live.count < file.replication { underReplicated = true }
            let dead = chunk.replicas.filter { !liveIDs.contains($0) }.map { id in
                DataKeeperAddress(id: id, address: registry.nodes[id]?.address ?? "", alive: false)
            }
            return ChunkInfo(
                index: chunk.index, id: chunk.id, sizeBytes: chunk.sizeBytes, crc32c: hex32(chunk.crc32c),
                replicas: live.map { DataKeeperAddress(id: $0.id, address: $0.address, alive: true) } + dead)
        }
        return FileInfo(
            path: file.path, sizeBytes: file.sizeBytes, mtimeMillis: file.mtimeMillis, checksum: "crc32c:" + hex32(file.crc32c),
            chunkSizeBytes: file.chunkSizeBytes, replication: file.replication, underReplicated: underReplicated, chunks: chunks)
    }
}
