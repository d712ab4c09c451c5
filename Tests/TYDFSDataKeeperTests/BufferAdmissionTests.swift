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
        XCTAssertFalse(admission.admitOrEnqueue(1, "first"))
        XCTAssertFalse(admission.admitOrEnqueue(2, "second"))
        XCTAssertFalse(admission.admitOrEnqueue(3, "third"))
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
        XCTAssertFalse(admission.admitOrEnqueue(1, "waiting"))
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
        for id in 1...3 { XCTAssertFalse(admission.admitOrEnqueue(id, id)) }
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
        XCTAssertFalse(admission.admitOrEnqueue(1, "gone"))
        XCTAssertFalse(admission.admitOrEnqueue(2, "stays"))
        XCTAssertEqual(admission.withdraw(1), "gone")
        XCTAssertNil(admission.withdraw(1), "withdrawn once")
        XCTAssertEqual(admission.bufferFreed(), ["stays"])
        XCTAssertNil(admission.withdraw(2), "already let in")
    }

    func testAReaderRefusedJustBeforeABufferIsFreedIsLetInWhenItGoesToWait() {
        var admission = BufferAdmission<String>(limit: 1)
        XCTAssertTrue(admission.admit())
        admission.bufferAllocated()
        _ = admission.readFinished()
        // Refused while the one buffer is alive; the buffer is freed before the reader queues,
        // with nobody waiting to be woken.
        XCTAssertFalse(admission.admit())
        XCTAssertEqual(admission.bufferFreed(), [])
        XCTAssertTrue(admission.admitOrEnqueue(1, "late"), "room now: admitted, not left waiting for a wake-up")
        XCTAssertEqual(admission.waiting, 0)
        XCTAssertEqual(admission.reading, 1)
    }
}
