import Foundation
import Logging
import TYDFSCore
import TYDFSMetadata
import TYDFSProtocol
import TYDFSSecurity
import TYDFSServerSupport

/// The page of a directory's listing a client asked for (`Query.listLimit`, `Query.listAfter`).
struct ListPage: Sendable {
    /// Only the entries whose names sort after this one; nil from the first.
    var after: String?
    /// The most entries to answer, above 0.
    var limit: Int
}

/// The master's live state and the rules that act on it: the datakeeper table, open uploads,
/// the in-memory namespace and the namespace operations.
///
/// An actor so that the node table, the uploads and the namespace change one event at a time.
/// Every change to the namespace is applied in memory at once (so it is checked against, and
/// seen by, the very next request) and queued for the store; a caller that must not be answered
/// before the change is durable awaits the group commit that covers it. If the store fails, every
/// change not yet durable is undone in memory (`rollBack`), so memory never holds what the store
/// lacks, and deletion orders go out only for deletions already durable.
actor MasterState {
    struct Upload {
        let path: RemotePath
        let overwrite: Bool
        /// The client's id for this put (`CreateUploadRequest.commitID`), kept with the file.
        let commitID: String?
        var allocated: Set<ChunkID> = []
        /// How many of `allocated` an earlier upload of the put stored (see `adopt`).
        var adopted = 0
        var lastActivitySeconds: Double
    }

    let configuration: MasterConfiguration
    /// The leadership epoch this state serves in (`.solo` for a lone master on SQLite); carried
    /// on every heartbeat answer, so datakeepers can ignore the orders of a deposed leader.
    let epoch: LeaderEpoch
    let namespace: Namespace
    let committer: GroupCommitter
    /// Signs the chunk tokens handed out with allocations, stats and copy orders.
    let tokens: ChunkTokenIssuer
    let logger: Logger
    var registry: NodeRegistry
    private var uploads: [String: Upload] = [:]
    /// Uploads forgotten for inactivity, by id, with when (kept for `expiredUploadMemorySeconds`).
    /// A client that comes back to one is told that its put cannot go on (its chunks may have
    /// been deleted as orphans since), instead of being asked to reopen it.
    private var expiredUploads: [String: Double] = [:]
    private static let expiredUploadMemorySeconds = 86_400.0
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
    /// When the master last looked for orphans among them, by datakeeper.
    private var orphanScans: [DataKeeperID: Double] = [:]
    /// Datakeepers whose holdings the master has not been told since it (or they) started.
    var awaitingReport: Set<DataKeeperID> = []
    /// Full chunk reports asked for and not yet complete, by datakeeper.
    private var reports: [DataKeeperID: ChunkReportAssembly] = [:]
    /// Holdings changes that arrived while a datakeeper's full report was still arriving.
    private var stashedChanges: [DataKeeperID: [(added: [ChunkID], removed: [ChunkID])]] = [:]
    /// Id of the last heartbeat answer.
    private var nextAnswerID: UInt64 = 0
    /// The boot id each datakeeper last heartbeated with.
    private var bootIDs: [DataKeeperID: String] = [:]
    /// True until the replica map can be trusted after a start (see `replicationRound`).
    var inSafeMode = true
    /// The clock liveness and every other time the master keeps are measured on (see `now`).
    private var livenessClock = LivenessClock(longestGapSeconds: Limits.masterLongestClockGapSeconds)
    /// When this master started, on the monotonic clock (the liveness clock starts equal to it).
    let startedSeconds = MasterState.monotonicSeconds()
    /// Datakeepers the replica map named when the master started (see `replicationRound`).
    let holdersAtStart: Set<DataKeeperID>
    /// Sequence number of the last batch of edits applied to the namespace.
    private var sequence: UInt64 = 0
    /// For each batch not yet known durable, oldest first: the edits that undo it, edit by edit.
    private var undoLog: [(sequence: UInt64, inverses: [[MetadataEdit]])] = []
    /// Chunks whose live replicas may not match their factor: what the replication manager
    /// plans from, kept up to date on events instead of scanning every chunk each round.
    var attention: Set<ChunkID> = []
    /// The live, confirmed datakeepers (and which of them are draining or retired) `attention`
    /// was last computed for; when they change (a death, a return, a report, a drain), every
    /// chunk is looked at again.
    var attentionBasis: (live: Set<DataKeeperID>, decommissioned: Set<DataKeeperID>)?
    /// Chunks found with no live replica, as of the last full look (see `clusterSummary`).
    var missing: Set<ChunkID> = []
    /// Datakeepers whose chunks are being copied away (`tydfs drain`, `--maintenance`).
    var draining: Set<DataKeeperID> = []
    /// Drained datakeepers: all their chunks are at their factor elsewhere; they take no new ones.
    var retired: Set<DataKeeperID> = []
    /// Draining and retired: alive perhaps, but their replicas do not count toward the factor.
    var decommissioned: Set<DataKeeperID> { draining.union(retired) }
    /// Datakeepers last seen alive by the event feed, to tell deaths and returns.
    var announcedAlive: Set<DataKeeperID> = []
    /// When each pending deletion was queued (on the monotonic clock), for the deletion grace.
    /// Deletions loaded at start have no entry: their grace is long over.
    private var deletionQueuedAt: [Replica: Double] = [:]
    /// The dashboard's feed.
    var events = ClusterEventLog(capacity: Limits.clusterEventsKept)
    let metrics = MasterMetrics()

    init(
        configuration: MasterConfiguration, namespace: Namespace, committer: GroupCommitter, tokens: ChunkTokenIssuer,
        epoch: LeaderEpoch = .solo, logger: Logger
    ) {
        self.epoch = epoch
        // Answer ids (report anchors) of a later term are above every earlier term's, so a report
        // anchored on a deposed leader's answer is refused by the new one.
        self.nextAnswerID = UInt64(max(0, epoch.value)) << 40
        self.configuration = configuration
        self.namespace = namespace
        self.committer = committer
        self.tokens = tokens
        self.logger = logger
        self.registry = NodeRegistry(heartbeatTimeoutSeconds: configuration.heartbeatTimeoutSeconds)
        self.holdersAtStart = namespace.datakeepersHoldingReplicas()
    }

    // MARK: - Edits

    /// Applies `edits` to the namespace now and returns their batch's sequence number.
    private func apply(_ edits: [MetadataEdit]) -> UInt64 {
        let now = self.now()
        for edit in edits {
            switch edit {
            case .queueDeletion(let chunk, let datakeeper): deletionQueuedAt[Replica(chunk: chunk, datakeeper: datakeeper)] = now
            case .cancelDeletion(let chunk, let datakeeper): deletionQueuedAt[Replica(chunk: chunk, datakeeper: datakeeper)] = nil
            default: break
            }
        }
        sequence += 1
        let durable = committer.durableSequence
        if let oldest = undoLog.first, oldest.sequence <= durable { undoLog.removeAll { $0.sequence <= durable } }
        undoLog.append((sequence, edits.map { namespace.apply($0, sequence: sequence) }))
        return sequence
    }

    /// Applies `edits` and returns once the store has them durably.
    func write(_ edits: [MetadataEdit]) async throws {
        guard !edits.isEmpty else { return }
        for edit in edits {
            switch edit {
            case .putFile(let file): try checkStorable(file.path)
            case .makeDirectory(let path, _, _): try checkStorable(path)
            default: break
            }
        }
        let batch = apply(edits)
        try await committer.commit(edits, sequence: batch)
    }

    /// Applies `edits` and lets the store catch up without waiting: for changes that are safe to
    /// lose in a crash (the replica map is rebuilt from chunk reports).
    func writeInBackground(_ edits: [MetadataEdit]) {
        guard !edits.isEmpty else { return }
        committer.commitInBackground(edits, sequence: apply(edits))
    }

    /// The store failed: undoes, newest first, every batch after the last durable one.
    func rollBack(durable: UInt64, error: TYDFSError) {
        var undone = 0
        while let newest = undoLog.last, newest.sequence > durable {
            for inverse in newest.inverses.reversed() {
                for edit in inverse { namespace.apply(edit, sequence: 0) }
            }
            undoLog.removeLast()
            undone += 1
        }
        attentionBasis = nil
        logger.error("metadata write failed; changes not yet durable were undone", metadata: [
            "error": "\(error.message)", "batches.undone": "\(undone)",
        ])
        committer.resume()
    }

    /// Milliseconds since 1970 on the wall clock: the times files and directories show.
    nonisolated static func wallClockMillis() -> Int64 {
        Int64(Date().timeIntervalSince1970 * 1000)
    }

    /// Seconds on a clock that never jumps.
    nonisolated static func monotonicSeconds() -> Double {
        Double(DispatchTime.now().uptimeNanoseconds) / 1e9
    }

    /// Seconds on the master's liveness clock: the monotonic clock without the master's own
    /// pauses (`LivenessClock`). Every time the master keeps (heartbeats, deadlines, graces) is
    /// on it, so a pause of the master's is no one else's silence.
    func now() -> Double {
        let reading = livenessClock.read(Self.monotonicSeconds())
        if reading.pauseSeconds > 0 {
            logger.warning("the master was not running for a while (stopped, frozen or starved); datakeepers' silence during it is not held against them", metadata: [
                "pause_seconds": "\(String(format: "%.1f", reading.pauseSeconds + livenessClock.longestGapSeconds))",
            ])
        }
        return reading.seconds
    }

    // MARK: - Heartbeats

    func heartbeat(_ beat: HeartbeatRequest) async throws -> HeartbeatResponse {
        let bytes = 0...Limits.maxReportedBytes
        guard bytes.contains(beat.capacityBytes), bytes.contains(beat.usedBytes), (0...Limits.maxReportedInFlight).contains(beat.inFlight), beat.chunkCount >= 0,
              beat.chunksServed >= 0, (try? splitHostPort(beat.address)) != nil
        else {
            throw TYDFSError(.invalidArgument, "heartbeat from \(beat.id) has a negative or impossible count, size or address")
        }
        let now = self.now()
        let state = DataKeeperState(
            id: beat.id, address: beat.address, capacityBytes: beat.capacityBytes, usedBytes: beat.usedBytes,
            chunkCount: beat.chunkCount, reportedInFlight: beat.inFlight, chunksServed: beat.chunksServed,
            lastHeartbeatSeconds: now)
        let restarted = bootIDs.updateValue(beat.bootID, forKey: beat.id) != beat.bootID
        let known = registry.nodes[beat.id] != nil
        if registry.heartbeat(state, now: now) || restarted {
            logger.info("datakeeper is alive", metadata: ["datakeeper.id": "\(beat.id)", "datakeeper.address": "\(beat.address)"])
            announcedAlive.insert(beat.id)
            record(known ? .datakeeperReturned : .datakeeperJoined,
                   "\(beat.id) at \(beat.address) is \(known ? (restarted ? "back (restarted)" : "back") : "alive")")
            awaitingReport.insert(beat.id)
            reports[beat.id] = nil
            stashedChanges[beat.id] = nil
        }
        if reports[beat.id]?.isReceiving == true {
            // Changes made after the snapshot now arriving: applied once the report is.
            stashedChanges[beat.id, default: []].append((beat.addedChunks, beat.removedChunks))
        } else if !awaitingReport.contains(beat.id) {
            applyChanges(beat.id, added: beat.addedChunks, removed: beat.removedChunks, now: now)
        }
        writeInBackground(beat.deletedChunks.map { .cancelDeletion($0, beat.id) })
        absorbRepairReports(beat)
        collectOrphans(on: beat.id, now: now)
        let deletions = durableDeletions(for: beat.id, limit: Limits.deletionsPerHeartbeat)
        let orders = takeOrders(for: beat.id)
        nextAnswerID += 1
        if let report = reports[beat.id], now - report.lastActivitySeconds > Limits.abandonedReportSeconds {
            logger.warning("chunk report abandoned; asking again", metadata: ["datakeeper.id": "\(beat.id)"])
            reports[beat.id] = nil
        }
        let askForReport = (awaitingReport.contains(beat.id) || beat.wantsToReport) && reports[beat.id] == nil
        if askForReport { reports[beat.id] = ChunkReportAssembly(requestedByAnswer: nextAnswerID, now: now) }
        if beat.maintenance == true { startDrain(beat.id, reason: "it runs in maintenance mode") }
        return HeartbeatResponse(
            answerID: nextAnswerID, sendChunkReport: askForReport, deleteChunks: deletions, copyChunks: orders.copies,
            verifyChunks: orders.verify, drained: retired.contains(beat.id) ? true : nil, epoch: epoch == .solo ? nil : epoch)
    }

    /// Takes one page of a full chunk report; the last page reconciles the replica map with it.
    func chunkReportPage(
        from datakeeper: DataKeeperID, reportID: String, page: Int, anchor: UInt64, chunks: [ChunkID], isLast: Bool
    ) throws {
        guard var report = reports[datakeeper] else {
            throw TYDFSError(.alreadyExists, "no chunk report was asked of \(datakeeper); wait for a heartbeat answer asking for one")
        }
        let now = self.now()
        let outcome: ChunkReportAssembly.Outcome
        do {
            outcome = try report.receive(reportID: reportID, page: page, anchor: anchor, chunks: chunks, isLast: isLast, now: now)
        } catch .notRequested {
            throw TYDFSError(.alreadyExists, "chunk report \(reportID) was taken before the master asked for it; take a new snapshot")
        } catch .outOfOrder(let expected) {
            throw TYDFSError(.alreadyExists, "chunk report \(reportID): page \(page) arrived where page \(expected) was expected; start the report again")
        }
        guard case .complete(let reported, let protected) = outcome else {
            reports[datakeeper] = report
            return
        }
        reports[datakeeper] = nil
        reconcile(datakeeper, reported: reported, protected: protected, now: now)
        awaitingReport.remove(datakeeper)
        for (added, removed) in stashedChanges.removeValue(forKey: datakeeper) ?? [] {
            applyChanges(datakeeper, added: added, removed: removed, now: now)
        }
    }

    /// Applies what a datakeeper says changed in its holdings since its last heartbeat.
    private func applyChanges(_ datakeeper: DataKeeperID, added: [ChunkID], removed: [ChunkID], now: Double) {
        var edits: [MetadataEdit] = []
        for chunk in added {
            if let record = namespace.chunks[chunk] {
                if !record.replicas.contains(datakeeper) {
                    edits.append(.addReplica(chunk, datakeeper))
                    attention.insert(chunk)
                }
            } else if unreferencedSince[datakeeper]?[chunk] == nil {
                unreferencedSince[datakeeper, default: [:]][chunk] = now
            }
        }
        for chunk in removed {
            unreferencedSince[datakeeper]?[chunk] = nil
            if namespace.chunks[chunk]?.replicas.contains(datakeeper) == true {
                edits.append(.removeReplica(chunk, datakeeper))
                attention.insert(chunk)
            }
            if namespace.pendingDeletions[datakeeper]?[chunk] != nil { edits.append(.cancelDeletion(chunk, datakeeper)) }
        }
        writeInBackground(edits)
    }

    /// Notes that the replica map now records `chunk` on `datakeeper` (a commit or a copy): a
    /// report in progress there may predate it.
    func replicaRecorded(_ chunk: ChunkID, on datakeeper: DataKeeperID) {
        reports[datakeeper]?.replicaRecorded(chunk)
    }

    /// Makes the replica map agree with a datakeeper's full chunk report. Replicas recorded since
    /// the report was asked for (`protected`) stay even if missing: the snapshot may predate them.
    private func reconcile(_ datakeeper: DataKeeperID, reported: Set<ChunkID>, protected: Set<ChunkID>, now: Double) {
        let recorded = namespace.chunks(on: datakeeper)
        let pending = Set(namespace.pendingDeletions[datakeeper].map { Array($0.keys) } ?? [])
        var edits: [MetadataEdit] = []
        var removed = 0
        for chunk in recorded.subtracting(reported) where !protected.contains(chunk) {
            edits.append(.removeReplica(chunk, datakeeper))
            attention.insert(chunk)
            removed += 1
        }
        // A deletion the datakeeper no longer needs to carry out: the chunk is gone already.
        for chunk in pending.subtracting(reported) { edits.append(.cancelDeletion(chunk, datakeeper)) }
        var added = 0
        let previous = unreferencedSince[datakeeper] ?? [:]
        var unreferenced: [ChunkID: Double] = [:]
        for chunk in reported where !recorded.contains(chunk) && !pending.contains(chunk) {
            if namespace.chunks[chunk] != nil {
                edits.append(.addReplica(chunk, datakeeper))
                attention.insert(chunk)
                added += 1
            } else {
                unreferenced[chunk] = previous[chunk] ?? now
            }
        }
        unreferencedSince[datakeeper] = unreferenced
        writeInBackground(edits)
        logger.info("chunk report reconciled", metadata: [
            "datakeeper.id": "\(datakeeper)", "chunks": "\(reported.count)", "replicas.added": "\(added)",
            "replicas.removed": "\(removed)", "chunks.unreferenced": "\(unreferenced.count)",
        ])
    }

    /// Queues the deletion of chunks on `datakeeper` that no file has referenced for the orphan
    /// grace period and no open upload is writing.
    private func collectOrphans(on datakeeper: DataKeeperID, now: Double) {
        guard let candidates = unreferencedSince[datakeeper], !candidates.isEmpty,
              now - (orphanScans[datakeeper] ?? -.infinity) >= min(Limits.orphanScanIntervalSeconds, configuration.orphanGraceSeconds)
        else { return }
        orphanScans[datakeeper] = now
        let uploading = Set(openUploadChunks())
        var kept: [ChunkID: Double] = [:]
        var expired: [ChunkID] = []
        for (chunk, since) in candidates where namespace.chunks[chunk] == nil {
            if now - since >= configuration.orphanGraceSeconds && !uploading.contains(chunk) {
                expired.append(chunk)
            } else {
                kept[chunk] = since
            }
        }
        unreferencedSince[datakeeper] = kept
        guard !expired.isEmpty else { return }
        writeInBackground(expired.map { .queueDeletion($0, datakeeper) })
        logger.info("deleting unreferenced chunks", metadata: ["datakeeper.id": "\(datakeeper)", "chunks": "\(expired.count)"])
    }

    /// Deletions owed by `datakeeper` whose order is durable: one handed out earlier could
    /// otherwise delete the chunks of a file that a crash then brings back.
    private func durableDeletions(for datakeeper: DataKeeperID, limit: Int) -> [ChunkID] {
        guard let pending = namespace.pendingDeletions[datakeeper] else { return [] }
        let durable = committer.durableSequence
        let due = now() - configuration.deletionGraceSeconds
        return Array(pending.lazy.filter { chunk, sequence in
            sequence <= durable && (self.deletionQueuedAt[Replica(chunk: chunk, datakeeper: datakeeper)] ?? -.infinity) <= due
        }.map(\.key).prefix(limit))
    }

    func nodes() async throws -> NodesResponse {
        let pending: [DataKeeperID: Int] = namespace.pendingDeletions.mapValues { $0.count }
        let now = self.now()
        let rows = registry.nodes.values.sorted { $0.id < $1.id }.map { node -> NodeInfo in
            NodeInfo(
                id: node.id, address: node.address, alive: registry.isAlive(node, now: now), state: status(of: node, now: now), inFlight: node.load,
                capacityBytes: node.capacityBytes, usedBytes: node.usedBytes, chunkCount: node.chunkCount,
                chunksServed: node.chunksServed, secondsSinceHeartbeat: max(0, now - node.lastHeartbeatSeconds),
                repairCopies: repairCopies(of: node.id), pendingDeletions: pending[node.id] ?? 0)
        }
        return NodesResponse(heartbeatTimeoutSeconds: configuration.heartbeatTimeoutSeconds, nodes: rows)
    }

    // MARK: - Uploads

    func createUpload(_ request: CreateUploadRequest) async throws -> UploadSession {
        let now = self.now()
        forgetAbandonedUploads(now: now)
        if let commitID = request.commitID {
            guard (1...64).contains(commitID.utf8.count) else { throw TYDFSError(.invalidArgument, "a commit id has 1…64 characters") }
            // A put retried after a failover: its first try was committed. Answered once that
            // commit is durable (memory has it first); if its batch fails, it is put again.
            if namespace.file(at: request.path)?.commitID == commitID {
                let applied = sequence
                let giveUp = ContinuousClock.now + .seconds(Limits.controlRequestTimeoutSeconds)
                while committer.durableSequence < applied, namespace.file(at: request.path)?.commitID == commitID {
                    guard ContinuousClock.now < giveUp else {
                        throw TYDFSError(.unavailable, "the metadata database has not confirmed \(request.path) for \(Limits.controlRequestTimeoutSeconds) s; try again")
                    }
                    try await Task.sleep(for: .milliseconds(5))
                }
                if let existing = namespace.file(at: request.path), existing.commitID == commitID {
                    return UploadSession(uploadID: "", chunkSizeBytes: existing.chunkSizeBytes, replication: existing.replication, committed: fileInfo(existing))
                }
            }
        }
        try checkWritable(request.path, overwrite: request.overwrite)
        guard !registry.alive(now: now).isEmpty else {
            throw TYDFSError(.unavailable, "no live datakeeper: start one with `tydfs datakeeper --master URL`")
        }
        let id = hex64(UInt64.random(in: .min ... .max))
        var upload = Upload(path: request.path, overwrite: request.overwrite, commitID: request.commitID, lastActivitySeconds: now)
        try adopt(request.adopt, into: &upload)
        uploads[id] = upload
        logger.debug("upload started", metadata: ["path": "\(request.path)", "upload": "\(id)"])
        var session = UploadSession(uploadID: id, chunkSizeBytes: configuration.chunkSizeBytes, replication: configuration.replication)
        if let first = request.firstChunkBytes, first > 0 {
            do {
                session.firstChunk = try allocateChunk(
                    uploadID: id, request: AllocateChunkRequest(exclude: [], dataBytes: min(first, configuration.chunkSizeBytes)))
            } catch {
                uploads[id] = nil
                throw error
            }
        }
        return session
    }

    /// Refuses a path longer than the store can keep, before it joins a batch whose write it
    /// would fail for everyone in it.
    private func checkStorable(_ path: RemotePath) throws {
        let bytes = path.value.utf8.count
        guard bytes <= configuration.maxPathBytes else {
            throw TYDFSError(.invalidArgument, "\(path.value.prefix(60))… is \(bytes) bytes long; this master's metadata store (PostgreSQL) keeps paths of at most \(configuration.maxPathBytes) bytes")
        }
    }

    private func checkWritable(_ path: RemotePath, overwrite: Bool) throws {
        guard !path.isRoot else { throw TYDFSError(.invalidArgument, "/ is the root folder, not a file name") }
        try checkStorable(path)
        if !overwrite, namespace.file(at: path) != nil {
            throw TYDFSError(.alreadyExists, "\(path) already exists; use --overwrite to replace it")
        }
        if namespace.isDirectory(path) { throw TYDFSError(.alreadyExists, "cannot create \(path): it is a directory") }
        if let conflict = namespace.conflict(for: path), conflict != path {
            if path.isBelow(conflict) {
                throw TYDFSError(.alreadyExists, "cannot create \(path): \(conflict) is a file, not a directory")
            }
            throw TYDFSError(.alreadyExists, "cannot create \(path): it is a directory (it holds \(conflict))")
        }
    }

    func allocateChunk(uploadID: String, request: AllocateChunkRequest) throws -> ChunkAllocation {
        guard var upload = uploads[uploadID] else { throw unknownUpload(uploadID) }
        guard request.dataBytes > 0, request.dataBytes <= configuration.chunkSizeBytes else {
            throw TYDFSError(.invalidArgument, "a chunk holds 1…\(configuration.chunkSizeBytes) bytes, not \(request.dataBytes)")
        }
        try adopt(request.adopt, into: &upload)
        let now = self.now()
        let targets = registry.chooseTargets(
            count: configuration.replication, chunkBytes: ChunkFrame.frameBytes(dataBytes: request.dataBytes),
            excluding: Set(request.exclude).union(decommissioned), now: now)
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
            replication: configuration.replication,
            token: tokens.token(.write, id, pipeline: targets.map { PipelineHop(id: $0.id.value, address: $0.address) }))
    }

    func commit(uploadID: String, request: CommitUploadRequest) async throws -> FileInfo {
        try await commit([UploadCommit(uploadID: uploadID, commit: request)])[0].get()
    }

    /// Commits several puts at once (a client's batched commit): each is checked and applied in
    /// memory in turn, exactly as alone (so a later one sees the earlier ones), and the edits of
    /// all that pass go to the store together, sharing one transaction and one fsync. (Committed
    /// one by one, the first would start a transaction of its own and the others wait for the
    /// next.) Each gets its own answer.
    func commit(_ items: [UploadCommit]) async -> [Result<FileInfo, any Error>] {
        var answers = [Result<FileInfo, any Error>?](repeating: nil, count: items.count)
        var staged: [(index: Int, commit: StagedCommit)] = []
        var last: UInt64?
        for (index, item) in items.enumerated() {
            do {
                let commit = try stageCommit(uploadID: item.uploadID, request: item.commit)
                last = apply(commit.edits)
                staged.append((index, commit))
            } catch {
                answers[index] = .failure(error)
            }
        }
        do {
            if let last { try await committer.commit(staged.flatMap(\.commit.edits), sequence: last) }
            for (index, commit) in staged { answers[index] = .success(finishCommit(commit)) }
        } catch {
            for (index, commit) in staged {
                uploads[commit.uploadID] = commit.upload
                answers[index] = .failure(error)
            }
        }
        return answers.map { $0! }
    }

    /// A commit checked and ready to write: the upload it closes (given back if the write
    /// fails), the file it makes, and the edits.
    private struct StagedCommit {
        var uploadID: String
        var upload: Upload
        var file: StoredFile
        var adopted: Int
        var edits: [MetadataEdit]
    }

    /// Checks a commit of upload `uploadID` and builds its edits; the upload is taken (a second
    /// commit of it, a retry racing the first, finds no session).
    private func stageCommit(uploadID: String, request: CommitUploadRequest) throws -> StagedCommit {
        guard let upload = uploads[uploadID] else { throw unknownUpload(uploadID) }
        guard request.chunks.count <= Limits.maxChunksPerFile else {
            throw TYDFSError(.invalidArgument, "a file may have at most \(Limits.maxChunksPerFile) chunks, not \(request.chunks.count)")
        }
        try ChunkLayout.validate(lengths: request.chunks.map(\.sizeBytes), fileBytes: request.sizeBytes,
                                 chunkBytes: configuration.chunkSizeBytes)
        guard Set(request.chunks.map(\.id)).count == request.chunks.count else {
            throw TYDFSError(.invalidArgument, "a chunk is named twice")
        }
        for (position, chunk) in request.chunks.enumerated() {
            guard chunk.index == position else { throw TYDFSError(.invalidArgument, "chunk \(position) is out of order") }
            guard !chunk.replicas.isEmpty, Set(chunk.replicas).count == chunk.replicas.count else {
                throw TYDFSError(.invalidArgument, "chunk \(chunk.index) must name at least one datakeeper, each once")
            }
            // Even one allocated here: another upload of the put may have adopted it and committed.
            guard namespace.chunks[chunk.id] == nil else {
                throw TYDFSError(.invalidArgument, "chunk \(chunk.id) belongs to a file already")
            }
            if !upload.allocated.contains(chunk.id) { try checkAdoptable(chunk) }
        }
        let adopted = upload.adopted + request.chunks.count { !upload.allocated.contains($0.id) }
        var file = StoredFile(
            path: upload.path, sizeBytes: request.sizeBytes, mtimeMillis: Self.wallClockMillis(),
            crc32c: request.crc32c, chunkSizeBytes: configuration.chunkSizeBytes, replication: configuration.replication,
            chunks: request.chunks.map {
                StoredChunk(index: $0.index, id: $0.id, sizeBytes: $0.sizeBytes, crc32c: $0.crc32c, replicas: $0.replicas)
            }, attributes: try Self.checked(request.attributes), commitID: upload.commitID)
        // Checked again: the namespace may have changed since the upload was opened.
        try checkWritable(upload.path, overwrite: upload.overwrite)
        var edits: [MetadataEdit] = []
        if let replaced = namespace.file(at: upload.path) {
            edits += MetadataEdit.removal(of: replaced)
            file.attributes = try Self.checked(IdentityAttributes.carried(from: replaced.attributes, into: file.attributes))
        }
        edits.append(.putFile(file))
        let now = self.now()
        for chunk in file.chunks {
            // A replica on a datakeeper that died or left during the upload does not count.
            let counted = chunk.replicas.filter { registry.isAlive($0, now: now) && !decommissioned.contains($0) }
            if counted.count != file.replication { attention.insert(chunk.id) }
            for replica in chunk.replicas { replicaRecorded(chunk.id, on: replica) }
        }
        // Taken before the write: a second commit of the same upload (a retry racing the first)
        // finds no session instead of replacing the file with itself and deleting its chunks.
        uploads[uploadID] = nil
        return StagedCommit(uploadID: uploadID, upload: upload, file: file, adopted: adopted, edits: edits)
    }

    private func finishCommit(_ staged: StagedCommit) -> FileInfo {
        let (file, adopted) = (staged.file, staged.adopted)
        let info = fileInfo(file)
        metrics.committed(bytes: file.sizeBytes)
        logger.info("file committed", metadata: [
            "path": "\(file.path)", "size": "\(file.sizeBytes)", "chunks": "\(file.chunks.count)",
            "chunks.adopted": "\(adopted)", "under_replicated": "\(info.underReplicated)",
        ])
        return info
    }

    /// Makes `chunks`, stored through an earlier upload of the same put, this upload's own (so
    /// they are not orphans while it stays open), each once `checkAdoptable` allows it.
    private func adopt(_ chunks: [CommittedChunk]?, into upload: inout Upload) throws {
        for chunk in chunks ?? [] where !upload.allocated.contains(chunk.id) {
            try checkAdoptable(chunk)
            upload.allocated.insert(chunk.id)
            upload.adopted += 1
        }
    }

    /// A chunk an earlier upload of the same put stored, possibly under another leader (the put
    /// was resumed after a failover): taken on the proof of the write token it was allocated
    /// with, if it went only to hops of that token's pipeline and is no file's chunk, live or
    /// being deleted.
    private func checkAdoptable(_ chunk: CommittedChunk) throws {
        guard chunk.token != nil else {
            throw TYDFSError(.invalidArgument, "chunk \(chunk.id) was not allocated to this upload, and carries no write token proving it was allocated to the put")
        }
        let token: ChunkToken
        do {
            token = try tokens.pastWrite(chunk.token, of: chunk.id)
        } catch let error as TYDFSError {
            throw TYDFSError(.invalidArgument, "chunk \(chunk.id) was not allocated to this upload: \(error.message)")
        }
        let pipeline = Set(token.pipeline.map(\.id))
        if let stranger = chunk.replicas.first(where: { !pipeline.contains($0.value) }) {
            throw TYDFSError(.invalidArgument, "chunk \(chunk.id) names datakeeper \(stranger), which is not in the pipeline it was written through")
        }
        guard namespace.chunks[chunk.id] == nil,
              !namespace.pendingDeletions.values.contains(where: { $0[chunk.id] != nil })
        else {
            throw TYDFSError(.invalidArgument, "chunk \(chunk.id) belongs to a file, or is being deleted: it cannot be adopted")
        }
    }

    /// Chunks allocated to uploads still open: stored somewhere, not yet referenced, not orphans.
    func openUploadChunks() -> [ChunkID] {
        forgetAbandonedUploads(now: now())
        return uploads.values.flatMap(\.allocated)
    }

    private func forgetAbandonedUploads(now: Double) {
        var forgot = false
        for (id, upload) in uploads where now - upload.lastActivitySeconds >= configuration.uploadIdleTimeoutSeconds {
            uploads[id] = nil
            expiredUploads[id] = now
            forgot = true
            logger.info("upload forgotten after a time without activity", metadata: ["upload": "\(id)", "path": "\(upload.path)"])
        }
        // Pruned only when it grows, not on every put (`unknownUpload` checks the age itself).
        if forgot { expiredUploads = expiredUploads.filter { now - $0.value < Self.expiredUploadMemorySeconds } }
    }

    /// The path upload `uploadID` writes: what its caller must be allowed to write.
    func uploadPath(uploadID: String) throws -> RemotePath {
        guard let upload = uploads[uploadID] else { throw unknownUpload(uploadID) }
        return upload.path
    }

    /// Counts as activity on upload `uploadID` (a client whose put is waiting for its source).
    func renewUpload(uploadID: String) throws {
        guard uploads[uploadID] != nil else { throw unknownUpload(uploadID) }
        uploads[uploadID]?.lastActivitySeconds = now()
    }

    func abortUpload(uploadID: String) {
        uploads[uploadID] = nil
    }

    private func unknownUpload(_ id: String) -> TYDFSError {
        if let forgotten = expiredUploads[id], now() - forgotten < Self.expiredUploadMemorySeconds {
            // Not `upload_unknown`: a client would reopen the put and adopt chunks that may be gone.
            return TYDFSError(.notFound, "upload \(id) was forgotten after \(Int(configuration.uploadIdleTimeoutSeconds)) s without activity, and its chunks may have been deleted since; start the put again")
        }
        return TYDFSError(.uploadUnknown, "upload \(id) is unknown (the master may have restarted, or another master leads now)")
    }

    // MARK: - Namespace

    /// `countingReads`: the caller is about to read the file, which counts as work for the
    /// datakeeper each chunk will be read from first.
    /// A file of more than `chunkBudget` chunks is refused with `ask_alone` (see `lookup`).
    func stat(_ path: RemotePath, countingReads: Bool = true, chunkBudget: Int = .max) throws -> FileInfo {
        guard let file = namespace.file(at: path) else { throw TYDFSError(.notFound, "\(path): no such file") }
        guard file.chunks.count <= chunkBudget else {
            throw TYDFSError(.askAlone, "\(path) has \(file.chunks.count) chunks, too many to answer beside the other files of this lookup; stat it on its own")
        }
        var info = fileInfo(file)
        if countingReads {
            // Only a caller about to read gets tokens to read with.
            for index in info.chunks.indices { info.chunks[index].token = tokens.token(.read, info.chunks[index].id) }
            for chunk in info.chunks { if let first = chunk.replicas.first, first.alive { registry.assign(first.id) } }
        }
        return info
    }

    /// The stats of a `LookupRequest`, in its order, in one turn of the actor: each the file
    /// (with read tokens unless it only inspects) or its error. `refused[i]` is the error of an
    /// item the caller may not read, answered without looking.
    /// Files past `chunkBudget` chunks in all are answered `ask_alone`.
    func lookup(
        _ items: [LookupRequest.Item], refused: [TYDFSError?], chunkBudget: Int = Limits.maxChunksPerLookup
    ) -> [Result<FileInfo, TYDFSError>] {
        var chunksLeft = chunkBudget
        var answeredAny = false
        return zip(items, refused).map { item, refusal in
            if let refusal { return .failure(refusal) }
            do {
                let info = try stat(item.path, countingReads: item.inspect != true, chunkBudget: answeredAny ? chunksLeft : .max)
                answeredAny = true
                chunksLeft -= min(chunksLeft, info.chunks.count)
                return .success(info)
            } catch {
                return .failure(TYDFSError.from(error))
            }
        }
    }

    /// One level of the namespace: a directory's children (all of them, or one `page`), or a
    /// file alone. With `entryOnly`, the path's own entry instead, and a directory's
    /// subdirectory count.
    func list(_ path: RemotePath, entryOnly: Bool = false, page: ListPage? = nil) throws -> ListResponse {
        guard let own = namespace.entry(at: path) else { throw TYDFSError(.notFound, "\(path): no such file or directory") }
        var entries = [own]
        var nextAfter: String?
        if own.isDirectory, !entryOnly {
            let children = namespace.page(
                of: path, after: page?.after, limit: page?.limit ?? .max, maxBytes: page == nil ? .max : Limits.maxListPageBytes)
            entries = children?.entries ?? []
            nextAfter = children?.nextAfter
        }
        let directory = own.isDirectory ? own : nil
        return ListResponse(
            path: path.value, entries: entries.map(Self.listEntry), attributes: directory?.attributes, mtimeMillis: directory?.mtimeMillis,
            subdirectoryCount: entryOnly ? namespace.subdirectoryCount(at: path) : nil, nextAfter: nextAfter)
    }

    private static func listEntry(_ entry: NamespaceEntry) -> ListEntry {
        ListEntry(
            path: entry.path, isDirectory: entry.isDirectory, sizeBytes: entry.sizeBytes, mtimeMillis: entry.mtimeMillis,
            checksum: entry.crc32c.map { "crc32c:" + hex32($0) }, attributes: entry.attributes)
    }

    /// Renames a file or a directory in one metadata batch: other clients see every file under
    /// its old name or every one under its new name, never a mix, and with `replace`, the
    /// replaced file or empty directory until the rename, never nothing. No chunk moves.
    func rename(_ request: RenameRequest) async throws -> RenameResponse {
        let plan = try namespace.renameEdits(from: request.from, to: request.to, replacing: request.replace ?? false)
        try await write(plan.edits + MetadataEdit.touchingParents(of: [request.from, plan.target], at: Self.wallClockMillis()))
        let files = plan.edits.count { if case .putFile = $0 { true } else { false } }
        logger.info("renamed", metadata: ["from": "\(request.from)", "to": "\(plan.target)", "files": "\(files)"])
        return RenameResponse(from: request.from.value, to: plan.target.value, files: files)
    }

    /// Gives the file or directory `request.path` another modification time (files only) and
    /// attributes, in one metadata batch that rewrites its row and changes nothing else (a
    /// directory keeps its time). A directory that existed only through its files is made one of
    /// its own, so it keeps them. Answers the entry as this batch left it.
    func setAttributes(_ request: SetAttributesRequest) async throws -> ListEntry {
        let path = request.path
        let changes = request.attributes ?? [:]
        func laid(_ kept: [String: String]) throws -> [String: String] {
            try Self.checked(kept.merging(changes) { _, new in new }.filter { !$0.value.isEmpty })
        }
        if let mtimeMillis = request.mtimeMillis, !Limits.modificationMillis.contains(mtimeMillis) {
            throw TYDFSError(
                .invalidArgument,
                "a modification time must lie in the years 1 to 9999 (\(Limits.modificationMillis.lowerBound)…\(Limits.modificationMillis.upperBound) ms since 1970), not \(mtimeMillis) ms")
        }
        guard var entry = namespace.entry(at: path) else { throw TYDFSError(.notFound, "\(path): no such file or directory") }
        if var file = namespace.file(at: path) {
            if let mtimeMillis = request.mtimeMillis { file.mtimeMillis = mtimeMillis }
            file.attributes = try laid(file.attributes)
            entry.mtimeMillis = file.mtimeMillis
            entry.attributes = file.attributes.isEmpty ? nil : file.attributes
            try await write([.removeFile(path), .putFile(file)])
        } else {
            guard !path.isRoot else { throw TYDFSError(.invalidArgument, "the root / keeps no attributes") }
            let attributes = try laid(entry.attributes ?? [:])
            entry.attributes = attributes.isEmpty ? nil : attributes
            try await write([.makeDirectory(path, mtimeMillis: entry.mtimeMillis, attributes: attributes)])
        }
        // Built before the write: others may change the path while it becomes durable.
        return Self.listEntry(entry)
    }

    /// Joins the files `request.sources` into one at `request.target`, moving their chunks, in
    /// one metadata batch that also removes the sources (see `ConcatenateRequest`).
    func concatenate(_ request: ConcatenateRequest) async throws -> FileInfo {
        guard !request.sources.isEmpty else { throw TYDFSError(.invalidArgument, "name at least one file to join") }
        guard Set(request.sources).count == request.sources.count else { throw TYDFSError(.invalidArgument, "a file is named twice") }
        guard !request.sources.contains(request.target) else { throw TYDFSError(.invalidArgument, "\(request.target) is one of the files to join") }
        guard request.sources.count <= Limits.maxChunksPerFile else {
            throw TYDFSError(.invalidArgument, "a file may have at most \(Limits.maxChunksPerFile) chunks: \(request.sources.count) files cannot be joined into one")
        }
        let files = try request.sources.map { path in
            guard let file = namespace.file(at: path) else { throw TYDFSError(.notFound, "\(path): no such file") }
            return file
        }
        let chunkBytes = files.count == 1 ? files[0].chunkSizeBytes : files[0].sizeBytes
        for (position, file) in files.enumerated() where files.count > 1 {
            let last = position == files.count - 1
            guard file.chunks.count == 1, last ? file.sizeBytes <= chunkBytes : file.sizeBytes == chunkBytes else {
                throw TYDFSError(.invalidArgument, "\(file.path) (\(file.sizeBytes) bytes in \(file.chunks.count) chunks) cannot be joined without copying: every file but the last must be one chunk of \(chunkBytes) bytes, the last one chunk no larger")
            }
        }
        try checkWritable(request.target, overwrite: request.overwrite)
        var crc: UInt32 = 0
        for file in files { crc = CRC32C.combine(crc, file.crc32c, length2: file.sizeBytes) }
        let chunks = files.flatMap(\.chunks).enumerated().map { index, chunk in
            var moved = chunk
            moved.index = index
            return moved
        }
        let replaced = namespace.file(at: request.target)
        let joined = StoredFile(
            path: request.target, sizeBytes: files.reduce(0) { $0 + $1.sizeBytes }, mtimeMillis: Self.wallClockMillis(),
            crc32c: crc, chunkSizeBytes: chunkBytes, replication: files.map(\.replication).max()!, chunks: chunks,
            attributes: try Self.checked(IdentityAttributes.carried(from: replaced?.attributes ?? [:], into: request.attributes ?? [:])))
        var edits: [MetadataEdit] = []
        if let replaced { edits += MetadataEdit.removal(of: replaced) }
        edits += request.sources.map { .removeFile($0) } + [.putFile(joined)] + MetadataEdit.touchingParents(of: request.sources, at: joined.mtimeMillis)
        try await write(edits)
        logger.info("files joined", metadata: ["target": "\(request.target)", "files": "\(files.count)", "size": "\(joined.sizeBytes)"])
        return fileInfo(joined)
    }

    /// `attributes` (a file's or a directory's) if within bounds: at most
    /// `Limits.maxFileAttributeBytes` in all.
    static func checked(_ attributes: [String: String]?) throws -> [String: String] {
        guard let attributes else { return [:] }
        let bytes = attributes.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count }
        guard bytes <= Limits.maxFileAttributeBytes else {
            throw TYDFSError(.invalidArgument, "a file's attributes hold at most \(Limits.maxFileAttributeBytes) bytes of names and values, not \(bytes)")
        }
        return attributes
    }

    /// mkdir: makes `path` a directory that stays while empty (`mkdir -p` with `parents`).
    func makeDirectory(_ request: MakeDirectoryRequest) async throws -> DirectoryResponse {
        let path = request.path
        if let file = namespace.conflict(for: path), file == path || path.isBelow(file) {
            throw TYDFSError(.alreadyExists, file == path ? "\(path) already exists as a file" : "cannot create \(path): \(file) is a file, not a directory")
        }
        let exists = namespace.isDirectory(path)
        if exists && !request.parents { throw TYDFSError(.alreadyExists, "\(path) already exists") }
        if path.isRoot || namespace.isMadeDirectory(path) {
            return DirectoryResponse(path: path.value, created: false)
        }
        // A directory that exists through its files alone is made one of its own: it now stays when they go.
        try await write([.makeDirectory(path, mtimeMillis: Self.wallClockMillis(), attributes: try Self.checked(request.attributes))])
        return DirectoryResponse(path: path.value, created: !exists)
    }

    /// rmdir: removes the empty directory at `path`.
    func removeDirectory(_ path: RemotePath) async throws -> DirectoryResponse {
        guard !path.isRoot else { throw TYDFSError(.invalidArgument, "the root / cannot be removed") }
        guard namespace.isDirectory(path) else {
            if namespace.file(at: path) != nil { throw TYDFSError(.invalidArgument, "\(path) is a file, not a directory (use rm)") }
            throw TYDFSError(.notFound, "\(path): no such directory")
        }
        if let child = namespace.anyChild(of: path) {
            throw TYDFSError(.directoryNotEmpty, "\(path) is not empty (it holds \(child))")
        }
        try await write([.removeDirectory(path)] + MetadataEdit.touchingParents(of: [path], at: Self.wallClockMillis()))
        return DirectoryResponse(path: path.value, created: false)
    }

    func remove(_ path: RemotePath) async throws -> FileInfo {
        guard let file = namespace.file(at: path) else { throw TYDFSError(.notFound, "\(path): no such file") }
        let info = fileInfo(file)
        try await write(MetadataEdit.removal(of: file) + MetadataEdit.touchingParents(of: [path], at: Self.wallClockMillis()))
        logger.info("file removed", metadata: ["path": "\(path)", "chunks": "\(file.chunks.count)"])
        return info
    }

    /// A stored file as clients see it: each chunk's replicas in the order to read them.
    private func fileInfo(_ file: StoredFile) -> FileInfo {
        let now = self.now()
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
            chunkSizeBytes: file.chunkSizeBytes, replication: file.replication, underReplicated: underReplicated, chunks: chunks,
            attributes: file.attributes.isEmpty ? nil : file.attributes)
    }
}
