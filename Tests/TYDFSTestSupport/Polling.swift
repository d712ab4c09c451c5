/// Waits, polling every 5 ms, until `condition` holds; throws once 10 s pass without it (room for
/// a loaded machine), naming `what` never happened. For tests of in-process concurrency, where
/// the thing awaited has no event of its own to wait on.
public func waitUntil(_ what: String, _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(10)
    while !condition() {
        guard ContinuousClock.now < deadline else { throw TestClusterError("timed out waiting for \(what)") }
        try await Task.sleep(for: .milliseconds(5))
    }
}
