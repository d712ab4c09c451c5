import Foundation
import Logging
import TYDFSCore
import TYDFSMetadata
import TYDFSProtocol
import TYDFSSecurity

/// The master's side of self-healing: planning copies and trims, handing them out on heartbeats,
/// taking in the datakeepers' results, bad-replica reports and orphan chunks, and `fsck`.
extension MasterState {
    /// One round of the replication manager: plan from the replica map and carry the plan out.
    ///
    /// Two guards keep repair from acting on a partial picture: after the master starts it plans
    /// nothing until every datakeeper named in the replica map has reported (or one heartbeat
    /// timeout has passed, for those that will not come back) — the HDFS "safe mode"; and a
    /// datakeeper whose chunk report has not arrived since it (re)joined counts as holding
    /// nothing — its recorded replicas may be gone, so they must not justify trimming others.
    /// Whether a master that just took over has heard from the datakeepers it needs, so that
    /// clients can be served: every datakeeper the replica map names is alive (or, in a new
    /// cluster, at least one), or one heartbeat timeout has passed for those that will not come.
    func hasHeardFromDataKeepers() -> Bool {
        let now = self.now()
        if now - startedSeconds >= configuration.heartbeatTimeoutSeconds { return true }
        let alive = Set(registry.alive(now: now).map(\.id))
        return holdersAtStart.isEmpty ? !alive.isEmpty : holdersAtStart.isSubset(of: alive)
    }

    @discardableResult
    func replicationRound() -> ReplicationPlan {
        noticeDeaths()
        if inSafeMode {
            if now() - startedSeconds < configuration.heartbeatTimeoutSeconds {
                let reported = Set(registry.nodes.keys).subtracting(awaitingReport)
                guard holdersAtStart.isSubset(of: reported) else { return ReplicationPlan() }
            }
            inSafeMode = false
            logger.info("replication manager active")
        }
        let now = self.now()
        let confirmed = registry.excluding(awaitingReport)
        let everyLive = Set(confirmed.alive(now: now).map(\.id))
        // Replicas on draining and retired datakeepers do not count toward the factor.
        let live = everyLive.subtracting(decommissioned)
        if attentionBasis.map({ $0.live != everyLive || $0.decommissioned != decommissioned }) ?? true {
            // Who is alive (or trusted) changed: any chunk may have gained or lost live replicas.
            attention = Set(namespace.chunks.lazy.filter { Self.liveCount($0.value, live) != $0.value.replication }.map(\.key))
            let chunks = namespace.chunks
            missing = Set(attention.lazy.filter { id in chunks[id].map { Self.liveCount($0, everyLive) == 0 } ?? false })
            attentionBasis = (everyLive, decommissioned)
        }
        for (chunk, copies) in copiesInFlight {
            let pending = copies.filter { $0.value.deadlineSeconds > now }
            copiesInFlight[chunk] = pending.isEmpty ? nil : pending
        }
        var busy: [DataKeeperID: Int] = [:]
        for copies in copiesInFlight.values {
            for (destination, copy) in copies {
                busy[destination, default: 0] += 1
                busy[copy.source, default: 0] += 1
            }
        }
        let states = attention.compactMap { id in
            namespace.chunks[id].map { chunk in
                ChunkReplicaState(id: id, frameBytes: ChunkFrame.frameBytes(dataBytes: chunk.sizeBytes), crc32c: chunk.crc32c,
                                  replicas: chunk.replicas, replication: chunk.replication)
            }
        }
        let plan = ReplicationPlanner.plan(
            chunks: states, registry: confirmed, now: now,
            inFlight: copiesInFlight.mapValues { Set($0.keys) }, busyCopies: busy,
            maxCopiesPerDataKeeper: configuration.maxRepairsPerDataKeeper, leaving: decommissioned)
        for copy in plan.copies {
            // The frame size was made by frameBytes(dataBytes:) of the chunk's stored size: it
            // inverts unless that size is past any chunk's (a damaged metadata row).
            guard let dataBytes = ChunkFrame.dataBytes(frameBytes: copy.frameBytes) else {
                logger.error("chunk not re-replicated: its stored size is past any chunk's", metadata: ["chunk.id": "\(copy.chunk)"])
                continue
            }
            let timeout = 30 + Double(copy.frameBytes) / (10 * 1024 * 1024)
            copiesInFlight[copy.chunk, default: [:]][copy.destination] = InFlightCopy(source: copy.sources[0], deadlineSeconds: now + timeout)
            copyOrders[copy.destination, default: []].append(CopyChunkOrder(
                chunk: copy.chunk, dataBytes: dataBytes, crc32c: copy.crc32c,
                sources: copy.sources.compactMap { id in registry.nodes[id].map { DataKeeperAddress(id: id, address: $0.address, alive: true) } },
                token: tokens.token(.replicate, copy.chunk)))
            logger.info("re-replicating chunk", metadata: ["chunk.id": "\(copy.chunk)", "from": "\(copy.sources[0])", "to": "\(copy.destination)"])
        }
        var trims: [MetadataEdit] = []
        for trim in plan.trims {
            // Checked again edit by edit: never below the factor on live, confirmed datakeepers.
            guard let chunk = namespace.chunks[trim.chunk], chunk.replicas.contains(trim.datakeeper) else { continue }
            guard chunk.replicas.filter({ $0 != trim.datakeeper && live.contains($0) }).count >= chunk.replication else { continue }
            trims += [.removeReplica(trim.chunk, trim.datakeeper), .queueDeletion(trim.chunk, trim.datakeeper)]
            logger.info("removing extra replica", metadata: ["chunk.id": "\(trim.chunk)", "datakeeper.id": "\(trim.datakeeper)"])
        }
        writeInBackground(trims)
        if !plan.copies.isEmpty {
            metrics.repairsOrdered(plan.copies.count)
            let destinations = Set(plan.copies.map(\.destination.value)).sorted().joined(separator: ", ")
            record(.repair, "copying \(plan.copies.count) chunk\(plan.copies.count == 1 ? "" : "s") to restore the factor (to \(destinations))")
        }
        if !trims.isEmpty { record(.repair, "removing \(trims.count / 2) extra replica\(trims.count == 2 ? "" : "s")") }
        if !plan.copies.isEmpty || !plan.trims.isEmpty || !plan.missing.isEmpty || !plan.deferred.isEmpty {
            logger.debug("replication round", metadata: [
                "copies": "\(plan.copies.count)", "trims": "\(plan.trims.count)",
                "missing": "\(plan.missing.count)", "deferred": "\(plan.deferred.count)",
            ])
        }
        // A chunk with no live replica cannot be repaired until a holder returns, which changes
        // the live set and looks at every chunk again: until then it is not planned every round.
        attention = attention.filter { id in
            guard let chunk = namespace.chunks[id] else { return false }
            if copiesInFlight[id] != nil { return true }
            guard Self.liveCount(chunk, everyLive) > 0 else {
                missing.insert(id)
                return false
            }
            return Self.liveCount(chunk, live) != chunk.replication
        }
        finishDrains(live: live)
        corruptReplicas = corruptReplicas.filter { replica in
            namespace.chunks[replica.chunk].map { Self.liveCount($0, live) < $0.replication } ?? false
        }
        return plan
    }

