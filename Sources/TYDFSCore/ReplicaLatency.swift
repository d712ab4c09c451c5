/// What one client has seen of each datakeeper's time to answer a read (the response head), so
/// that it reads from the quick replicas first and knows when a read has waited long enough to
/// ask another replica as well (a hedged read). A datakeeper behind a slow or lossy link, or a
/// busy one, then serves only what no quicker replica can.
///
/// What it knows of a datakeeper is forgotten `Limits.replicaLatencyMemorySeconds` after the
/// last sample, so a replica once slow is tried first again later (and timed anew), and one
/// that left stops setting the pace.
///
/// Pure: the caller passes the time (monotonic seconds) in.
public struct ReplicaLatency: Sendable, Equatable {
    private struct Timing: Sendable, Equatable {
        /// Smoothed seconds to answer (an exponentially weighted moving average).
        var seconds: Double
        /// When the last sample came.
        var sampledAt: Double
    }

    private var timings: [DataKeeperID: Timing] = [:]
    /// Weight of a new sample in the average: recent behaviour counts most, one outlier little.
    static let newSampleWeight = 0.3

    public init() {}

    /// `id` answered after `seconds`, at `now`.
    public mutating func record(_ id: DataKeeperID, seconds: Double, now: Double) {
        let sample = max(0, seconds)
        let smoothed = self.seconds(id, now: now).map { $0 + Self.newSampleWeight * (sample - $0) } ?? sample
        timings[id] = Timing(seconds: smoothed, sampledAt: now)
    }

    /// `id` had not answered after `seconds` when another replica's answer made it moot (a hedge
    /// it lost): it takes at least that long, whatever it took before.
    public mutating func recordAtLeast(_ id: DataKeeperID, seconds: Double, now: Double) {
        if let known = self.seconds(id, now: now), known >= seconds { return }
        timings[id] = Timing(seconds: seconds, sampledAt: now)
    }

    /// Smoothed seconds `id` takes to answer, if it was timed within the memory.
    public func seconds(_ id: DataKeeperID, now: Double) -> Double? {
        guard let timing = timings[id], now - timing.sampledAt <= Limits.replicaLatencyMemorySeconds else { return nil }
        return timing.seconds
    }

    /// How long a read waits for its replica's answer before asking the next replica as well:
    /// `Limits.hedgeLatencyMultiple` times the quickest replica's usual time, within
    /// `Limits.hedgeMinimumSeconds`…`Limits.hedgeMaximumSeconds`; `Limits.hedgeInitialSeconds`
    /// while no replica has been timed recently.
    public func hedgeDelaySeconds(now: Double) -> Double {
        guard let quickest = timings.keys.compactMap({ seconds($0, now: now) }).min() else { return Limits.hedgeInitialSeconds }
        return min(max(quickest * Limits.hedgeLatencyMultiple, Limits.hedgeMinimumSeconds), Limits.hedgeMaximumSeconds)
    }

    /// Whether `id` usually answers later than a read would wait before hedging.
    public func isSlow(_ id: DataKeeperID, now: Double) -> Bool {
        isSlow(id, now: now, hedgeDelaySeconds: hedgeDelaySeconds(now: now))
    }

    private func isSlow(_ id: DataKeeperID, now: Double, hedgeDelaySeconds: Double) -> Bool {
        guard let mine = seconds(id, now: now) else { return false }
        return mine > hedgeDelaySeconds
    }

    /// `replicas` with the slow ones moved to the end, each part in its given order (the caller's
    /// order spreads ranges over replicas; this only keeps the slow ones from being asked first).
    /// Every small-file read ranks its replicas: the hedge delay is worked out once per call.
    public func ranked<Replica>(_ replicas: [Replica], id: (Replica) -> DataKeeperID, now: Double) -> [Replica] {
        guard !timings.isEmpty else { return replicas }
        let delay = hedgeDelaySeconds(now: now)
        var quick: [Replica] = [], slow: [Replica] = []
        for replica in replicas {
            if isSlow(id(replica), now: now, hedgeDelaySeconds: delay) { slow.append(replica) } else { quick.append(replica) }
        }
        return slow.isEmpty ? replicas : quick + slow
    }
}
