/// Every bound in the system, in one place, each with the reason it has the value it has.
public enum Limits {
    /// Longest path accepted, in UTF-8 bytes: HDFS's limit. Linux's PATH_MAX (4096) bounds
    /// only the path one call names, which may be relative: a tree as deep as that below a
    /// mounted folder is longer than PATH_MAX from the mount's root, as on a local disk.
    public static let maxPathBytes = 8000
    /// Seconds a signed request's date may be off the server's clock (S3 allows 15 minutes):
    /// what bounds the replay of a captured request.
    public static let signatureSkewSeconds: Int64 = 900
    /// Seconds a chunk token stays valid after the master signs it: long enough for a slow get
    /// of a large file, much shorter than HDFS's 10-hour block tokens.
    public static let chunkTokenSeconds: Int64 = 3600
    /// Connections one remote address may hold open to a server at once; more are closed on
    /// arrival. Above what the busiest legitimate peer needs (a client running 16 operations
    /// with 6 ranges each, a datakeeper forwarding 64 transfers).
    public static let maxConnectionsPerPeer = 256
    /// Smallest chunk size a master accepts: below this, per-chunk overhead dominates.
    public static let minChunkSizeBytes: Int64 = 4096
    /// Largest chunk size: keeps a single re-replication or retry bounded in time.
    public static let maxChunkSizeBytes: Int64 = 4 * 1024 * 1024 * 1024
    /// Largest replication factor: beyond this, a write costs more than it protects.
    public static let maxReplication = 16
    /// Most chunks one file may have (8 TiB at the default 64 MiB chunks, 512 GiB at 4 MiB): the
    /// answers that name every chunk of a file, with its replicas' addresses (~270 B a chunk at
    /// replication 3) or a read token (~290 B), stay inside `maxControlMessageBytes`. A client
    /// refuses a larger local file before it sends a byte (a sparse file can claim any size),
    /// a stream once it passes the limit; a master refuses such a commit.
    public static let maxChunksPerFile: Int64 = 131_072
    /// Largest JSON control message a server reads into memory. Control messages are small;
    /// a commit of a 1 TiB file at 4 MiB chunks (262,144 chunks × ~150 B) still fits.
    public static let maxControlMessageBytes = 64 * 1024 * 1024
    /// Entries a client asks for in each page of a listing: about 1 MB in the compact form for
    /// typical names, a round trip per 10,000 entries.
    public static let listPageEntries = 10_000
    /// Most entries a master answers in one page of a listing (`Query.listLimit`), whatever is
    /// asked, as HDFS caps `dfs.ls.limit`.
    public static let maxListPageEntries = 100_000
    /// About the most bytes of paths and attributes a master puts in one page of a listing,
    /// however long they are (a path may take 8,000 bytes, a file's attributes 8 KiB): a page
    /// stays far below `maxControlMessageBytes` in either form.
    public static let maxListPageBytes = 8 * 1024 * 1024
    /// Most stats one lookup request carries (`LookupRequest`); a client sends more as several.
    public static let maxLookupsPerRequest = 256
    /// Most chunks a lookup's answers describe together (about 25 MB of JSON with tokens, well
    /// inside `maxControlMessageBytes`); files past it are answered `ask_alone`, and the first
    /// file is always answered, as a stat of it alone would be.
    public static let maxChunksPerLookup = 100_000
    /// Lookup requests a client keeps in flight at once; stats asked meanwhile wait and go
    /// together in the next one.
    public static let lookupsInFlight = 2
    /// Largest chunk a client sends in a chunk batch (`Route.chunkBatch`) rather than alone.
    public static let batchedChunkMaxBytes: Int64 = 64 * 1024
    /// Most chunks one chunk batch carries: its body is then at most 2 MiB, and its header
    /// (a write token per chunk) about 8 KB.
    public static let maxChunksPerBatch = 32
    /// Seconds a chunk batch of `frameBytes` through `hops` datakeepers may take in all: a
    /// chunk's stall allowance (`writeStallSeconds(hops:)`, less for each hop further down),
    /// its fsync allowance, and the body's transfer at the slowest rate allowed at every hop
    /// (each hop receives the whole batch before it forwards it).
    public static func chunkBatchSeconds(frameBytes: Int64, hops: Int) -> Double {
        writeStallSeconds(hops: hops) + syncAllowanceSeconds(frameBytes: frameBytes)
            + Double(frameBytes) * Double(max(1, hops)) / Double(minimumTransferBytesPerSecond)
    }
    /// Seconds a client remembers that a server lacks a route added since (a datakeeper's chunk
    /// batches, a master's batched opens and commits) before it tries the route again: a
    /// rolling upgrade then reaches the new route without a restart.
    public static let routeCheckSeconds: Int64 = 600
    /// Chunk batches a client keeps in flight per pipeline; small chunks for that pipeline
    /// written meanwhile wait and go together in the next one.
    public static let chunkBatchesInFlight = 1
    /// Most puts one batched open or commit carries (`OpenUploadsRequest`, `CommitUploadsRequest`).
    public static let maxUploadsPerBatch = 64
    /// Batched opens (and, apart, batched commits) a client keeps in flight at once; puts that
    /// open or commit meanwhile wait and go together in the next one.
    public static let uploadBatchesInFlight = 1
    /// The most a file's attributes (names and values together) may hold: room for S3's 2 KB
    /// of user metadata, a content type and an ETag, and no more, since the master keeps them in memory.
    public static let maxFileAttributeBytes = 8 * 1024
    /// The modification times a master accepts (milliseconds since 1970): the years 1 to 9999,
    /// which S3's XML dates and HTTP's `Last-Modified` spell with four digits.
    /// `touch -d` can ask for times far beyond, which would overflow the arithmetic on them.
    public static let modificationMillis: ClosedRange<Int64> = -62_135_596_800_000...253_402_300_799_999
    /// Size of the buffers the data path reads and writes: large enough to amortise syscalls and
    /// thread hops, small enough that 32 concurrent transfers stay far below 256 MiB.
    public static let ioBufferBytes = 1024 * 1024
    /// Chunks a client uploads at once per file: two, so one chunk's final fsync on the
    /// datakeepers overlaps the next chunk's bytes, and memory stays at ~2 I/O buffers each.
    public static let parallelChunkUploads = 2
    /// Seconds a client or server keeps trying to connect to a peer before it gives up
    /// (datakeepers retry refused connections until then; the client library fails on the first
    /// refusal). Peers are on one LAN: a connection that takes longer than this is a peer to
    /// route around, not to wait for.
    public static let connectTimeoutSeconds: Int64 = 2
    /// How long a TLS connection being closed waits for the peer's close_notify.
    public static let tlsCloseWaitMillis = 500
    /// Seconds a data transfer may go without progress (no byte received by a server, no byte
    /// sent by a client) before it is abandoned.
    public static let idleTransferTimeoutSeconds: Int64 = 60
    /// Slowest transfer rate a chunk transfer's deadline allows for.
    public static let minimumTransferBytesPerSecond: Int64 = 2 * 1024 * 1024

