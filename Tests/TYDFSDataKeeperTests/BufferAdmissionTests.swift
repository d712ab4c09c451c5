@testable import TYDFSFileIO
import XCTest

/// The decisions behind the bound on a datakeeper's I/O buffers, event by event: who reads now,
/// who waits, in what order, and what a freed buffer or a finished read lets in.
final class BufferAdmissionTests: XCTestCase {
    func testReadersAreAdmittedUntilBuffersAndReadsReachTheLimit() {
        var admission = BufferAdmission<String>(limit: 3)
        XCTAssertTrue(admission.admit())
        admission.bufferAllocated()
        XCTAssertEqual(admission.readFinished(), [])
        XCTAssertTrue(admission.admit())
        XCTAssertTrue(admission.admit())
        // One buffer alive and two reads under way: full.
        XCTAssertEqual(admission.live + admission.reading, 3)
        XCTAssertFalse(admission.admit())
        // A read that ends without a buffer (an error) makes room; one that allocated does not.
        admission.bufferAllocated()
        XCTAssertEqual(admission.readFinished(), [])
        XCTAssertFalse(admission.admit())
        XCTAssertEqual(admission.readFinished(), [])
        XCTAssertTrue(admission.admit())
    }

    func testWaitersAreLetInInTurnAsBuffersAreFreed() {
        var admission = BufferAdmission<String>(limit: 2)
        for _ in 0..<2 {
            XCTAssertTrue(admission.admit())
            admission.bufferAllocated()
            XCTAssertEqual(admission.readFinished(), [])
        }
        XCTAssertFalse(admission.admit())
        admission.enqueue(1, "first")
        admission.enqueue(2, "second")
        admission.enqueue(3, "third")
        XCTAssertEqual(admission.waiting, 3)
        XCTAssertEqual(admission.bufferFreed(), ["first"])
        // The one let in now reads: the next freed buffer goes to the second, not to a newcomer.
        XCTAssertEqual(admission.reading, 1)
        XCTAssertEqual(admission.bufferFreed(), ["second"])
        XCTAssertFalse(admission.admit(), "a newcomer does not overtake those waiting")
        admission.bufferAllocated()
        XCTAssertEqual(admission.readFinished(), [])
        admission.bufferAllocated()
        XCTAssertEqual(admission.readFinished(), [])
        XCTAssertEqual(admission.waiting, 1)
        XCTAssertEqual(admission.bufferFreed(), ["third"])
        XCTAssertEqual(admission.waiting, 0)
    }

    func testAReadThatEndsWithoutABufferLetsTheNextWaiterIn() {
        var admission = BufferAdmission<String>(limit: 1)
        XCTAssertTrue(admission.admit())
        admission.enqueue(1, "waiting")
        XCTAssertEqual(admission.readFinished(), ["waiting"])
        XCTAssertEqual(admission.reading, 1)
    }

    func testSeveralFreedAtOnceLetInAsManyAsFit() {
        var admission = BufferAdmission<Int>(limit: 4)
        for _ in 0..<4 {
            XCTAssertTrue(admission.admit())
            admission.bufferAllocated()
            _ = admission.readFinished()
        }
        for id in 1...3 { admission.enqueue(id, id) }
        XCTAssertEqual(admission.bufferFreed(), [1])
        XCTAssertEqual(admission.bufferFreed(), [2])
        // The two let in ended without buffers: room for the third and one more.
        XCTAssertEqual(admission.readFinished(), [3])
        XCTAssertEqual(admission.readFinished(), [])
        XCTAssertTrue(admission.admit())
    }

    func testAWithdrawnWaiterIsSkipped() {
        var admission = BufferAdmission<String>(limit: 1)
        XCTAssertTrue(admission.admit())
        admission.bufferAllocated()
        _ = admission.readFinished()
        admission.enqueue(1, "gone")
        admission.enqueue(2, "stays")
        XCTAssertEqual(admission.withdraw(1), "gone")
        XCTAssertNil(admission.withdraw(1), "withdrawn once")
        XCTAssertEqual(admission.bufferFreed(), ["stays"])
        XCTAssertNil(admission.withdraw(2), "already let in")
    }
}
