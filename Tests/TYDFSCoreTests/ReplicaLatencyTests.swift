import TYDFSCore
import XCTest

final class ReplicaLatencyTests: XCTestCase {
    private let a = try! DataKeeperID("a"), b = try! DataKeeperID("b"), c = try! DataKeeperID("c")

    func testBeforeAnyReplicaIsTimedNothingIsSlowAndTheHedgeWaitsTheInitialDelay() {
        let latency = ReplicaLatency()
        XCTAssertEqual(latency.hedgeDelaySeconds(now: 0), Limits.hedgeInitialSeconds)
        XCTAssertFalse(latency.isSlow(a, now: 0))
        XCTAssertEqual(latency.ranked([a, b, c], id: { $0 }, now: 0), [a, b, c])
    }

    func testTheHedgeDelayIsAMultipleOfTheQuickestReplicaWithinItsBounds() {
        var latency = ReplicaLatency()
        latency.record(a, seconds: 0.002, now: 10)
        XCTAssertEqual(latency.hedgeDelaySeconds(now: 10), Limits.hedgeMinimumSeconds, "4 × 2 ms is below the floor")
        latency.record(a, seconds: 0.1, now: 11)
        let smoothed = try! XCTUnwrap(latency.seconds(a, now: 11))
        XCTAssertEqual(smoothed, 0.002 + 0.3 * (0.1 - 0.002), accuracy: 1e-9, "one outlier moves the average by its weight only")
        XCTAssertEqual(latency.hedgeDelaySeconds(now: 11), smoothed * Limits.hedgeLatencyMultiple, accuracy: 1e-9)
        var slowEverywhere = ReplicaLatency()
        slowEverywhere.record(b, seconds: 5, now: 10)
        XCTAssertEqual(slowEverywhere.hedgeDelaySeconds(now: 10), Limits.hedgeMaximumSeconds, "never waits longer than the ceiling")
    }

    func testAReplicaSlowerThanTheHedgeDelayIsAskedLastOthersKeepTheirOrder() {
        var latency = ReplicaLatency()
        latency.record(a, seconds: 0.25, now: 10)
        latency.record(b, seconds: 0.003, now: 10)
        latency.record(c, seconds: 0.004, now: 10)
        XCTAssertTrue(latency.isSlow(a, now: 10))
        XCTAssertFalse(latency.isSlow(b, now: 10))
        XCTAssertEqual(latency.ranked([a, b, c], id: { $0 }, now: 10), [b, c, a])
        XCTAssertEqual(latency.ranked([c, a, b], id: { $0 }, now: 10), [c, b, a], "the spread the caller chose stays")
        // An untimed replica is not held back.
        let d = try! DataKeeperID("d")
        XCTAssertEqual(latency.ranked([d, a, b], id: { $0 }, now: 10), [d, b, a])
    }

    func testAHedgeLostRaisesTheLoserToAtLeastWhatItProvedButNeverLowersIt() {
        var latency = ReplicaLatency()
        latency.recordAtLeast(a, seconds: 0.1, now: 10)
        XCTAssertEqual(latency.seconds(a, now: 10), 0.1)
        latency.recordAtLeast(a, seconds: 0.05, now: 10)
        XCTAssertEqual(latency.seconds(a, now: 10), 0.1, "a shorter lower bound says nothing new")
        latency.record(b, seconds: 0.004, now: 10)
        XCTAssertTrue(latency.isSlow(a, now: 10))
        // A replica that recovers answers quickly again and its average comes down.
        for _ in 0..<20 { latency.record(a, seconds: 0.004, now: 11) }
        XCTAssertFalse(latency.isSlow(a, now: 11))
    }

    func testWhatIsKnownIsForgottenAfterTheMemorySoASlowReplicaIsTriedAgain() {
        var latency = ReplicaLatency()
        latency.record(a, seconds: 0.3, now: 100)
        latency.record(b, seconds: 0.003, now: 100)
        XCTAssertTrue(latency.isSlow(a, now: 100 + Limits.replicaLatencyMemorySeconds))
        let later = 100 + Limits.replicaLatencyMemorySeconds + 1
        XCTAssertNil(latency.seconds(a, now: later))
        XCTAssertFalse(latency.isSlow(a, now: later))
        XCTAssertEqual(latency.ranked([a, b], id: { $0 }, now: later), [a, b])
        // A quick replica that left no longer sets the pace once forgotten.
        XCTAssertEqual(latency.hedgeDelaySeconds(now: later), Limits.hedgeInitialSeconds)
        // A fresh sample starts from itself, not from the forgotten average.
        latency.record(a, seconds: 0.01, now: later)
        XCTAssertEqual(latency.seconds(a, now: later), 0.01)
    }
}