    /// Seconds allowed for a whole chunk transfer through `hops` datakeepers (3 for a client
    /// writing to a 3-replica pipeline, 1 for a read or the last hop). Each hop further down gets
    /// 15 s less, so when the tail of a pipeline stalls, the hop just above it gives up first and
    /// reports the failure upstream in time, instead of every hop timing out at once.
    public static func transferDeadlineSeconds(frameBytes: Int64, hops: Int) -> Int64 {
        30 + frameBytes / minimumTransferBytesPerSecond + 15 * Int64(max(1, hops))
    }
    /// Seconds a chunk read from one datakeeper may make no progress (no byte, no answer) before
    /// the reader abandons it for another replica. The read timeout above is for dead peers;
    /// this is for hung ones (an open socket and no answer: a stopped process, a wedged disk),
    /// so a hung datakeeper costs a read seconds. A false alarm only costs a re-read elsewhere.
    public static let readStallSeconds: Double = 4
    /// Seconds between the master's own readings of its liveness clock (`LivenessClock`), made
    /// even when nothing else happens…
    public static let masterClockTickSeconds: Double = 0.25
    /// …and the longest gap between two readings that still counts as the master running: a
    /// longer one is the master's own pause, not its datakeepers' silence.
    public static let masterLongestClockGapSeconds: Double = 1
    /// Hedged reads (as HDFS's `dfs.client.hedged.read.threshold.millis`): a range whose replica
    /// has not answered within this many times the quickest replica's usual time to answer is
    /// asked of the next replica as well, and the first to answer serves it.
    public static let hedgeLatencyMultiple: Double = 4
    /// Bounds of that wait: never sooner than this (a busy datakeeper's ordinary jitter is not
    /// worth a second request)…
    public static let hedgeMinimumSeconds: Double = 0.05
    /// …never later than this…
    public static let hedgeMaximumSeconds: Double = 1
    /// …and this long before the client has timed any replica.
    public static let hedgeInitialSeconds: Double = 0.1
    /// Seconds a client remembers how quickly a datakeeper answered: after that a replica once
    /// found slow is asked first again (and timed anew), and one that left no longer sets the pace.
    public static let replicaLatencyMemorySeconds: Double = 30
    /// The same for a chunk write into a pipeline, counted at its last hop. Longer than for
    /// reads: a busy datakeeper's writes can block for seconds on the kernel's dirty-page
    /// throttling (measured with 32 transfers at once), and a false alarm re-sends a whole chunk.
    public static let writeStallSeconds: Double = 8
    /// Extra patience per datakeeper further down a write pipeline: when the tail of a pipeline
    /// stalls, the hop just above it gives up first and reports which hop failed, instead of
    /// every hop above giving up at once and blaming its own next hop.
    public static let writeStallSecondsPerDownstreamHop: Double = 4
    /// Slowest disk rate allowed for the fsync that ends a chunk write, after its last byte was
    /// sent: a large chunk is given time to reach a busy disk before its silence counts as a stall.
    public static let minimumSyncBytesPerSecond: Int64 = 4 * 1024 * 1024

