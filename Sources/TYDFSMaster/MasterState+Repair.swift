import Foundation
import Logging
import TYDFSCore
import TYDFSMetadata
import TYDFSProtocol

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
    @discardableResult
    func replicationRound() async throws -> ReplicationPlan {
        if inSafeMode {
            if Self.monotonicSeconds() - startedSeconds < configuration.heartbeatTimeoutSeconds {
                let holders = try await store.datakeepersHoldingReplicas()
                let reported = Set(registry.nodes.keys).subtracting(awaitingReport)
                guard holders.isSubset(of: reported) else { return ReplicationPlan() }
            }
            inSafeMode = false
            logger.info("replication manager active")
        }
        let placements = try await store.chunkPlacements(under: .root)
        let now = Self.monotonicSeconds()
        let confirmed = registry.excluding(awaitingReport)
        for (chunk, copies) in copiesInFlight {
            let live = copies.filter { $0.value.deadlineSeconds > now }
            copiesInFlight[chunk] = live.isEmpty ? nil : live
        }
        var busy: [DataKeeperID: Int] = [:]
        for copies in copiesInFlight.values {
            for (destination, copy) in copies {
                busy[destination, default: 0] += 1
                busy[copy.source, default: 0] += 1
            }
        }
        let plan = ReplicationPlanner.plan(
            chunks: placements.map(\.state), registry: confirmed, now: now,
            inFlight: copiesInFlight.mapValues { Set($0.keys) }, busyCopies: busy,
            maxCopiesPerDataKeeper: configuration.maxRepairsPerDataKeeper)
        for copy in plan.copies {
            let timeout = 30 + Double(copy.frameBytes) / (10 * 1024 * 1024)
            copiesInFlight[copy.chunk, default: [:]][copy.destination] = InFlightCopy(source: copy.sources[0], deadlineSeconds: now + timeout)
            copyOrders[copy.destination, default: []].append(CopyChunkOrder(
                chunk: copy.chunk, dataBytes: copy.frameBytes - Int64(Limits.chunkTrailerBytes), crc32c: copy.crc32c,
                sources: copy.sources.compactMap { id in registry.nodes[id].map { DataKeeperAddress(id: id, address: $0.address, alive: true) } }))
            logger.info("re-replicating chunk", metadata: ["chunk.id": "\(copy.chunk)", "from": "\(copy.sources[0])", "to": "\(copy.destination)"])
        }
        let factors = Dictionary(placements.map { ($0.state.id, $0.state.replication) }, uniquingKeysWith: { a, _ in a })
        for trim in plan.trims {
            // Other calls may have run since the plan was made: the store re-checks, at the moment
            // of removal, that enough replicas on live, confirmed datakeepers remain.
            let trusted = Set(registry.excluding(awaitingReport).alive(now: Self.monotonicSeconds()).map(\.id))
            if try await store.trimReplica(chunk: trim.chunk, datakeeper: trim.datakeeper, keep: factors[trim.chunk] ?? 1, trusted: trusted) {
                logger.info("removing extra replica", metadata: ["chunk.id": "\(trim.chunk)", "datakeeper.id": "\(trim.datakeeper)"])
            }
        }
        if !plan.copies.isEmpty || !plan.trims.isEmpty || !plan.missing.isEmpty || !plan.deferred.isEmpty {
            logger.debug("replication round", metadata: [
                "copies": "\(plan.copies.count)", "trims": "\(plan.trims.count)",
                "missing": "\(plan.missing.count)", "deferred": "\(plan.deferred.count)",
            ])
        }
        let stillBad = Set(placements.filter { placement in
            placement.state.replicas.filter { registry.isAlive($0, now: now) }.count < placement.state.replication
        }.map(\.state.id))
        corruptReplicas = corruptReplicas.filter { stillBad.contains($0.chunk) }
        return plan
    }

    /// Carries out what a heartbeat reports about repair work, bad chunks and unreferenced chunks.
    func absorbRepairReports(_ beat: HeartbeatRequest, unreferenced: [ChunkID]?) async throws {
        for chunk in beat.badChunks {
            logger.warning("replica reported bad", metadata: ["chunk.id": "\(chunk)", "datakeeper.id": "\(beat.id)"])
            try await store.dropReplica(chunk: chunk, datakeeper: beat.id, deleteFromDisk: false)
            corruptReplicas.insert(Replica(chunk: chunk, datakeeper: beat.id))
        }
        for chunk in beat.copiesDone {
            if try await !store.addReplica(chunk: chunk, datakeeper: beat.id) {
                _ = try await store.deleteUnreferenced(chunks: [chunk], on: beat.id)
            }
            // Only now: a planning round reading placements meanwhile still sees the copy as pending.
            copiesInFlight[chunk]?[beat.id] = nil
            if copiesInFlight[chunk]?.isEmpty == true { copiesInFlight[chunk] = nil }
        }
        for failure in beat.copiesFailed {
            copiesInFlight[failure.chunk]?[beat.id] = nil
            if copiesInFlight[failure.chunk]?.isEmpty == true { copiesInFlight[failure.chunk] = nil }
            logger.warning("re-replication failed", metadata: ["chunk.id": "\(failure.chunk)", "datakeeper.id": "\(beat.id)", "error": "\(failure.message)"])
            for source in failure.badSources { verifyOrders[source, default: []].insert(failure.chunk) }
        }
        if let unreferenced {
            let now = Self.monotonicSeconds()
            let previous = unreferencedSince[beat.id] ?? [:]
            var current: [ChunkID: Double] = [:]
            for chunk in unreferenced { current[chunk] = previous[chunk] ?? now }
            let uploading = Set(openUploadChunks())
            let expired = current.filter { now - $0.value >= configuration.orphanGraceSeconds && !uploading.contains($0.key) }.map(\.key)
            if !expired.isEmpty {
                let queued = try await store.deleteUnreferenced(chunks: expired, on: beat.id)
                logger.info("deleting unreferenced chunks", metadata: ["datakeeper.id": "\(beat.id)", "chunks": "\(queued)"])
                for chunk in expired { current[chunk] = nil }
            }
            unreferencedSince[beat.id] = current
        }
    }

    /// Orders waiting for `datakeeper`, handed out (and forgotten) with its heartbeat answer.
    func takeOrders(for datakeeper: DataKeeperID) -> (copies: [CopyChunkOrder], verify: [ChunkID]) {
        let copies = copyOrders.removeValue(forKey: datakeeper) ?? []
        let verify = verifyOrders.removeValue(forKey: datakeeper) ?? []
        return (copies, verify.sorted())
    }

    /// A reader saw a replica whose bytes do not match: the datakeeper holding it verifies it.
    func badReplicaReported(_ report: BadReplicaReport) {
        logger.warning("reader reported a bad replica", metadata: [
            "chunk.id": "\(report.chunk)", "datakeeper.id": "\(report.datakeeper)", "error": "\(report.message)",
        ])
        verifyOrders[report.datakeeper, default: []].insert(report.chunk)
    }

    /// Copies `datakeeper` takes part in now, as source or destination.
    func repairCopies(of datakeeper: DataKeeperID) -> Int {
        copiesInFlight.values.reduce(0) { total, copies in
            total + copies.filter { $0.key == datakeeper || $0.value.source == datakeeper }.count
        }
    }

    func fsck(_ path: RemotePath) async throws -> FsckReport {
        let files = try await store.files(under: path)
        guard !files.isEmpty || path.isRoot else { throw TYDFSError(.notFound, "\(path): no such file or directory") }
        let placements = try await store.chunkPlacements(under: path)
        let now = Self.monotonicSeconds()
        var healthy = 0, under = 0, over = 0, missing = 0
        var problems: [FsckProblem] = []
        var damaged: Set<RemotePath> = []
        for placement in placements {
            let chunk = placement.state
            let live = chunk.replicas.filter { registry.isAlive($0, now: now) }
            let corrupt = corruptReplicas.filter { $0.chunk == chunk.id }.map(\.datakeeper.value).sorted()
            func problem(_ status: String, _ detail: String) {
                problems.append(FsckProblem(status: status, path: placement.path, chunkIndex: placement.index, chunk: chunk.id,
                                            liveReplicas: live.count, replication: chunk.replication, detail: detail))
            }
            if live.isEmpty {
                missing += 1
                damaged.insert(placement.path)
                problem("missing", chunk.replicas.isEmpty ? "no replica recorded" : "held only by dead datakeepers \(chunk.replicas.map(\.value).sorted())")
            } else if live.count < chunk.replication {
                under += 1
                if corrupt.isEmpty {
                    problem("under_replicated", "live replicas on \(live.map(\.value).sorted())")
                } else {
                    problem("corrupt", "bad replica on \(corrupt), being replaced; live replicas on \(live.map(\.value).sorted())")
                }
            } else if live.count > chunk.replication {
                over += 1
                problem("over_replicated", "live replicas on \(live.map(\.value).sorted())")
            } else {
                healthy += 1
            }
        }
        let corruptCount = corruptReplicas.filter { replica in placements.contains { $0.state.id == replica.chunk } }.count
        return FsckReport(
            path: path.value, files: files.count, chunks: placements.count, healthyChunks: healthy, underReplicatedChunks: under,
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
