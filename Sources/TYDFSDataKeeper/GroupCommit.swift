/// Who waits for which `fdatasync` of the volumes: the rule that lets one sync acknowledge
/// many small writes, kept free of I/O so a test can drive it event by event.
///
/// A writer asks for a sync only after its record is written. With no sync running, one starts
/// at once for that writer alone (a lone writer is never delayed). Writers who ask while a sync
/// runs cannot be covered by it (their record may have been written after it started), so they
/// wait together and form the next batch, which starts the moment the running sync ends. Each
/// writer is thus acknowledged by the first sync that *started* after its record was written.
struct GroupCommit<Waiter> {
    /// The batch whose sync is running, if one is.
    private var syncing: [Waiter]?
    /// Writers waiting for the next sync.
    private var waiting: [Waiter] = []

    /// True while a sync runs.
    var isSyncing: Bool { syncing != nil }
    /// Writers waiting for the next sync (not counting the running one's batch).
    var waitingCount: Int { waiting.count }

    /// A writer whose record is written asks to be made durable. Returns the batch to sync now
    /// (just this writer) when no sync runs, nil when it must wait for the next one.
    mutating func requestSync(_ waiter: Waiter) -> [Waiter]? {
        guard syncing == nil else {
            waiting.append(waiter)
            return nil
        }
        syncing = [waiter]
        return [waiter]
    }

    /// The running sync ended. Returns its batch, to acknowledge (or fail) now, and the batch to
    /// sync next, if writers arrived meanwhile.
    mutating func syncFinished() -> (done: [Waiter], next: [Waiter]?) {
        let done = syncing ?? []
        guard !waiting.isEmpty else {
            syncing = nil
            return (done, nil)
        }
        let next = waiting
        waiting = []
        syncing = next
        return (done, next)
    }
}
