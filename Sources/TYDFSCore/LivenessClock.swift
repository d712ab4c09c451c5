/// The clock a master measures datakeepers' silence by: the monotonic clock, stopped while the
/// master itself was not running.
///
/// A master stopped for longer than the heartbeat timeout (SIGSTOP, a frozen VM, heavy swapping)
/// wakes to find every datakeeper's last heartbeat old, while the heartbeats they sent meanwhile
/// still wait unread in its sockets. Measured on the raw clock it would declare them all dead,
/// refuse to place chunks and start repairing, all because of its own pause. So the master reads
/// this clock often (a ticker, besides every request), and a gap between two readings longer
/// than `longestGapSeconds` is a pause of its own: everything beyond that is left out of the time
/// that silence is measured in.
///
/// Pure: the caller passes the monotonic time in.
public struct LivenessClock: Sendable, Equatable {
    /// The longest gap between two readings that still counts as time the master ran.
    public let longestGapSeconds: Double
    /// Seconds left out so far: the master's own pauses, beyond `longestGapSeconds` each.
    public private(set) var pausedSeconds: Double = 0
    private var lastReadingSeconds: Double?

    public init(longestGapSeconds: Double) {
        self.longestGapSeconds = longestGapSeconds
    }

    /// The liveness time at monotonic time `monotonic`, and the pause found by this reading
    /// (0 when the previous reading was recent enough).
    public mutating func read(_ monotonic: Double) -> (seconds: Double, pauseSeconds: Double) {
        var pause = 0.0
        if let last = lastReadingSeconds, monotonic - last > longestGapSeconds {
            pause = monotonic - last - longestGapSeconds
            pausedSeconds += pause
        }
        lastReadingSeconds = max(lastReadingSeconds ?? monotonic, monotonic)
        return (monotonic - pausedSeconds, pause)
    }
}
