import NIOConcurrencyHelpers
import TYDFSCore

/// Keeps a client's open uploads alive: a put that waits long for its source (standard input,
/// a file being written through the mount) renews its upload before the master's upload timeout
/// and orphan grace run out, and learns of a failover while its chunks are far from being taken
/// for orphans.
///
/// One loop serves every put of the client, and runs only while some put is open: a put costs
/// an entry in a table, not a task and a timer of its own (a `tydfs bench` makes a thousand or
/// more puts a second). The loop looks every half period and renews each upload not renewed
/// (or opened) for a whole period, so an upload is renewed every period to period and a half.
final class UploadRenewals: Sendable {
    /// Renews one upload (errors are its own to log: the next period tries again).
    typealias Renew = @Sendable () async -> Void

    private struct Entry {
        var renew: Renew
        /// When the upload was opened or last renewed.
        var since: ContinuousClock.Instant
        /// The renewal under way, cancelled when the put ends: a put done (committed or given
        /// up) is not renewed, nor reopened on a new leader.
        var running: Task<Void, Never>?
    }

    private struct State {
        var open: [Int: Entry] = [:]
        var nextID = 0
        var loop: Task<Void, Never>?
        var stopped = false
    }

    private let periodSeconds: Double
    private let state = NIOLockedValueBox(State())

    init(periodSeconds: Double = Limits.uploadRenewSeconds) {
        self.periodSeconds = periodSeconds
    }

    /// Calls `renew` each time a whole `periodSeconds` has passed since the upload was opened or
    /// last renewed, until `remove` is called with the id returned.
    func add(_ renew: @escaping Renew) -> Int {
        let now = ContinuousClock.now
        return state.withLockedValue { state in
            let id = state.nextID
            state.nextID += 1
            state.open[id] = Entry(renew: renew, since: now)
            if state.loop == nil && !state.stopped {
                // Detached: the loop serves every put, and carries none's task-locals (request id).
                state.loop = Task.detached { await self.run() }
            }
            return id
        }
    }

    /// Stops renewing an upload, cancelling its renewal if one is under way; returns that
    /// renewal, for a caller that must wait until it has ended.
    @discardableResult
    func remove(_ id: Int) -> Task<Void, Never>? {
        let running = state.withLockedValue { $0.open.removeValue(forKey: id) }?.running
        running?.cancel()
        return running
    }

    /// How many uploads are renewed now, and whether the loop runs (for tests).
    var status: (open: Int, looping: Bool) {
        state.withLockedValue { ($0.open.count, $0.loop != nil) }
    }

    /// Ends the loop and every renewal under way (the client is shutting down); later puts are
    /// not renewed.
    func stop() {
        let (loop, running) = state.withLockedValue { state in
            state.stopped = true
            defer { state.loop = nil }
            return (state.loop, state.open.values.compactMap(\.running))
        }
        loop?.cancel()
        for renewal in running { renewal.cancel() }
    }

    private func run() async {
        while (try? await Task.sleep(for: .seconds(periodSeconds / 2))) != nil {
            let now = ContinuousClock.now
            let more = state.withLockedValue { state -> Bool in
                if state.open.isEmpty || state.stopped {
                    // Decided under the lock: the next `add` starts a new loop.
                    if !state.stopped { state.loop = nil }
                    return false
                }
                for (id, entry) in state.open where entry.running == nil && now - entry.since >= .seconds(periodSeconds) {
                    state.open[id]!.since = now
                    // Not awaited: a renewal stuck on an unreachable master holds up no other.
                    state.open[id]!.running = Task {
                        await entry.renew()
                        self.state.withLockedValue { $0.open[id]?.running = nil }
                    }
                }
                return true
            }
            guard more else { return }
        }
    }
}
