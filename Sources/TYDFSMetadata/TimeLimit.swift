import NIOConcurrencyHelpers
import TYDFSCore

/// Runs `body`, but gives up after `seconds` and throws `timedOut` (by default, that the metadata
/// database did not answer): a database that silently
/// stopped answering must stop neither the leadership loop (a leader that cannot renew has to
/// notice, and step down) nor the metadata writer. The abandoned call is cancelled and left to
/// finish on its own.
public func bounded<T: Sendable>(
    _ seconds: Double,
    timedOut: (any Error)? = nil,
    _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    let answered = NIOLockedValueBox(false)
    // Whoever comes first (the answer or the timer) resumes the caller; the other does nothing.
    let claim: @Sendable () -> Bool = {
        answered.withLockedValue { done in
            defer { done = true }
            return !done
        }
    }
    return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
        let work = Task {
            do {
                let value = try await body()
                if claim() { continuation.resume(returning: value) }
            } catch {
                if claim() { continuation.resume(throwing: error) }
            }
        }
        Task {
            try? await Task.sleep(for: .seconds(seconds))
            if claim() {
                work.cancel()
                continuation.resume(throwing: timedOut ?? TYDFSError(.unreachable, "the metadata database did not answer within \(seconds) s"))
            }
        }
    }
}
