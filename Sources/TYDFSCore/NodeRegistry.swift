/// What the master knows of one datakeeper, from its last heartbeat.
public struct DataKeeperState: Equatable, Sendable {
    public var id: DataKeeperID
    /// `host:port` where its data service listens.
    public var address: String
    public var capacityBytes: Int64
    public var usedBytes: Int64
    public var chunkCount: Int
    /// Transfers the datakeeper itself reports in progress (uploads, downloads, copies).
    public var reportedInFlight: Int
    /// Transfers the master handed out since the last heartbeat and has not yet seen reported.
    public var assignedSinceHeartbeat: Int
    public var chunksServed: Int64
    public var lastHeartbeatSeconds: Double
    /// It said it is shutting down: dead until its next heartbeat, whatever the timeout.
    public var hasLeft = false

    public init(id: DataKeeperID, address: String, capacityBytes: Int64, usedBytes: Int64, chunkCount: Int,
                reportedInFlight: Int, chunksServed: Int64, lastHeartbeatSeconds: Double) {
        self.id = id
        self.address = address
        self.capacityBytes = capacityBytes
        self.usedBytes = usedBytes
        self.chunkCount = chunkCount
        self.reportedInFlight = reportedInFlight
        self.assignedSinceHeartbeat = 0
        self.chunksServed = chunksServed
        self.lastHeartbeatSeconds = lastHeartbeatSeconds
    }

    /// How busy the datakeeper is for placement purposes.
    public var load: Int { reportedInFlight + assignedSinceHeartbeat }
    public var freeBytes: Int64 { max(0, capacityBytes - usedBytes) }
}

/// The master's table of datakeepers: who is alive, how busy, how full. Pure: time is passed in.
///
/// A datakeeper is alive while its last heartbeat is younger than `heartbeatTimeoutSeconds`.
/// Dead ones stay listed (so `tydfs nodes` can show them) but never receive new work.
public struct NodeRegistry: Sendable {
    public private(set) var nodes: [DataKeeperID: DataKeeperState] = [:]
    public let heartbeatTimeoutSeconds: Double

    public init(heartbeatTimeoutSeconds: Double) {
        self.heartbeatTimeoutSeconds = heartbeatTimeoutSeconds
    }

    /// Records a heartbeat. Returns true when the datakeeper was unknown or dead before it.
    @discardableResult
    public mutating func heartbeat(_ state: DataKeeperState, now: Double) -> Bool {
        let wasAlive = nodes[state.id].map { isAlive($0, now: now) } ?? false
        var updated = state
        updated.lastHeartbeatSeconds = now
        updated.assignedSinceHeartbeat = 0
        nodes[state.id] = updated
        return !wasAlive
    }

    /// Counts `id` as dead from now on, until its next heartbeat: it said it is leaving.
    public mutating func markLeft(_ id: DataKeeperID) {
        nodes[id]?.hasLeft = true
    }

    public func isAlive(_ node: DataKeeperState, now: Double) -> Bool {
        !node.hasLeft && now - node.lastHeartbeatSeconds < heartbeatTimeoutSeconds
    }

    public func isAlive(_ id: DataKeeperID, now: Double) -> Bool {
        nodes[id].map { isAlive($0, now: now) } ?? false
    }

    public func alive(now: Double) -> [DataKeeperState] {
        nodes.values.filter { isAlive($0, now: now) }
    }

    /// The same table without `ids`: what may be relied on while those datakeepers' holdings are
    /// unconfirmed.
    public func excluding(_ ids: Set<DataKeeperID>) -> NodeRegistry {
        var copy = self
        for id in ids { copy.nodes[id] = nil }
        return copy
    }

    /// Counts a transfer the master just handed to `id`, so the next choice sees it as busier.
    public mutating func assign(_ id: DataKeeperID) {
        nodes[id]?.assignedSinceHeartbeat += 1
    }

    /// Chooses up to `count` distinct live datakeepers for a new chunk of `chunkBytes` bytes:
    /// least busy first, then the one with most free space, then by id (so choices are stable).
    /// Datakeepers in `excluding` or without room for the chunk are skipped.
    public func chooseTargets(count: Int, chunkBytes: Int64, excluding: Set<DataKeeperID>, now: Double) -> [DataKeeperState] {
        let candidates = alive(now: now).filter { !excluding.contains($0.id) && $0.freeBytes >= chunkBytes }
        return Array(candidates.sorted(by: Self.lessBusy).prefix(count))
    }

    /// Orders the replicas of one chunk for reading: live ones only, least busy first; among
    /// equally busy ones the order is rotated by `spread` (e.g. the chunk index), so that the
    /// chunks of one file are read from different datakeepers in parallel.
    public func readOrder(of replicas: [DataKeeperID], spread: Int, now: Double) -> [DataKeeperState] {
        let live = replicas.compactMap { nodes[$0] }.filter { isAlive($0, now: now) }.sorted { $0.id < $1.id }
        guard !live.isEmpty else { return [] }
        let shift = spread % live.count
        let rotated = Array(live[shift...] + live[..<shift])
        // Stable sort by load keeps the rotation among equals.
        return rotated.enumerated().sorted { a, b in
            a.element.load != b.element.load ? a.element.load < b.element.load : a.offset < b.offset
        }.map(\.element)
    }

    static func lessBusy(_ a: DataKeeperState, _ b: DataKeeperState) -> Bool {
        if a.load != b.load { return a.load < b.load }
        if a.freeBytes != b.freeBytes { return a.freeBytes > b.freeBytes }
        return a.id < b.id
    }
}
