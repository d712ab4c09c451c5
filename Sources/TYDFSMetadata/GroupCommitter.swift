import NIOConcurrencyHelpers
import TYDFSCore

/// Writes the master's metadata edits to the store in batches: every edit queued while the
/// previous batch was being written goes into the next one, so concurrent commits share one
/// transaction and one fsync, and each caller is answered only after the fsync that covers it.
///
/// Edits carry increasing sequence numbers given by the master, which applied them to its
/// in-memory namespace before queueing them. When a batch fails, that batch and everything queued
/// after it fail, and new edits are refused, until the master has taken all of them back out of
/// memory and calls `resume()`: memory never keeps an edit the store does not have.
public final class GroupCommitter: Sendable {
    private struct Queued {
        var sequence: UInt64
        var edits: [MetadataEdit]
        var waiter: CheckedContinuation<Void, Error>?
    }

    private struct State {
        var queue: [Queued] = []
        var durableSequence: UInt64 = 0
        /// Set from a failed batch until `resume()`.
        var failure: TYDFSError?
        var wakeUp: CheckedContinuation<Void, Never>?
        var stopping = false
        /// What edits queued after `stop()` are refused with.
        var refusal = TYDFSError(.unavailable, "the master is shutting down")
    }

    private let store: any MetadataStore
    private let state = NIOLockedValueBox(State())

    public init(store: any MetadataStore) {
        self.store = store
    }

    /// The highest sequence number whose edits are durable.
    public var durableSequence: UInt64 { state.withLockedValue { $0.durableSequence } }

    /// Queues `edits` and returns once they are durable; throws if their batch failed.
    ///
    /// Runs on the caller's actor (`isolation`) up to the queueing: the master queues its edits
    /// in the order of their sequence numbers only if nothing of its own runs between applying
    /// them and queueing them. Were this call to leave the actor first, a later edit queued
    /// meanwhile (`commitInBackground`) could be written, and counted durable, before this one.
    public func commit(
        _ edits: [MetadataEdit], sequence: UInt64, isolation: isolated (any Actor)? = #isolation
    ) async throws {
        try await withCheckedThrowingContinuation(isolation: isolation) { (waiter: CheckedContinuation<Void, Error>) in
            enqueue(Queued(sequence: sequence, edits: edits, waiter: waiter))
        }
    }

    /// Queues `edits` without waiting for them (their failure is handled by the rollback alone).
    public func commitInBackground(_ edits: [MetadataEdit], sequence: UInt64) {
        enqueue(Queued(sequence: sequence, edits: edits, waiter: nil))
    }

    private func enqueue(_ item: Queued) {
        let (refused, wakeUp) = state.withLockedValue { state -> (TYDFSError?, CheckedContinuation<Void, Never>?) in
            if let failure = state.failure { return (failure, nil) }
            if state.stopping { return (state.refusal, nil) }
            state.queue.append(item)
            defer { state.wakeUp = nil }
            return (nil, state.wakeUp)
        }
        if let refused { item.waiter?.resume(throwing: refused) }
        wakeUp?.resume()
    }

    /// Accepts edits again after a failure, once the master has undone every edit not durable.
    public func resume() {
        state.withLockedValue { $0.failure = nil }
    }

    /// The writer: takes whatever is queued, writes it as one batch, answers its callers, and
    /// repeats until `stop()` and an empty queue. After a failed batch it calls `rollBack` with
    /// the last durable sequence number and the error, and waits for it.
    public func run(rollBack: @Sendable (UInt64, TYDFSError) async -> Void) async {
        while true {
            await withCheckedContinuation { (wakeUp: CheckedContinuation<Void, Never>) in
                let ready = state.withLockedValue { state -> Bool in
                    if !state.queue.isEmpty || state.stopping { return true }
                    state.wakeUp = wakeUp
                    return false
                }
                if ready { wakeUp.resume() }
            }
            guard let batch = takeBatch() else { return }
            if batch.isEmpty { continue }
            do {
                try await store.apply(batch.flatMap(\.edits))
                state.withLockedValue { $0.durableSequence = batch.last!.sequence }
                for item in batch { item.waiter?.resume() }
            } catch {
                let failure = (error as? TYDFSError) ?? TYDFSError(.io, "the metadata database could not be written: \(error)")
                let (queued, durable) = state.withLockedValue { state in
                    state.failure = failure
                    defer { state.queue = [] }
                    return (state.queue, state.durableSequence)
                }
                for item in batch + queued { item.waiter?.resume(throwing: failure) }
                await rollBack(durable, failure)
            }
        }
    }

    /// Everything queued; nil once stopping with nothing left to write.
    private func takeBatch() -> [Queued]? {
        state.withLockedValue { state in
            if state.queue.isEmpty && state.stopping { return nil }
            defer { state.queue = [] }
            return state.queue
        }
    }

    /// Ends `run()` once what is queued now is written; later edits are refused with `refusal`
    /// (that of the first call).
    public func stop(refusing refusal: TYDFSError = TYDFSError(.unavailable, "the master is shutting down")) {
        let wakeUp = state.withLockedValue { state in
            // The first reason stands: a step-down's `not_leader` is not overwritten by the
            // cancellation that follows it.
            if !state.stopping { state.refusal = refusal }
            state.stopping = true
            defer { state.wakeUp = nil }
            return state.wakeUp
        }
        wakeUp?.resume()
    }
}