    /// Seconds without progress after which a chunk write into a pipeline of `hops` datakeepers
    /// is abandoned.
    public static func writeStallSeconds(hops: Int) -> Double {
        writeStallSeconds + writeStallSecondsPerDownstreamHop * Double(max(0, hops - 1))
    }
    /// Extra seconds a writer waits for the answer once it sent a whole frame of `frameBytes`,
    /// for the datakeepers to make it durable.
    public static func syncAllowanceSeconds(frameBytes: Int64) -> Double {
        Double(frameBytes) / Double(minimumSyncBytesPerSecond)
    }
    /// Files one client process transfers at once (`put -r`, `get -r`, `bench --concurrency`).
    /// Each transfer holds up to ~2 I/O buffers, so 64 stay under 128 MiB; beyond a few dozen
    /// the master and the disks, not the client, set the pace.
    public static let maxConcurrentFileTransfers = 64
    /// Largest file the client reads into or puts from memory (`TYDFSClient.read`,
    /// `put(bytes:)`, the benchmark's files): those are for small files; a larger one belongs in
    /// a local file, which is streamed through 1 MiB buffers.
    public static let maxInMemoryFileBytes: Int64 = 64 * 1024 * 1024
    /// Most of a chunk a streaming read (`TYDFSClient.read(_:range:asReceived:)`: S3 GETs and
    /// copies, the master's downloads) holds at once: a chunk of the default size is read whole,
    /// a larger one (up to `maxChunkSizeBytes`, more than one `ByteBuffer` can hold) in pieces of
    /// this size. A multiple of `checksumBlockBytes`.
    public static let readPieceBytes: Int64 = 64 * 1024 * 1024
    /// Seconds a control request (JSON) may take in all.
    public static let controlRequestTimeoutSeconds: Int64 = 30
    /// Seconds a client given several masters waits for one to answer a control request before
    /// it tries the next (a commit of many chunks gets more), and a datakeeper waits for the
    /// answer to a heartbeat (the next beat goes to the next master): a paused leader costs
    /// seconds, not a long timeout.
    public static let masterAnswerSeconds: Int64 = 5
    /// Seconds a client or datakeeper given several masters keeps looking for the leader (the
    /// leader died, none leads yet) before a request fails: several lease periods.
    public static let masterFailoverSeconds: Double = 30
    /// How often a client renews the upload of a put that is waiting for its source (standard
    /// input, a file written through the mount), as HDFS clients renew their write leases: far
    /// below a master's upload timeout and orphan grace (1 h by default), so an idle put's upload
    /// stays open, and after a failover it is reopened, and its chunks adopted, long before the
    /// new leader could take them for orphans.
    public static let uploadRenewSeconds: Double = 300
    /// Longest duration a flag accepts: far beyond any sensible interval, far below overflow.
    public static let maxDurationSeconds: Double = 30 * 24 * 3600
    /// Largest capacity or usage a heartbeat may report (1 EiB): keeps free-space sums exact.
    public static let maxReportedBytes: Int64 = 1 << 60
    /// The most transfers a heartbeat may say a datakeeper has in flight: far above any real
    /// load, low enough that adding the master's own count to it cannot overflow.
    public static let maxReportedInFlight = 1 << 31
    /// Chunk deletions handed to one datakeeper per heartbeat answer: enough to drain a large
    /// `rm` in seconds, small enough that one answer stays a few tens of KiB.
    public static let deletionsPerHeartbeat = 1000
    /// Seconds a server's sent data may stay unacknowledged (a peer that stopped reading, a
    /// vanished host) before the kernel drops the connection (`TCP_USER_TIMEOUT`).
    public static let unacknowledgedSendSeconds = 20
    /// Dashboard downloads (`/v1/content`) the master serves at once; each holds one chunk in memory.
    public static let masterDownloadsAtOnce = 4
    /// Cluster events the master keeps for the dashboard's feed.
    public static let clusterEventsKept = 500
    /// Chunk ids in one page of a full chunk report (16 bytes each: 1 MiB a page). A datakeeper
    /// holding millions of chunks reports them in tens of requests, none of them large.
    public static let chunksPerReportPage = 65536
    /// Seconds after which a full report that stopped arriving is abandoned and asked for again.
    public static let abandonedReportSeconds: Double = 60
    /// Bytes the scrubber counts against its rate for a chunk smaller than this: checking a chunk
    /// costs a lookup and a read whatever its size, so millions of tiny chunks are paced too
    /// (3,000,000 tiny chunks at 64 MiB/s: a pass in under an hour) instead of taking a core.
    public static let scrubMinimumChargeBytes: Int64 = 64 * 1024
    /// Seconds between two looks for orphan chunks on one datakeeper: a look walks every
    /// unreferenced chunk it reported, so it must not run on every heartbeat.
    public static let orphanScanIntervalSeconds: Double = 30
    /// Bytes of chunk data each CRC32C of a frame covers (see `ChunkFrame`), and so the
    /// granularity of range reads. 64 KiB: a 64 MiB chunk carries 4 KiB of checksums, a range
    /// re-read after a bad block costs little, and the per-block work is nothing beside the bytes.
    public static let checksumBlockBytes: Int64 = 64 * 1024
    /// Smallest range a reader fetches from one replica: a chunk smaller than two of these is
    /// read whole from one datakeeper, since more requests would cost more than they overlap.
    public static let minimumRangeBytes: Int64 = 8 * 1024 * 1024
    /// Ranges a client fetches at once for one file (across its chunks and replicas): measured
    /// best for 6 parallel range requests on this kind of machine (shared/notes/data-path-facts.md).
    public static let parallelRangeDownloads = 6
    /// I/O buffers a datakeeper's chunk reads may hold at once, across every range it serves and
    /// its scrubs, until NIO has sent them (48 MiB; `RecycledIOBuffers`). Measured with 32
    /// transfers at once (16 gets, 16 puts): without a bound, one datakeeper's serving buffers
    /// reached 120 MiB, of the 256 MiB it may use in all.
    public static let servingIOBuffers = 48
    /// How far ahead of the piece it sends a datakeeper asks the disk for the range it serves
    /// (2 MiB; never past the range: `RangeReader`).
    public static let servingReadAheadBytes = 2 * 1024 * 1024
    /// A mount's read window: what it fetches of a file at a time, ahead of the reader (8 MiB).
    public static let readWindowBytes = 8 * 1024 * 1024
    /// Freed memory each heap of a server or a client command keeps at its top for reuse
    /// rather than giving it back (16 MiB; `MemoryPolicy.keepFreedMemory`).
    public static let keptFreedHeapBytes = 16 * 1024 * 1024
    /// Heaps the allocator of a server or a client command makes (2, one per core here;
    /// `MemoryPolicy.limitHeaps`).
    public static let allocatorHeaps = 2
    /// Allocations a client command maps on their own rather than taking from its heaps (32 MiB
    /// and more; `MemoryPolicy.mapAllocations`): the most glibc's own sliding threshold may
    /// reach, fixed from the start, since keeping freed memory stops it sliding. Buffers of 1–32
    /// MiB (a put's reads, a small file read into memory) then come from the heaps.
    public static let clientMappedAllocationBytes = 32 * 1024 * 1024