    static func liveCount(_ chunk: ChunkRecord, _ live: Set<DataKeeperID>) -> Int {
        chunk.replicas.reduce(0) { $0 + (live.contains($1) ? 1 : 0) }
    }

    /// Carries out what a heartbeat reports about repair work, bad chunks and unreferenced chunks.
    func absorbRepairReports(_ beat: HeartbeatRequest) {
        var edits: [MetadataEdit] = []
        for chunk in beat.badChunks {
            logger.warning("replica reported bad", metadata: ["chunk.id": "\(chunk)", "datakeeper.id": "\(beat.id)"])
            edits.append(.removeReplica(chunk, beat.id))
            attention.insert(chunk)
            corruptReplicas.insert(Replica(chunk: chunk, datakeeper: beat.id))
            metrics.badReplica()
            record(.corruptReplica, "replica of chunk \(chunk) on \(beat.id) is bad; replacing it")
        }
        for chunk in beat.copiesDone {
            if namespace.chunks[chunk] != nil {
                // A fresh copy supersedes an older order to delete the chunk there.
                edits += [.cancelDeletion(chunk, beat.id), .addReplica(chunk, beat.id)]
                attention.insert(chunk)
                replicaRecorded(chunk, on: beat.id)
            } else {
                edits.append(.queueDeletion(chunk, beat.id))
            }
            // Only now: a planning round meanwhile still sees the copy as pending.
            copiesInFlight[chunk]?[beat.id] = nil
            if copiesInFlight[chunk]?.isEmpty == true { copiesInFlight[chunk] = nil }
        }
        for failure in beat.copiesFailed {
            copiesInFlight[failure.chunk]?[beat.id] = nil
            if copiesInFlight[failure.chunk]?.isEmpty == true { copiesInFlight[failure.chunk] = nil }
            logger.warning("re-replication failed", metadata: ["chunk.id": "\(failure.chunk)", "datakeeper.id": "\(beat.id)", "error": "\(failure.message)"])
            for source in failure.badSources { verifyOrders[source, default: []].insert(failure.chunk) }
        }
        writeInBackground(edits)
    }

