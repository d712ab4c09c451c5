import Metrics
import NIOConcurrencyHelpers
import TYDFSCore

/// What a datakeeper counts as it works: transfers in progress and chunks served (for the
/// heartbeat), and the Prometheus metrics (bytes in and out, corrupt chunks, scrub progress),
/// each labelled with the datakeeper's id so several in one process stay apart.
final class TransferCounters: Sendable {
    private struct Values {
        var inFlight = 0
        var chunksServed: Int64 = 0
    }
    private let values = NIOLockedValueBox(Values())
    let dimensions: [(String, String)]
    private let bytesReceived: Counter
    private let bytesSent: Counter
    private let chunksReceived: Counter
    private let chunksSent: Counter
    private let corruptChunks: Counter
    private let scrubbedBytes: Counter
    private let scrubPasses: Counter
    private let scrubProgress: Gauge

    init(datakeeper: DataKeeperID) {
        let dimensions = [("datakeeper", datakeeper.value)]
        self.dimensions = dimensions
        bytesReceived = Counter(label: "tydfs_datakeeper_bytes_received_total", dimensions: dimensions)
        bytesSent = Counter(label: "tydfs_datakeeper_bytes_sent_total", dimensions: dimensions)
        chunksReceived = Counter(label: "tydfs_datakeeper_chunks_received_total", dimensions: dimensions)
        chunksSent = Counter(label: "tydfs_datakeeper_chunks_sent_total", dimensions: dimensions)
        corruptChunks = Counter(label: "tydfs_datakeeper_corrupt_chunks_total", dimensions: dimensions)
        scrubbedBytes = Counter(label: "tydfs_datakeeper_scrubbed_bytes_total", dimensions: dimensions)
        scrubPasses = Counter(label: "tydfs_datakeeper_scrub_passes_total", dimensions: dimensions)
        scrubProgress = Gauge(label: "tydfs_datakeeper_scrub_progress_ratio", dimensions: dimensions)
    }

    func begin() { values.withLockedValue { $0.inFlight += 1 } }
    func end() { values.withLockedValue { $0.inFlight -= 1 } }
    var inFlight: Int { values.withLockedValue { $0.inFlight } }
    var chunksServed: Int64 { values.withLockedValue { $0.chunksServed } }

    /// A chunk (or a range of one) of `dataBytes` went out whole.
    func served(dataBytes: Int64) {
        values.withLockedValue { $0.chunksServed += 1 }
        chunksSent.increment()
        bytesSent.increment(by: dataBytes)
    }

    /// A chunk of `dataBytes` was stored (from a client, a pipeline or a copy).
    func received(dataBytes: Int64) {
        chunksReceived.increment()
        bytesReceived.increment(by: dataBytes)
    }

    func corrupt() { corruptChunks.increment() }

    /// The scrubber re-read `bytes`; `done` of `total` chunks of this pass are checked.
    func scrubbed(bytes: Int64, done: Int, total: Int) {
        scrubbedBytes.increment(by: bytes)
        scrubProgress.record(total == 0 ? 1 : Double(done) / Double(total))
    }

    func scrubPassFinished() {
        scrubPasses.increment()
        scrubProgress.record(1)
    }

    /// Sets the gauges read at scrape time.
    func publish(usage: ChunkStore.Usage, freeDiskBytes: Int64?, pendingDeletions: Int) {
        Gauge(label: "tydfs_datakeeper_capacity_bytes", dimensions: dimensions).record(usage.capacityBytes)
        Gauge(label: "tydfs_datakeeper_used_bytes", dimensions: dimensions).record(usage.usedBytes)
        Gauge(label: "tydfs_datakeeper_chunks", dimensions: dimensions).record(usage.chunkCount)
        Gauge(label: "tydfs_datakeeper_in_flight_transfers", dimensions: dimensions).record(inFlight)
        Gauge(label: "tydfs_datakeeper_pending_deletions", dimensions: dimensions).record(pendingDeletions)
        if let freeDiskBytes { Gauge(label: "tydfs_datakeeper_disk_free_bytes", dimensions: dimensions).record(freeDiskBytes) }
    }
}
