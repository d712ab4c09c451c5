import Logging
import NIOConcurrencyHelpers
@testable import TYDFSDataKeeper
import TYDFSCore
import TYDFSTestSupport
import XCTest

/// The deletion queue never makes the heartbeat wait, holds no more than its bound, skips
/// repeated orders, and reports exactly the deletions done.
final class DeletionWorkerTests: XCTestCase {
    private func chunks(_ range: Range<Int>) -> [ChunkID] { range.map { ChunkID(high: 9, low: UInt64($0)) } }

    /// A deletion that waits until the test opens the gate.
    final class Gate: Sendable {
        private let open = NIOLockedValueBox(false)
        private let started = NIOLockedValueBox(0)
        var deletionsStarted: Int { started.withLockedValue { $0 } }
        func release() { open.withLockedValue { $0 = true } }
        func delete(_ chunk: ChunkID) async throws -> Bool {
            started.withLockedValue { $0 += 1 }
            while !open.withLockedValue({ $0 }) { try await Task.sleep(for: .milliseconds(2)) }
            if chunk.low == 13 { throw TYDFSError(.io, "disk said no") }
            return true
        }
    }

    func testOrdersAreQueuedWithoutWaitingUpToTheBoundAndOnlyDoneOnesAreReported() async throws {
        let queue = DeletionQueue(maxChunks: 20)
        let gate = Gate()
        let worker = DeletionWorker(queue: queue, delete: { try await gate.delete($0) }, logger: Logger(label: "test"))
        let running = Task { try await worker.run() }
        // The worker is stuck on a slow disk; handing it orders still returns at once.
        let started = ContinuousClock.now
        XCTAssertEqual(queue.enqueue(chunks(0..<15)), 15)
        try await waitUntil("the worker busy") { gate.deletionsStarted == min(Limits.concurrentDeletions, 15) }
        XCTAssertEqual(queue.enqueue(chunks(10..<30)), 5, "repeats skipped, the rest up to the bound")
        XCTAssertEqual(queue.enqueue(chunks(30..<40)), 0, "full: dropped, the master sends them again")
        XCTAssertEqual(queue.queuedCount, 20)
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(1), "enqueue never waits for the disk")
        XCTAssertEqual(queue.takeDone(), [], "nothing done yet")
        gate.release()
        try await waitUntil("every order carried out") { queue.queuedCount == 0 }
        let done = queue.takeDone()
        XCTAssertEqual(Set(done), Set(chunks(0..<20)).subtracting([ChunkID(high: 9, low: 13)]), "a failed deletion is not reported")
        XCTAssertEqual(done.count, 19)
        queue.restoreDone(Array(done.prefix(3)))
        XCTAssertEqual(queue.takeDone(), Array(done.prefix(3)), "put back after a failed heartbeat")
        XCTAssertEqual(queue.enqueue(chunks(30..<32)), 2, "room again")
        try await waitUntil("the new orders carried out") { queue.queuedCount == 0 }
        XCTAssertEqual(Set(queue.takeDone()), Set(chunks(30..<32)))
        running.cancel()
        _ = try? await running.value
    }

    func testACopyWaitsUntilItsChunksDeletionEnded() async throws {
        let queue = DeletionQueue()
        let gate = Gate()
        let worker = DeletionWorker(queue: queue, delete: { try await gate.delete($0) }, logger: Logger(label: "test"))
        let running = Task { try await worker.run() }
        let chunk = ChunkID(high: 9, low: 1)
        queue.enqueue([chunk])
        let settled = NIOLockedValueBox(false)
        let waiter = Task {
            await queue.settled(chunk)
            settled.withLockedValue { $0 = true }
        }
        try await Task.sleep(for: .milliseconds(50))
        XCTAssertFalse(settled.withLockedValue { $0 }, "the deletion is still running")
        gate.release()
        await waiter.value
        XCTAssertEqual(queue.takeDone(), [chunk])
        await queue.settled(ChunkID(high: 9, low: 2))
        running.cancel()
        _ = try? await running.value
    }
}
