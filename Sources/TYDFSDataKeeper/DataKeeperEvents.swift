import NIOConcurrencyHelpers
import TYDFSCore
import TYDFSProtocol

/// What happened on this datakeeper that the master must hear about in the next heartbeat:
/// bad chunks found, copies finished or failed. Kept until a heartbeat carrying them succeeds.
final class DataKeeperEvents: Sendable {
    struct Batch: Sendable {
        var badChunks: [ChunkID] = []
        var copiesDone: [ChunkID] = []
        var copiesFailed: [CopyFailure] = []
        var isEmpty: Bool { badChunks.isEmpty && copiesDone.isEmpty && copiesFailed.isEmpty }
    }

    private let pending = NIOLockedValueBox(Batch())

    func bad(_ chunk: ChunkID) { pending.withLockedValue { $0.badChunks.append(chunk) } }
    func copied(_ chunk: ChunkID) { pending.withLockedValue { $0.copiesDone.append(chunk) } }
    func copyFailed(_ failure: CopyFailure) { pending.withLockedValue { $0.copiesFailed.append(failure) } }

    /// Takes everything reported so far.
    func drain() -> Batch {
        pending.withLockedValue { batch in
            defer { batch = Batch() }
            return batch
        }
    }

    /// Puts back a batch whose heartbeat failed, ahead of newer events.
    func restore(_ batch: Batch) {
        pending.withLockedValue { current in
            current = Batch(
                badChunks: batch.badChunks + current.badChunks, copiesDone: batch.copiesDone + current.copiesDone,
                copiesFailed: batch.copiesFailed + current.copiesFailed)
        }
    }
}
