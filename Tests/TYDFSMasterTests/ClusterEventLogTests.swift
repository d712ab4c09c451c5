@testable import TYDFSMaster
import TYDFSProtocol
import XCTest

final class ClusterEventLogTests: XCTestCase {
    func testReadersPageByIDAndTheOldestEventsFallOff() {
        var log = ClusterEventLog(capacity: 3)
        XCTAssertEqual(log.after(0).latest, 0)
        XCTAssertEqual(log.after(0).events, [])
        for index in 1...5 { log.append(.repair, "event \(index)", timeMillis: Int64(index)) }
        let all = log.after(0)
        XCTAssertEqual(all.latest, 5)
        XCTAssertEqual(all.events.map(\.id), [3, 4, 5], "only the newest 3 are kept, oldest first")
        XCTAssertEqual(log.after(4).events.map(\.message), ["event 5"])
        XCTAssertEqual(log.after(5).events, [])
        XCTAssertEqual(log.after(99).events, [], "an id from the future (a restarted master) returns nothing")
    }
}
