import NIOConcurrencyHelpers

/// Bytes an operation moved so far and how many it will move, for a progress bar. A caller that
/// wants one sets `current` around a `put` or `get`; the client adds to it as chunk data goes out
/// or comes in (a chunk sent again after a failure counts again: the meter measures traffic).
public final class TransferMeter: Sendable {
    @TaskLocal public static var current: TransferMeter?

    private struct Counts {
        var done: Int64 = 0
        var total: Int64?
    }
    private let counts = NIOLockedValueBox(Counts())

    public init() {}

    /// Bytes moved so far, and the size of the whole transfer once known.
    public var progress: (done: Int64, total: Int64?) { counts.withLockedValue { ($0.done, $0.total) } }

    func expect(_ total: Int64) { counts.withLockedValue { $0.total = total } }
    func add(_ bytes: Int) { counts.withLockedValue { $0.done += Int64(bytes) } }
}
