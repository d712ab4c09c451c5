/// What one client has seen of each datakeeper's time to answer a read (the response head), so
/// that it reads from the quick replicas first and knows when a read has waited long enough to
/// ask another replica as well (a hedged read). A datakeeper behind a slow or lossy link, or a
/// busy one, then serves only what no quicker replica can.
///
/// Pure: the client records what it timed and asks for an order; nothing here reads a clock.
public struct ReplicaLatency: Sendable, Equatable {
    /// Smoothed seconds to answer, per datakeeper (an exponentially weighted moving average).
    private var smoothed: [DataKeeperID: Double] = [:]
    /// Weight of a new sample in the average: recent behaviour counts most, one outlier little.
    static let newSampleWeight = 0.3

    public init() {}

    /// `id` answered after `seconds`.
    public mutating func record(_ id: DataKeeperID, seconds: Double) {
        let sample = max(0, seconds)
        smoothed[id] = smoothed[id].map { $0 + Self.newSampleWeight * (sample - $0) } ?? sample
    }

    /// `id` had not answered after `seconds` when another replica's answer made it moot (a hedge
    /// it lost): it takes at least that long, whatever it took before.
    public mutating func recordAtLeast(_ id: DataKeeperID, seconds: Double) {
        if let known = smoothed[id], known >= seconds { return }
        smoothed[id] = seconds
    }

    /// Smoothed seconds `id` takes to answer, if it was ever timed.
    public func seconds(_ id: DataKeeperID) -> Double? { smoothed[id] }

    /// How long a read waits for its replica's answer before asking the next replica as well:
    /// `Limits.hedgeLatencyMultiple` times the quickest replica's usual time, within
    /// `Limits.hedgeMinimumSeconds`…`Limits.hedgeMaximumSeconds`; `Limits.hedgeInitialSeconds`
    /// before any replica was timed.
    public var hedgeDelaySeconds: Double {
        guard let quickest = smoothed.values.min() else { return Limits.hedgeInitialSeconds }
        return min(max(quickest * Limits.hedgeLatencyMultiple, Limits.hedgeMinimumSeconds), Limits.hedgeMaximumSeconds)
    }

    /// Whether `id` usually answers later than a read would wait before hedging.
    public func isSlow(_ id: DataKeeperID) -> Bool {
        guard let mine = smoothed[id] else { return false }
        return mine > hedgeDelaySeconds
    }

    /// `replicas` with the slow ones moved to the end, each part in its given order (the caller's
    /// order spreads ranges over replicas; this only keeps the slow ones from being asked first).
    public func ranked<Replica>(_ replicas: [Replica], id: (Replica) -> DataKeeperID) -> [Replica] {
        replicas.filter { !isSlow(id($0)) } + replicas.filter { isSlow(id($0)) }
    }
}
