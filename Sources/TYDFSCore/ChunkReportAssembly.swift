/// What the master knows of one datakeeper's full chunk report while its pages arrive.
///
/// A full report can hold millions of chunk ids, so it travels in pages, in order, each page a
/// separate request. The report is a snapshot the datakeeper took after an answer from the master
/// (its anchor): every replica the master records before that answer was sent must be in it, and
/// replicas recorded since may be missing from it without being lost (the report/commit race).
///
/// Pure: the master feeds it pages and carries out what it returns.
public struct ChunkReportAssembly: Sendable, Equatable {
    /// Why a page was refused; the datakeeper starts its report over when asked again.
    public enum Refusal: Error, Equatable, Sendable {
        /// No report was asked for, or the page belongs to a report older than the request.
        case notRequested
        /// A page other than the next one of the report in progress.
        case outOfOrder(expected: Int)
    }

    /// What the master must do after a page.
    public enum Outcome: Equatable, Sendable {
        /// Wait for the next page.
        case incomplete
        /// The report is whole: reconcile the replica map with `chunks`, keeping the replicas
        /// recorded since the report was asked for even if missing (`protected`).
        case complete(chunks: Set<ChunkID>, protected: Set<ChunkID>)
    }

    /// The answer (heartbeat answer id) that asked for the report; a snapshot taken before it is stale.
    public let requestedByAnswer: UInt64
    /// Replicas recorded on the datakeeper since the request: perhaps newer than its snapshot.
    public private(set) var recordedSinceRequest: Set<ChunkID> = []
    private var reportID: String?
    private var nextPage = 0
    private var chunks: Set<ChunkID> = []
    /// When the last page (or the request) arrived, for abandoning a report that stopped coming.
    public private(set) var lastActivitySeconds: Double

    public init(requestedByAnswer: UInt64, now: Double) {
        self.requestedByAnswer = requestedByAnswer
        self.lastActivitySeconds = now
    }

    /// True once a page of a report has arrived.
    public var isReceiving: Bool { reportID != nil }

    /// Notes a replica recorded on the datakeeper by a commit or a copy.
    public mutating func replicaRecorded(_ chunk: ChunkID) {
        recordedSinceRequest.insert(chunk)
    }

    /// Takes page `page` of report `reportID`, snapshotted after answer `anchor`.
    public mutating func receive(
        reportID: String, page: Int, anchor: UInt64, chunks pageChunks: [ChunkID], isLast: Bool, now: Double
    ) throws(Refusal) -> Outcome {
        if page == 0 {
            guard anchor >= requestedByAnswer else { throw .notRequested }
            self.reportID = reportID
            nextPage = 0
            chunks = []
        }
        guard self.reportID == reportID, page == nextPage else { throw .outOfOrder(expected: self.reportID == reportID ? nextPage : 0) }
        chunks.formUnion(pageChunks)
        nextPage += 1
        lastActivitySeconds = now
        return isLast ? .complete(chunks: chunks, protected: recordedSinceRequest) : .incomplete
    }
}