    /// Largest frame stored in a volume rather than in a file of its own: 1 MiB. Below it, the
    /// file-per-chunk costs (two fsyncs, a rename, an inode) dominate the data's own write, and
    /// the whole body may be held in memory while it is verified; above it, a file of its own
    /// costs little extra and keeps streaming writes out of memory.
    public static let volumeChunkMaxBytes: Int64 = 1024 * 1024
    /// Size at which a volume stops taking records and a new one is started: 1 GiB. Record
    /// offsets then fit in 32 bits (a volume ends at most one record past this), which keeps an
    /// index entry at 12 bytes; and a volume is still small enough to scan or compact in seconds.
    public static let volumeMaxBytes: Int64 = 1024 * 1024 * 1024
    /// Bytes read at once when a volume is scanned at start-up: many small records per read,
    /// while most of a record larger than this is skipped rather than read.
    public static let volumeScanBlockBytes = 256 * 1024
    /// Chunk arrivals and departures a datakeeper remembers for its next incremental report.
    /// Heartbeats drain the log every second; 200,000 is over a minute of the fastest small
    /// writes this machine sustains. Past it the log is dropped and a full report is due, which
    /// is then cheaper than the log (≈ 8 MiB at this bound).
    public static let chunkChangeLogMaxEntries = 200_000
    /// Deletion orders a datakeeper holds at once. The master sends at most 1,000 per heartbeat
    /// and sends again what is not confirmed, so ten beats' worth lets deletions keep up without
    /// letting a backlog grow without bound; orders past it are dropped and come again.
    public static let deletionQueueMaxChunks = 10_000
    /// Deletions run at once: enough that their tombstones share an `fdatasync` (group commit),
    /// few enough not to crowd out client writes.
    public static let concurrentDeletions = 16
}
