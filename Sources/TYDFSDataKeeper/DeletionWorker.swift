import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import TYDFSCore

/// The master's deletion orders waiting to be carried out, and the deletions done but not yet
/// confirmed to the master.
///
/// Exists so that the heartbeat loop never waits for a disk: it only hands orders over
/// (`enqueue` never blocks) and collects what is done (`takeDone`). Bounded by
/// `Limits.deletionQueueMaxChunks`: orders past the bound are dropped, which is safe because the
/// master sends every unconfirmed deletion again. An order for a chunk already queued or being
/// deleted is skipped, since the master repeats orders until it hears they are done.
final class DeletionQueue: Sendable {
    private struct State {
        var pending: [ChunkID] = []
        /// Chunks pending or being deleted.
        var queued: Set<ChunkID> = []
        var done: [ChunkID] = []
    }

    let maxChunks: Int
    private let state = NIOLockedValueBox(State())
    private let doorbell: AsyncStream<Void>.Continuation
    /// Rings (at most one ring buffered) when orders arrive; the worker waits on it.
    let rings: AsyncStream<Void>

    init(maxChunks: Int = Limits.deletionQueueMaxChunks) {
        self.maxChunks = maxChunks
        (rings, doorbell) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Queues deletion orders, skipping chunks already queued and dropping orders past the
    /// bound. Returns how many were queued. Never waits.
    @discardableResult
    func enqueue(_ chunks: [ChunkID]) -> Int {
        let accepted = state.withLockedValue { state in
            var accepted = 0
            for chunk in chunks where state.queued.count < maxChunks && !state.queued.contains(chunk) {
                state.queued.insert(chunk)
                state.pending.append(chunk)
                accepted += 1
            }
            return accepted
        }
        if accepted > 0 { doorbell.yield() }
        return accepted
    }

    /// Chunks pending or being deleted.
    var queuedCount: Int { state.withLockedValue { $0.queued.count } }

    /// Takes up to `count` pending orders for the worker.
    func next(upTo count: Int) -> [ChunkID] {
        state.withLockedValue { state in
            let taken = Array(state.pending.prefix(count))
            state.pending.removeFirst(taken.count)
            return taken
        }
    }

    /// The worker finished with `chunk`: deleted (or found not here), to be confirmed to the
    /// master, or failed, to be ordered again.
    func finished(_ chunk: ChunkID, deleted: Bool) {
        state.withLockedValue { state in
            state.queued.remove(chunk)
            if deleted { state.done.append(chunk) }
        }
    }

    /// Takes the deletions done, for the next heartbeat.
    func takeDone() -> [ChunkID] {
        state.withLockedValue { state in
            defer { state.done = [] }
            return state.done
        }
    }

    /// Puts back deletions whose heartbeat failed, so the next one carries them.
    func restoreDone(_ chunks: [ChunkID]) {
        state.withLockedValue { $0.done = chunks + $0.done }
    }

    /// Returns once `chunk` is neither pending nor being deleted (or the task is cancelled): a
    /// copy of a chunk the master also ordered deleted must start after the deletion, or it
    /// would find the doomed copy and report it as the new replica. Polls, because a deletion
    /// takes milliseconds and a cancelled wait must end at once.
    func settled(_ chunk: ChunkID) async {
        while state.withLockedValue({ $0.queued.contains(chunk) }) && !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(5))
        }
    }
}

/// Carries out the master's deletion orders off the heartbeat loop, up to
/// `Limits.concurrentDeletions` at once (so that tombstones in a volume share an `fdatasync`),
/// until shutdown.
struct DeletionWorker: Service {
    let queue: DeletionQueue
    /// Deletes a chunk; false when it was not here (which confirms the order all the same).
    let delete: @Sendable (ChunkID) async throws -> Bool
    let logger: Logger

    func run() async throws {
        for await _ in queue.rings.cancelOnGracefulShutdown() {
            while true {
                let batch = queue.next(upTo: Limits.concurrentDeletions)
                if batch.isEmpty { break }
                await withTaskGroup(of: Void.self) { group in
                    for chunk in batch {
                        group.addTask {
                            do {
                                _ = try await delete(chunk)
                                queue.finished(chunk, deleted: true)
                            } catch {
                                logger.error("chunk deletion failed", metadata: ["chunk.id": "\(chunk)", "error": "\(error)"])
                                queue.finished(chunk, deleted: false)
                            }
                        }
                    }
                }
            }
        }
    }
}
