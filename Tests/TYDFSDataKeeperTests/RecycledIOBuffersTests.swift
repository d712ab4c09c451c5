#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import TYDFSCore
import TYDFSFileIO
import XCTest

/// The allocator datakeepers serve chunks with: an I/O buffer freed is handed out again, warm,
/// and what a read puts in it is all a reader sees.
final class RecycledIOBuffersTests: XCTestCase {
    private func address(_ buffer: ByteBuffer) -> UnsafeRawPointer? {
        buffer.withVeryUnsafeBytes { $0.baseAddress }
    }

    /// Frees a buffer of `capacity` and checks that the next one of that size gets its memory
    /// (kept, not given back: malloc, asked for as much meanwhile, gets other memory), and that
    /// a buffer still alive is never handed out twice. Returns the recycled buffer.
    private func checkAFreedBufferIsHandedOutAgain(capacity: Int, _ what: String) -> ByteBuffer {
        let allocator = RecycledIOBuffers.allocator
        var first: ByteBuffer? = allocator.buffer(capacity: capacity)
        let reused = address(first!)
        first = nil
        let other = malloc(capacity)!
        defer { free(other) }
        XCTAssertNotEqual(UnsafeRawPointer(other), reused)
        let second = allocator.buffer(capacity: capacity)
        XCTAssertEqual(address(second), reused, "a freed \(what) is recycled")
        let third = allocator.buffer(capacity: capacity)
        XCTAssertNotEqual(address(third), address(second), "a live \(what) is never handed out twice")
        return second
    }

    func testAFreedIOBufferIsHandedOutAgainAndOtherSizesAreNot() {
        let recycled = checkAFreedBufferIsHandedOutAgain(capacity: Limits.ioBufferBytes, "I/O buffer")
        // Buffers of another size are malloc's: two alive at once never share memory.
        let small = RecycledIOBuffers.allocator.buffer(capacity: 4096)
        XCTAssertNotEqual(address(small), address(recycled))
    }

    func testReadsIntoARecycledBufferShowOnlyWhatWasRead() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("recycled-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let full = folder + "/full"
        let short = folder + "/short"
        FileManager.default.createFile(atPath: full, contents: Data(repeating: 0xAB, count: Limits.ioBufferBytes))
        FileManager.default.createFile(atPath: short, contents: Data(repeating: 0x01, count: 1000))

        var file = try await LocalFile.openForReading(full)
        var first: ByteBuffer? = try await RecycledIOBuffers.read(count: Limits.ioBufferBytes, at: 0, from: file)
        XCTAssertEqual(first?.readableBytes, Limits.ioBufferBytes)
        let reused = address(first!)
        let alive = RecycledIOBuffers.counts.live
        first = nil
        // The thread-pool thread that read it may drop its own reference a moment after this
        // task resumed: the buffer is back only once it is no longer counted alive.
        let deadline = ContinuousClock.now + .seconds(5)
        while RecycledIOBuffers.counts.live >= alive {
            guard ContinuousClock.now < deadline else { return XCTFail("the first buffer was never freed") }
            try await Task.sleep(nanoseconds: 1_000_000)
        }
        try file.close()

        // The same memory, now holding a shorter read: the old bytes past it are not readable.
        file = try await LocalFile.openForReading(short)
        defer { try? file.close() }
        let second = try await RecycledIOBuffers.read(count: Limits.ioBufferBytes, at: 0, from: file)
        XCTAssertEqual(address(second), reused)
        XCTAssertEqual(Array(second.readableBytesView), [UInt8](repeating: 0x01, count: 1000))
    }

    func testReadersWaitWhileAllTheBuffersAreAliveAndGoOnOnceOneIsFreed() async throws {
        let allocator = RecycledIOBuffers.allocator
        // Buffers other tests' servers still hold count too.
        let before = RecycledIOBuffers.counts.live
        guard before < RecycledIOBuffers.liveBuffers else {
            return XCTFail("other tests left \(before) buffers alive, the whole bound")
        }
        var alive: [ByteBuffer] = []
        for _ in before..<RecycledIOBuffers.liveBuffers {
            alive.append(try await RecycledIOBuffers.read { allocator.buffer(capacity: Limits.ioBufferBytes) })
        }
        XCTAssertEqual(RecycledIOBuffers.counts.live, RecycledIOBuffers.liveBuffers)
        let waiter = Task { try await RecycledIOBuffers.read { allocator.buffer(capacity: 4096).capacity } }
        try await waitForOneWaiter()
        try await Task.sleep(nanoseconds: 50_000_000)
        XCTAssertEqual(RecycledIOBuffers.counts.waiting, 1, "the next read still waits for room")

        // A buffer freed (NIO done sending it) lets the waiting read in.
        alive.removeLast()
        let capacity = try await waiter.value
        XCTAssertGreaterThanOrEqual(capacity, 4096)
        XCTAssertEqual(RecycledIOBuffers.counts.live, RecycledIOBuffers.liveBuffers - 1, "the waiter's buffer was freed when it returned")

        // A read cancelled while it waits holds nothing and lets the others on.
        alive.append(try await RecycledIOBuffers.read { allocator.buffer(capacity: Limits.ioBufferBytes) })
        let cancelled = Task { try await RecycledIOBuffers.read { allocator.buffer(capacity: Limits.ioBufferBytes) } }
        try await waitForOneWaiter()
        cancelled.cancel()
        do {
            _ = try await cancelled.value
            XCTFail("a read cancelled while waiting returned a buffer")
        } catch is CancellationError {}
        XCTAssertEqual(RecycledIOBuffers.counts.waiting, 0)
        alive.removeAll()
        XCTAssertEqual(RecycledIOBuffers.counts.live, before)
        let after = try await RecycledIOBuffers.read { allocator.buffer(capacity: Limits.ioBufferBytes) }
        XCTAssertEqual(after.capacity, Limits.ioBufferBytes)
    }

    /// Waits (at most 5 s) until a read waits for room.
    private func waitForOneWaiter() async throws {
        let deadline = ContinuousClock.now + .seconds(5)
        while RecycledIOBuffers.counts.waiting == 0 {
            guard ContinuousClock.now < deadline else { return XCTFail("no read waits for room, with every buffer alive") }
            try await Task.sleep(nanoseconds: 1_000_000)
        }
    }
}
