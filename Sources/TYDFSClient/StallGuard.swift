import Foundation
import NIOConcurrencyHelpers
import NIOCore
import TYDFSCore

/// When a transfer last made progress, told by the transfer itself: `advance` when a byte moves,
/// `pause` while it waits on something that is not the watched peer (the local disk, an
/// upstream sender), `allow` once the peer has everything and owes only an answer.
public final class TransferProgress: Sendable {
    /// Uptime in nanoseconds after which the transfer counts as stalled; `.max` while paused.
    private let deadline: NIOLockedValueBox<UInt64>
    private let limitNanoseconds: UInt64

    /// A transfer allowed `stallSeconds` without progress, starting now (or, when `paused`, at
    /// the first `advance`).
    public init(stallSeconds: Double, paused: Bool = false) {
        limitNanoseconds = UInt64(stallSeconds * 1e9)
        deadline = NIOLockedValueBox(paused ? .max : Self.now() + limitNanoseconds)
    }

    /// A byte moved: the peer has another `stallSeconds`.
    public func advance() {
        let next = Self.now() + limitNanoseconds
        deadline.withLockedValue { $0 = next }
    }

    /// Stops the clock until the next `advance` or `allow`.
    public func pause() {
        deadline.withLockedValue { $0 = .max }
    }

    /// The peer has everything: it has `stallSeconds` plus `extraSeconds` to answer.
    public func allow(extraSeconds: Double) {
        let next = Self.now() + limitNanoseconds + UInt64(max(0, extraSeconds) * 1e9)
        deadline.withLockedValue { $0 = next }
    }

    /// Nanoseconds left before the transfer counts as stalled (0 or less: stalled), or the full
    /// limit while paused.
    fileprivate var remainingNanoseconds: Int64 {
        let deadline = deadline.withLockedValue { $0 }
        if deadline == .max { return Int64(limitNanoseconds) }
        return Int64(bitPattern: deadline &- Self.now())
    }

    fileprivate var limitSeconds: Double { Double(limitNanoseconds) / 1e9 }

    private static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
}

/// Runs a chunk transfer and abandons it when its peer stops making progress, as HDFS's
/// clients abandon a datanode that stops acknowledging packets: a hung datakeeper (alive
/// socket, no answers) then costs `TransferProgress`'s few seconds, not the transfer's deadline,
/// and the caller moves on to another replica or pipeline.
public enum StallGuard {
    /// Runs `operation` with `progress`; if `progress` runs out first, cancels the operation and
    /// throws `.unreachable` (the caller names the peer).
    public static func run<T: Sendable>(
        _ progress: TransferProgress, _ operation: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await operation() }
            group.addTask {
                while true {
                    let remaining = progress.remainingNanoseconds
                    if remaining <= 0 {
                        throw TYDFSError(.unreachable, "made no progress for \(formatSeconds(progress.limitSeconds)) s (hung?); abandoned it")
                    }
                    try await Task.sleep(nanoseconds: UInt64(remaining))
                }
            }
            defer { group.cancelAll() }
            // The watchdog never returns a value, so the first value is the operation's.
            while let result = try await group.next() {
                if let value = result { return value }
            }
            throw CancellationError()
        }
    }

    static func formatSeconds(_ seconds: Double) -> String { String(format: "%.0f", seconds) }
}

/// A body stream that tells `progress` about every buffer that arrives, so a copy pulled from a
/// datakeeper is watched by `StallGuard` without changing the code that consumes it. The clock
/// runs only while the consumer waits for the next buffer (not while it writes one to disk), and
/// stops once the stream has ended (the consumer's fsync is not the sender's silence).
public struct ProgressReportingSequence<Base: AsyncSequence>: AsyncSequence where Base.Element == ByteBuffer {
    public typealias Element = ByteBuffer
    let base: Base
    let progress: TransferProgress

    public init(_ base: Base, progress: TransferProgress) {
        self.base = base
        self.progress = progress
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        let progress: TransferProgress

        public mutating func next() async throws -> ByteBuffer? {
            progress.advance()
            let buffer = try await base.next()
            if buffer == nil { progress.pause() } else { progress.advance() }
            return buffer
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: base.makeAsyncIterator(), progress: progress) }
}

extension ProgressReportingSequence: Sendable where Base: Sendable {}
