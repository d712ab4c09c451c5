import NIOConcurrencyHelpers
import TYDFSCore

/// Joins the requests a client's callers make at the same time into one, as a group commit
/// joins commits: while `inFlightLimit` requests are out, new items wait, and the next request
/// carries all of them (up to `itemsLimit`). A lone item goes out at once, so nothing waits that
/// would not have waited anyway.
///
/// Small-file gets, `get -r`, the S3 gateway and the mount all stat before they read: with 16
/// at once, one HTTP exchange (`POST /v1/files/lookup`) serves several of them.
actor RequestCoalescer<Item: Sendable, Answer: Sendable> {
    /// Sends one request for `items` and returns an answer for each, in order.
    typealias Send = @Sendable (_ items: [Item]) async throws -> [Result<Answer, any Error>]

    private struct Waiting {
        let id: Int
        let item: Item
        let answer: CheckedContinuation<Answer, any Error>
    }

    private let inFlightLimit: Int
    private let itemsLimit: Int
    private var waiting: [Waiting] = []
    private var inFlight = 0
    private var nextID = 0
    /// The callers of the items that requests out carry, by item id.
    private var carried: [Int: CheckedContinuation<Answer, any Error>] = [:]

    init(inFlightLimit: Int, itemsLimit: Int) {
        precondition(inFlightLimit > 0 && itemsLimit > 0)
        self.inFlightLimit = inFlightLimit
        self.itemsLimit = itemsLimit
    }

    /// Items waiting for a request to carry them.
    var waitingCount: Int { waiting.count }

    /// The answer for `item`, sent with `send` in the next request. A caller cancelled meanwhile
    /// gets `CancellationError` at once: its item leaves the queue, or, if a request already
    /// carries it, its answer is dropped when it comes.
    func ask(_ item: Item, send: @escaping Send) async throws -> Answer {
        let id = nextID
        nextID += 1
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { answer in
                if Task.isCancelled { return answer.resume(throwing: CancellationError()) }
                waiting.append(Waiting(id: id, item: item, answer: answer))
                sendWhileFree(send)
            }
        } onCancel: {
            Task { await self.cancel(id) }
        }
    }

    private func cancel(_ id: Int) {
        if let index = waiting.firstIndex(where: { $0.id == id }) {
            waiting.remove(at: index).answer.resume(throwing: CancellationError())
        } else if let sent = carried.removeValue(forKey: id) {
            sent.resume(throwing: CancellationError())
        }
    }

    private func sendWhileFree(_ send: @escaping Send) {
        while inFlight < inFlightLimit, !waiting.isEmpty {
            let batch = Array(waiting.prefix(itemsLimit))
            waiting.removeFirst(batch.count)
            for sent in batch { carried[sent.id] = sent.answer }
            inFlight += 1
            Task { await self.carry(batch, send) }
        }
    }

    private func carry(_ batch: [Waiting], _ send: @escaping Send) async {
        do {
            let answers = try await send(batch.map(\.item))
            guard answers.count == batch.count else {
                throw TYDFSError(.protocolViolation, "\(answers.count) answers came for \(batch.count) requests")
            }
            for (sent, answer) in zip(batch, answers) { carried.removeValue(forKey: sent.id)?.resume(with: answer) }
        } catch {
            for sent in batch { carried.removeValue(forKey: sent.id)?.resume(throwing: error) }
        }
        inFlight -= 1
        sendWhileFree(send)
    }
}

/// A client's batches to datakeepers: one coalescer per key (chunk writes go together only down
/// the same pipeline, chunk reads only to the same datakeeper), and the datakeepers found to
/// have no batch route (from before it), which are asked one chunk at a time for a while.
final class ChunkBatches<Item: Sendable, Answer: Sendable>: Sendable {
    /// Keys remembered at most: past it they are all forgotten (a batch in flight still ends;
    /// the next item starts a new coalescer), so a long-lived client cannot grow without bound.
    private static var keysKept: Int { 256 }
    private let coalescers = NIOLockedValueBox<[String: RequestCoalescer<Item, Answer>]>([:])
    /// Datakeepers (by address) that answered a batch with 404.
    let withoutRoute = MissingRoutes()
    /// Items asked and not yet answered, by datakeeper address.
    private let underWay = NIOLockedValueBox<[String: Int]>([:])

    /// Asks `item` of `coalescer`, counted as under way at `address` until answered.
    func ask(
        _ item: Item, of coalescer: RequestCoalescer<Item, Answer>, at address: String,
        send: @escaping RequestCoalescer<Item, Answer>.Send
    ) async throws -> Answer {
        underWay.withLockedValue { $0[address, default: 0] += 1 }
        defer {
            underWay.withLockedValue { counts in
                counts[address]! -= 1
                if counts[address] == 0 { counts[address] = nil }
            }
        }
        return try await coalescer.ask(item, send: send)
    }

    /// `candidates` with the first of them among `quick` that has the most items under way
    /// moved to the front (the rest keep their order): an item that could go to several
    /// datakeepers joins the batch forming at one of them, instead of going alone to another.
    /// Unchanged when none has items under way, so the caller's order (which spreads work)
    /// decides then. A datakeeper with a full batch out and another full one waiting is not
    /// moved forward for being busy (it keeps its place in the caller's order).
    func busiestFirst<Candidate>(_ candidates: [Candidate], address: (Candidate) -> String, quick: (Candidate) -> Bool) -> [Candidate] {
        let counts = underWay.withLockedValue { $0 }
        let full = (Limits.chunkBatchesInFlight + 1) * Limits.maxChunksPerBatch
        var best: (index: Int, count: Int)?
        for (index, candidate) in candidates.enumerated() where quick(candidate) {
            let count = counts[address(candidate)] ?? 0
            if count >= full { continue }
            if count > (best?.count ?? 0) { best = (index, count) }
        }
        guard let best, best.index > 0 else { return candidates }
        var reordered = candidates
        reordered.insert(reordered.remove(at: best.index), at: 0)
        return reordered
    }

    /// The coalescer for items under `key`, sent to the datakeeper at `address`; nil when that
    /// datakeeper takes no batches.
    func coalescer(for key: String, at address: String) -> RequestCoalescer<Item, Answer>? {
        guard !withoutRoute.isMissing(at: address) else { return nil }
        return coalescers.withLockedValue { coalescers in
            if let existing = coalescers[key] { return existing }
            if coalescers.count >= Self.keysKept { coalescers.removeAll() }
            let created = RequestCoalescer<Item, Answer>(inFlightLimit: Limits.chunkBatchesInFlight, itemsLimit: Limits.maxChunksPerBatch)
            coalescers[key] = created
            return created
        }
    }
}

/// Servers found without something added since (a datakeeper's chunk batches, a master's batched
/// opens and commits, a master reading compact bodies): asked the older way for
/// `Limits.routeCheckSeconds`, then the new way is tried again, so a rolling upgrade reaches it
/// without a restart.
final class MissingRoutes: Sendable {
    private let since = NIOLockedValueBox<[String: ContinuousClock.Instant]>([:])

    func isMissing(at server: String) -> Bool {
        let now = ContinuousClock.now
        return since.withLockedValue { since in
            guard let found = since[server] else { return false }
            if now - found < .seconds(Limits.routeCheckSeconds) { return true }
            since[server] = nil
            return false
        }
    }

    func missing(at server: String) {
        let now = ContinuousClock.now
        since.withLockedValue { $0[server] = now }
    }
}
