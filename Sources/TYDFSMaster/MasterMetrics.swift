import Metrics
import TYDFSProtocol

/// The master's Prometheus metrics: counters bumped as things happen, gauges set from the
/// cluster summary at each scrape (so they cost nothing between scrapes).
struct MasterMetrics: Sendable {
    private let filesCommitted = Counter(label: "tydfs_master_files_committed_total")
    private let bytesCommitted = Counter(label: "tydfs_master_bytes_committed_total")
    private let repairCopies = Counter(label: "tydfs_master_repair_copies_ordered_total")
    private let badReplicas = Counter(label: "tydfs_master_bad_replicas_total")

    func committed(bytes: Int64) {
        filesCommitted.increment()
        bytesCommitted.increment(by: bytes)
    }

    func repairsOrdered(_ count: Int) { repairCopies.increment(by: count) }
    func badReplica() { badReplicas.increment() }

    /// Sets the gauges from `summary`.
    static func publish(_ summary: ClusterSummary) {
        for status in DataKeeperStatus.allCases {
            Gauge(label: "tydfs_master_datakeepers", dimensions: [("state", status.rawValue)])
                .record(summary.datakeepers.filter { $0.state == status }.count)
        }
        Gauge(label: "tydfs_master_files").record(summary.files)
        Gauge(label: "tydfs_master_chunks").record(summary.chunks)
        Gauge(label: "tydfs_master_under_replicated_chunks").record(summary.underReplicatedChunks)
        Gauge(label: "tydfs_master_missing_chunks").record(summary.missingChunks)
        Gauge(label: "tydfs_master_repair_queue").record(summary.repairsInFlight)
        Gauge(label: "tydfs_master_safe_mode").record(summary.safeMode ? 1 : 0)
        Gauge(label: "tydfs_master_capacity_bytes").record(summary.capacityBytes)
        Gauge(label: "tydfs_master_used_bytes").record(summary.usedBytes)
    }
}
