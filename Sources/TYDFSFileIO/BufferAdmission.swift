/// Who may read into a new I/O buffer now: the decisions behind `RecycledIOBuffers`' bound on
/// the buffers alive at once, kept apart from the allocator so they can be tested on their own.
///
/// A reader is admitted while the buffers alive and the reads under way number fewer than
/// `limit`, and otherwise waits, in turn. A buffer counts from its allocation until it is
/// freed (whoever frees it: NIO, once it has sent it), and a read counts while it runs, so a
/// buffer that is still queued for a socket holds its place.
struct BufferAdmission<Waiter> {
    let limit: Int
    private(set) var live = 0
    private(set) var reading = 0
    private var waiters: [(id: Int, waiter: Waiter)] = []

    init(limit: Int) {
        precondition(limit > 0, "a buffer bound needs room for one buffer")
        self.limit = limit
    }

    var waiting: Int { waiters.count }

    /// A reader asks to read now: true when it may (its read then counts), false when it must
    /// wait (`admitOrEnqueue`).
    mutating func admit() -> Bool {
        guard waiters.isEmpty, live + reading < limit else { return false }
        reading += 1
        return true
    }

    /// A reader that was refused asks again, in the same step in which it would start to wait:
    /// true when there is room now (its read then counts), else it waits behind those already
    /// waiting. Between the refusal and this step, buffers may have been freed with no one
    /// waiting to take their place; without asking again, the reader would wait for a wake-up
    /// that may never come.
    mutating func admitOrEnqueue(_ id: Int, _ waiter: Waiter) -> Bool {
        if admit() { return true }
        waiters.append((id, waiter))
        return false
    }

    /// A waiting reader gave up (cancelled): its waiter, if it still waited.
    mutating func withdraw(_ id: Int) -> Waiter? {
        guard let index = waiters.firstIndex(where: { $0.id == id }) else { return nil }
        return waiters.remove(at: index).waiter
    }

    /// A read finished (with or without a buffer): the waiters admitted in its place.
    mutating func readFinished() -> [Waiter] {
        precondition(reading > 0, "a read finished that never started")
        reading -= 1
        return admitWaiters()
    }

    mutating func bufferAllocated() {
        live += 1
    }

    /// A counted buffer was freed: the waiters admitted in its place.
    mutating func bufferFreed() -> [Waiter] {
        precondition(live > 0, "a buffer was freed that was never counted")
        live -= 1
        return admitWaiters()
    }

    private mutating func admitWaiters() -> [Waiter] {
        var admitted: [Waiter] = []
        while !waiters.isEmpty, live + reading < limit {
            admitted.append(waiters.removeFirst().waiter)
            reading += 1
        }
        return admitted
    }
}

extension BufferAdmission: Sendable where Waiter: Sendable {}
