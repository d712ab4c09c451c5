import Logging
import ServiceLifecycle
import TYDFSCore
import TYDFSProtocol

/// Work the master hands a datakeeper besides client transfers.
enum RepairJob: Sendable {
    case copy(CopyChunkOrder)
    case verify(ChunkID)
}

/// Runs copy and verify orders from the master, at most `concurrency` at once, until shutdown.
/// A copy of a chunk awaiting deletion here starts once the deletion is done.
struct RepairWorker: Service {
    let jobs: AsyncStream<RepairJob>
    let transfer: ChunkTransfer
    let deletions: DeletionQueue
    let concurrency: Int

    func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            var running = 0
            for await job in jobs.cancelOnGracefulShutdown() {
                if running >= concurrency {
                    await group.next()
                    running -= 1
                }
                group.addTask {
                    switch job {
                    case .copy(let order):
                        await deletions.settled(order.chunk)
                        await transfer.copy(order)
                    case .verify(let chunk): await transfer.verify(chunk)
                    }
                }
                running += 1
            }
            group.cancelAll()
        }
    }
}

/// Re-reads every chunk in the background at a bounded rate, one pass every interval, so bit
/// rot and lost files are found before a reader needs the chunk.
struct Scrubber: Service {
    let transfer: ChunkTransfer
    let intervalSeconds: Double
    let bytesPerSecond: Double
    let logger: Logger

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                let started = ContinuousClock.now
                let bytes = await transfer.store.usage().usedBytes
                var checked = 0, bad = 0
                let chunks = await transfer.store.chunkIDs()
                for (done, chunk) in chunks.enumerated() {
                    if Task.isCancelled { return }
                    if case let placement? = await transfer.store.placement(of: chunk) {
                        checked += 1
                        if await transfer.verify(chunk, bytesPerSecond: bytesPerSecond) == .bad { bad += 1 }
                        transfer.counters.scrubbed(bytes: placement.frameBytes, done: done + 1, total: chunks.count)
                    }
                }
                transfer.counters.scrubPassFinished()
                let spent = ContinuousClock.now - started
                let seconds = spent.inSeconds
                if checked > 0 {
                    logger.info("scrub pass done", metadata: [
                        "chunks": "\(checked)", "bad": "\(bad)", "bytes": "\(bytes)", "seconds": "\(seconds)",
                        "mib_per_second": "\(Int(Double(bytes) / max(seconds, 0.001) / 1_048_576))",
                    ])
                }
                let rest = Duration.seconds(intervalSeconds) - spent
                if rest > .zero { try await Task.sleep(for: rest) }
            }
        }
    }
}