    /// Orders waiting for `datakeeper`, handed out (and forgotten) with its heartbeat answer.
    func takeOrders(for datakeeper: DataKeeperID) -> (copies: [CopyChunkOrder], verify: [ChunkID]) {
        let copies = copyOrders.removeValue(forKey: datakeeper) ?? []
        let verify = verifyOrders.removeValue(forKey: datakeeper) ?? []
        return (copies, verify.sorted())
    }

    /// A reader saw a replica whose bytes do not match: the datakeeper holding it verifies it.
    /// A reader's report of a bad replica: the holder is told to verify it. A report about a
    /// replica the map does not hold is dropped, so reports cannot pile up orders for nothing.
    func badReplicaReported(_ report: BadReplicaReport) {
        guard namespace.chunks[report.chunk]?.replicas.contains(report.datakeeper) == true else { return }
        logger.warning("reader reported a bad replica", metadata: [
            "chunk.id": "\(report.chunk)", "datakeeper.id": "\(report.datakeeper)", "error": "\(report.message.prefix(500))",
        ])
        verifyOrders[report.datakeeper, default: []].insert(report.chunk)
    }

    /// Copies `datakeeper` takes part in now, as source or destination.
    func repairCopies(of datakeeper: DataKeeperID) -> Int {
        copiesInFlight.values.reduce(0) { total, copies in
            total + copies.filter { $0.key == datakeeper || $0.value.source == datakeeper }.count
        }
    }

    func fsck(_ path: RemotePath) throws -> FsckReport {
        let files = namespace.files(under: path)
        guard !files.isEmpty || path.isRoot else { throw TYDFSError(.notFound, "\(path): no such file or directory") }
        let now = self.now()
        var healthy = 0, under = 0, over = 0, missing = 0, chunkCount = 0, corruptCount = 0
        var problems: [FsckProblem] = []
        var damaged: Set<RemotePath> = []
        for file in files {
            for chunk in file.chunks {
                chunkCount += 1
                let everyLive = chunk.replicas.filter { registry.isAlive($0, now: now) }
                // Replicas on draining and retired datakeepers do not count toward the factor.
                let live = everyLive.filter { !decommissioned.contains($0) }
                let leaving = everyLive.filter { decommissioned.contains($0) }.map(\.value).sorted()
                let leavingNote = leaving.isEmpty ? "" : "; also on \(leaving), being drained or retired"
                let corrupt = corruptReplicas.filter { $0.chunk == chunk.id }.map(\.datakeeper.value).sorted()
                corruptCount += corrupt.count
                func problem(_ status: String, _ detail: String) {
                    problems.append(FsckProblem(status: status, path: file.path, chunkIndex: chunk.index, chunk: chunk.id,
                                                liveReplicas: live.count, replication: file.replication, detail: detail))
                }
                if everyLive.isEmpty {
                    missing += 1
                    damaged.insert(file.path)
                    problem("missing", chunk.replicas.isEmpty ? "no replica recorded" : "held only by dead datakeepers \(chunk.replicas.map(\.value).sorted())")
                } else if live.count < file.replication {
                    under += 1
                    if corrupt.isEmpty {
                        problem("under_replicated", "live replicas on \(live.map(\.value).sorted())\(leavingNote)")
                    } else {
                        problem("corrupt", "bad replica on \(corrupt), being replaced; live replicas on \(live.map(\.value).sorted())")
                    }
                } else if live.count > file.replication {
                    over += 1
                    problem("over_replicated", "live replicas on \(live.map(\.value).sorted())")
                } else {
                    healthy += 1
                }
            }
        }
        return FsckReport(
            path: path.value, files: files.count, chunks: chunkCount, healthyChunks: healthy, underReplicatedChunks: under,
            overReplicatedChunks: over, missingChunks: missing, corruptReplicas: corruptCount,
            filesWithMissingData: damaged.sorted(), problems: problems, healthy: missing == 0)
    }
}

/// A copy the master ordered and is waiting to hear about.
struct InFlightCopy: Sendable {
    var source: DataKeeperID
    var deadlineSeconds: Double
}

/// One replica: a chunk on a datakeeper.
struct Replica: Hashable, Sendable {
    var chunk: ChunkID
    var datakeeper: DataKeeperID
}
