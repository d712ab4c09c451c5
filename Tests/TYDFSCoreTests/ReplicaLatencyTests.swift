import TYDFSCore
import XCTest

final class ReplicaLatencyTests: XCTestCase {
    private let a = try! DataKeeperID("a"), b = try! DataKeeperID("b"), c = try! DataKeeperID("c")

    func testBeforeAnyReplicaIsTimedNothingIsSlowAndTheHedgeWaitsTheInitialDelay() {
        let latency = ReplicaLatency()
        XCTAssertEqual(latency.hedgeDelaySeconds, Limits.hedgeInitialSeconds)
        XCTAssertFalse(latency.isSlow(a))
        XCTAssertEqual(latency.ranked([a, b, c], id: { $0 }), [a, b, c])
    }

    func testTheHedgeDelayIsAMultipleOfTheQuickestReplicaWithinItsBounds() {
        var latency = ReplicaLatency()
        latency.record(a, seconds: 0.002)
        XCTAssertEqual(latency.hedgeDelaySeconds, Limits.hedgeMinimumSeconds, "4 × 2 ms is below the floor")
        latency.record(a, seconds: 0.1)
        let smoothed = try! XCTUnwrap(latency.seconds(a))
        XCTAssertEqual(smoothed, 0.002 + 0.3 * (0.1 - 0.002), accuracy: 1e-9, "one outlier moves the average by its weight only")
        XCTAssertEqual(latency.hedgeDelaySeconds, smoothed * Limits.hedgeLatencyMultiple, accuracy: 1e-9)
        var slowEverywhere = ReplicaLatency()
        slowEverywhere.record(b, seconds: 5)
        XCTAssertEqual(slowEverywhere.hedgeDelaySeconds, Limits.hedgeMaximumSeconds, "never waits longer than the ceiling")
    }

    func testAReplicaSlowerThanTheHedgeDelayIsAskedLastOthersKeepTheirOrder() {
        var latency = ReplicaLatency()
        latency.record(a, seconds: 0.25)
        latency.record(b, seconds: 0.003)
        latency.record(c, seconds: 0.004)
        XCTAssertTrue(latency.isSlow(a))
        XCTAssertFalse(latency.isSlow(b))
        XCTAssertEqual(latency.ranked([a, b, c], id: { $0 }), [b, c, a])
        XCTAssertEqual(latency.ranked([c, a, b], id: { $0 }), [c, b, a], "the spread the caller chose stays")
        // An untimed replica is not held back.
        let d = try! DataKeeperID("d")
        XCTAssertEqual(latency.ranked([d, a, b], id: { $0 }), [d, b, a])
    }

    func testAHedgeLostRaisesTheLoserToAtLeastWhatItProvedButNeverLowersIt() {
        var latency = ReplicaLatency()
        latency.recordAtLeast(a, seconds: 0.1)
        XCTAssertEqual(latency.seconds(a), 0.1)
        latency.recordAtLeast(a, seconds: 0.05)
        XCTAssertEqual(latency.seconds(a), 0.1, "a shorter lower bound says nothing new")
        latency.record(b, seconds: 0.004)
        XCTAssertTrue(latency.isSlow(a))
        // A replica that recovers answers quickly again and its average comes down.
        for _ in 0..<20 { latency.record(a, seconds: 0.004) }
        XCTAssertFalse(latency.isSlow(a))
    }
}
