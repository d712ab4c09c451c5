import Foundation
import TYDFSCore
import TYDFSProtocol

/// What operators see and do: the event feed, the cluster summary behind the dashboard and
/// `/metrics`, datakeepers leaving, and draining them (HDFS's decommissioning).
extension MasterState {
    /// Adds an event to the dashboard's feed.
    func record(_ kind: ClusterEventKind, _ message: String) {
        events.append(kind, message, timeMillis: Self.wallClockMillis())
    }

    /// Records a death for every datakeeper that stopped heartbeating since the last look, and
    /// forgets the copies it was to receive, so they are ordered elsewhere now.
    func noticeDeaths() {
        let now = self.now()
        for id in announcedAlive.sorted() where !registry.isAlive(id, now: now) {
            announcedAlive.remove(id)
            forgetCopies(to: id)
            record(.datakeeperDead, "\(id) missed heartbeats for \(configuration.heartbeatTimeoutSeconds) s; its chunks are copied elsewhere")
        }
    }

    /// Drops the copy orders `id` was to carry out, pending or handed out.
    private func forgetCopies(to id: DataKeeperID) {
        copyOrders[id] = nil
        for (chunk, copies) in copiesInFlight where copies[id] != nil {
            copiesInFlight[chunk]?[id] = nil
            if copiesInFlight[chunk]?.isEmpty == true { copiesInFlight[chunk] = nil }
            attention.insert(chunk)
        }
    }

    /// A retired datakeeper stays retired when switched off: that is what retiring is for.
    func status(of node: DataKeeperState, now: Double) -> DataKeeperStatus {
        if retired.contains(node.id) { return .retired }
        guard registry.isAlive(node, now: now) else { return .dead }
        return draining.contains(node.id) ? .draining : .alive
    }

    /// A datakeeper shutting down said so: it counts as dead at once, so repair starts now
    /// instead of after the heartbeat timeout.
    func leave(_ request: LeaveRequest) {
        guard registry.nodes[request.id] != nil else { return }
        registry.markLeft(request.id)
        announcedAlive.remove(request.id)
        forgetCopies(to: request.id)
        logger.info("datakeeper left", metadata: ["datakeeper.id": "\(request.id)"])
        record(.datakeeperLeft, "\(request.id) shut down cleanly\(retired.contains(request.id) ? " (retired)" : "; its chunks are copied elsewhere")")
    }

    /// Starts draining `id`: it takes no new chunks, and its chunks are copied to others until
    /// each is at its factor without it.
    func startDrain(_ id: DataKeeperID, reason: String) {
        guard !decommissioned.contains(id) else { return }
        draining.insert(id)
        logger.info("draining datakeeper", metadata: ["datakeeper.id": "\(id)", "reason": "\(reason)"])
        record(.drainStarted, "draining \(id): \(reason)")
    }

    /// The datakeeper `id`, or a clear error when this master has never heard of it.
    private func known(_ id: DataKeeperID) throws -> DataKeeperState {
        guard let node = registry.nodes[id] else { throw TYDFSError(.notFound, "no datakeeper \(id) has ever heartbeated to this master") }
        return node
    }

    func drain(_ id: DataKeeperID) throws -> DrainStatus {
        _ = try known(id)
        startDrain(id, reason: "an operator asked")
        return try drainStatus(id)
    }

    /// Puts a draining or retired datakeeper back in service; extra replicas are trimmed.
    func cancelDrain(_ id: DataKeeperID) throws -> DrainStatus {
        _ = try known(id)
        if draining.remove(id) != nil || retired.remove(id) != nil {
            record(.drainFinished, "\(id) is back in service (drain cancelled)")
        }
        return try drainStatus(id)
    }

    func drainStatus(_ id: DataKeeperID) throws -> DrainStatus {
        let node = try known(id)
        let now = self.now()
        let live = Set(registry.alive(now: now).map(\.id)).subtracting(decommissioned)
        let remaining = chunksBelowFactor(without: id, live: live)
        let state = status(of: node, now: now)
        let blocked = state == .draining && remaining > 0 && live.count < configuration.replication
            ? "only \(live.count) live datakeeper\(live.count == 1 ? "" : "s") in service for replication \(configuration.replication): the drain finishes once more join"
            : nil
        return DrainStatus(id: id, state: state, chunksRemaining: remaining, blockedBy: blocked)
    }

    /// Chunks held by `id` that are below their factor on the `live` datakeepers.
    private func chunksBelowFactor(without id: DataKeeperID, live: Set<DataKeeperID>) -> Int {
        namespace.chunks(on: id).reduce(0) { count, chunk in
            guard let record = namespace.chunks[chunk] else { return count }
            return count + (Self.liveCount(record, live) < record.replication ? 1 : 0)
        }
    }

    /// Retires every draining datakeeper whose chunks are all at their factor elsewhere, and
    /// puts a live retired one back to draining when some of its chunks fell below (serving
    /// replicas lost since): it must not be switched off then.
    func finishDrains(live: Set<DataKeeperID>) {
        let now = self.now()
        for id in draining.union(retired).sorted() where registry.isAlive(id, now: now) {
            let done = chunksBelowFactor(without: id, live: live) == 0
            if done, draining.remove(id) != nil {
                retired.insert(id)
                logger.info("datakeeper drained", metadata: ["datakeeper.id": "\(id)"])
                record(.drainFinished, "\(id) is drained: every chunk it holds is at its factor elsewhere; it may be switched off")
            } else if !done, retired.remove(id) != nil {
                draining.insert(id)
                record(.drainStarted, "\(id) holds chunks below their factor again; draining it again")
            }
        }
    }

    /// The cluster at a glance. Counts chunks only among those the replication manager keeps an
    /// eye on (`attention`, `missing`), never by walking the whole namespace.
    func clusterSummary() async throws -> ClusterSummary {
        let rows = try await nodes()
        let now = self.now()
        let everyLive = Set(registry.alive(now: now).map(\.id))
        let live = everyLive.subtracting(decommissioned)
        var under = 0, absent = 0
        for id in attention.union(missing) {
            guard let chunk = namespace.chunks[id] else { continue }
            if Self.liveCount(chunk, everyLive) == 0 { absent += 1 } else if Self.liveCount(chunk, live) < chunk.replication { under += 1 }
        }
        let serving = rows.nodes.filter(\.alive)
        return ClusterSummary(
            safeMode: inSafeMode, heartbeatTimeoutSeconds: configuration.heartbeatTimeoutSeconds, replication: configuration.replication,
            capacityBytes: serving.map(\.capacityBytes).saturatingSum(), usedBytes: serving.map(\.usedBytes).saturatingSum(),
            files: namespace.fileCount, chunks: namespace.chunks.count, underReplicatedChunks: under, missingChunks: absent,
            repairsInFlight: copiesInFlight.values.reduce(0) { $0 + $1.count }, datakeepers: rows.nodes)
    }
}
