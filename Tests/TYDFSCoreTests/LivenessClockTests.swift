import TYDFSCore
import XCTest

final class LivenessClockTests: XCTestCase {
    func testReadingsCloseTogetherFollowTheMonotonicClock() {
        var clock = LivenessClock(longestGapSeconds: 1)
        for step in 0...40 {
            let now = 100 + Double(step) * 0.25
            let reading = clock.read(now)
            XCTAssertEqual(reading.seconds, now)
            XCTAssertEqual(reading.pauseSeconds, 0)
        }
        XCTAssertEqual(clock.pausedSeconds, 0)
    }

    func testAGapLongerThanTheLongestIsLeftOutBeyondTheLongest() {
        var clock = LivenessClock(longestGapSeconds: 1)
        XCTAssertEqual(clock.read(100).seconds, 100)
        // Stopped for 5 s: 4 s of it are the master's own pause.
        let woke = clock.read(105)
        XCTAssertEqual(woke.pauseSeconds, 4)
        XCTAssertEqual(woke.seconds, 101)
        XCTAssertEqual(clock.read(105.5).seconds, 101.5, "time runs on normally after the pause")
        // A second pause adds up.
        let again = clock.read(110.5)
        XCTAssertEqual(again.pauseSeconds, 4)
        XCTAssertEqual(again.seconds, 102.5)
        XCTAssertEqual(clock.pausedSeconds, 8)
        // A gap of exactly the longest is not a pause.
        XCTAssertEqual(clock.read(111.5).pauseSeconds, 0)
    }

    func testAHeartbeatTimeoutMeasuredOnItSurvivesTheMastersOwnPause() {
        var clock = LivenessClock(longestGapSeconds: 1)
        var registry = NodeRegistry(heartbeatTimeoutSeconds: 2)
        let id = try! DataKeeperID("dk1")
        registry.heartbeat(
            DataKeeperState(id: id, address: "127.0.0.1:1", capacityBytes: 10, usedBytes: 0, chunkCount: 0, reportedInFlight: 0,
                            chunksServed: 0, lastHeartbeatSeconds: 0),
            now: clock.read(50).seconds)
        // The master is stopped for 5 s; on waking, before reading the heartbeats queued meanwhile:
        XCTAssertTrue(registry.isAlive(id, now: clock.read(55).seconds), "its own pause is not the datakeeper's silence")
        // Real silence still counts: no heartbeat for 2 s of the master running.
        for step in 1...8 { _ = clock.read(55 + Double(step) * 0.25) }
        XCTAssertFalse(registry.isAlive(id, now: clock.read(57.25).seconds))
    }

    func testAClockThatSeemsToGoBackIsNotAPauseAndNeverRunsBackwards() {
        var clock = LivenessClock(longestGapSeconds: 1)
        _ = clock.read(100)
        XCTAssertEqual(clock.read(99.5).pauseSeconds, 0)
        XCTAssertEqual(clock.read(100.8).pauseSeconds, 0, "measured from the latest reading, not the earlier one")
    }
}
