/// One chunk as the replication manager sees it.
public struct ChunkReplicaState: Equatable, Sendable {
    public var id: ChunkID
    public var frameBytes: Int64
    public var crc32c: UInt32
    /// Replicas the metadata records, on live and dead datakeepers alike.
    public var replicas: [DataKeeperID]
    /// The replication factor of the chunk's file.
    public var replication: Int

    public init(id: ChunkID, frameBytes: Int64, crc32c: UInt32, replicas: [DataKeeperID], replication: Int) {
        self.id = id
        self.frameBytes = frameBytes
        self.crc32c = crc32c
        self.replicas = replicas
        self.replication = replication
    }
}

/// A copy the planner wants made: `destination` pulls the chunk from one of `sources`.
public struct CopyOrder: Equatable, Sendable {
    public var chunk: ChunkID
    public var frameBytes: Int64
    public var crc32c: UInt32
    /// Healthy replicas to pull from, best first.
    public var sources: [DataKeeperID]
    public var destination: DataKeeperID
}

/// An extra replica to remove from `datakeeper`.
public struct TrimOrder: Equatable, Sendable {
    public var chunk: ChunkID
    public var datakeeper: DataKeeperID
}

/// What one planning round decided.
public struct ReplicationPlan: Equatable, Sendable {
    public var copies: [CopyOrder] = []
    public var trims: [TrimOrder] = []
    /// Chunks with no live replica: nothing can be done until a holder returns.
    public var missing: [ChunkID] = []
    /// Chunks below their factor that could not be given a copy this round (no room, limits).
    public var deferred: [ChunkID] = []

    public init() {}
}

/// Decides, from the replica map and the live datakeepers, which chunks to copy where and
/// which extra replicas to remove. Pure: the master's replication manager carries out the plan.
///
/// Rules it keeps:
/// - only live replicas count; a chunk with none is reported missing, never "repaired";
/// - replicas on `leaving` datakeepers (draining or retired) do not count toward the factor
///   either; such datakeepers are never destinations, and are sources only when no other live
///   replica exists;
/// - chunks with the fewest live replicas go first;
/// - a destination is live, holds no replica of the chunk (live or dead), has room, and is
///   not already receiving it; sources are live replicas, least busy first;
/// - no datakeeper takes part in more than `maxCopiesPerDataKeeper` copies at once
///   (as source or destination), counting copies already in flight;
/// - a chunk is trimmed only when it has more live replicas than its factor and no copy of
///   it is in flight, and never below its factor — so the last healthy replica is never removed.
public enum ReplicationPlanner {
    public static func plan(
        chunks: [ChunkReplicaState], registry: NodeRegistry, now: Double,
        inFlight: [ChunkID: Set<DataKeeperID>], busyCopies: [DataKeeperID: Int], maxCopiesPerDataKeeper: Int,
        leaving: Set<DataKeeperID> = []
    ) -> ReplicationPlan {
        var plan = ReplicationPlan()
        let allLive = registry.alive(now: now)
        let live = allLive.filter { !leaving.contains($0.id) }
        let liveIDs = Set(live.map(\.id))
        let liveLeavingIDs = Set(allLive.map(\.id)).intersection(leaving)
        var copies = busyCopies
        var reservedBytes: [DataKeeperID: Int64] = [:]
        let ordered = chunks
            .map { chunk in (chunk, chunk.replicas.filter { liveIDs.contains($0) }) }
            .sorted { a, b in
                let aGap = a.1.count - a.0.replication, bGap = b.1.count - b.0.replication
                return aGap != bGap ? aGap < bGap : a.0.id < b.0.id
            }
        for (chunk, healthy) in ordered {
            let pending = inFlight[chunk.id] ?? []
            let lastResort = chunk.replicas.filter { liveLeavingIDs.contains($0) }
            if healthy.isEmpty && lastResort.isEmpty {
                plan.missing.append(chunk.id)
                continue
            }
            let wanted = chunk.replication - healthy.count - pending.count
            if wanted > 0 {
                let holders = Set(chunk.replicas).union(pending)
                var chosen: Set<DataKeeperID> = []
                for _ in 0..<wanted {
                    let sources = [healthy, lastResort].flatMap { replicas in
                        replicas
                            .compactMap { registry.nodes[$0] }
                            .filter { copies[$0.id, default: 0] < maxCopiesPerDataKeeper }
                            .sorted { lessBusy($0, $1, copies) }
                            .map(\.id)
                    }
                    let destination = live
                        .filter { node in
                            !holders.contains(node.id) && !chosen.contains(node.id) && copies[node.id, default: 0] < maxCopiesPerDataKeeper
                                && node.freeBytes - reservedBytes[node.id, default: 0] >= chunk.frameBytes
                        }
                        .min { lessBusy($0, $1, copies) }
                    guard let source = sources.first, let destination else {
                        plan.deferred.append(chunk.id)
                        break
                    }
                    plan.copies.append(CopyOrder(
                        chunk: chunk.id, frameBytes: chunk.frameBytes, crc32c: chunk.crc32c,
                        sources: sources, destination: destination.id))
                    chosen.insert(destination.id)
                    copies[destination.id, default: 0] += 1
                    copies[source, default: 0] += 1
                    reservedBytes[destination.id, default: 0] += chunk.frameBytes
                }
            } else if healthy.count > chunk.replication && pending.isEmpty {
                // Remove from the fullest datakeepers first.
                let extras = healthy
                    .compactMap { registry.nodes[$0] }
                    .sorted { a, b in a.usedBytes != b.usedBytes ? a.usedBytes > b.usedBytes : a.id > b.id }
                    .prefix(healthy.count - chunk.replication)
                for extra in extras { plan.trims.append(TrimOrder(chunk: chunk.id, datakeeper: extra.id)) }
            }
        }
        return plan
    }

    /// Less busy first (reported load plus copies planned or in flight), then more free space, then id.
    private static func lessBusy(_ a: DataKeeperState, _ b: DataKeeperState, _ copies: [DataKeeperID: Int]) -> Bool {
        let aLoad = a.load + copies[a.id, default: 0], bLoad = b.load + copies[b.id, default: 0]
        if aLoad != bLoad { return aLoad < bLoad }
        if a.freeBytes != b.freeBytes { return a.freeBytes > b.freeBytes }
        return a.id < b.id
    }
}
