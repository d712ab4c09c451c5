import NIOConcurrencyHelpers
import TYDFSTestSupport
import XCTest

@testable import TYDFSClient

/// The one loop that renews a client's open uploads, without processes: renewals are counted
/// closures, and the period is 100 ms instead of 5 minutes.
final class UploadRenewalsTests: XCTestCase {
    private let period = 0.1

    /// Counts each upload's renewals.
    private final class Counts: Sendable {
        private let counts = NIOLockedValueBox([String: Int]())
        func renewed(_ name: String) { counts.withLockedValue { $0[name, default: 0] += 1 } }
        subscript(_ name: String) -> Int { counts.withLockedValue { $0[name, default: 0] } }
    }

    func testAnUploadOpenForAWholePeriodIsRenewedEveryPeriodUntilRemoved() async throws {
        let renewals = UploadRenewals(periodSeconds: period)
        let counts = Counts()
        XCTAssertFalse(renewals.status.looping, "no loop before the first put")
        let opened = ContinuousClock.now
        let long = renewals.add { counts.renewed("long") }
        XCTAssertTrue(renewals.status.looping)
        // A put done at once is never renewed.
        renewals.remove(renewals.add { counts.renewed("short") })
        // Nothing is renewed before a whole period has passed since it opened (the loop looks
        // every half period).
        try await Task.sleep(for: .seconds(period * 0.7))
        if ContinuousClock.now - opened < .seconds(period) { XCTAssertEqual(counts["long"], 0, "renewed before a whole period") }
        try await waitUntil("the long upload renewed 3 times") { counts["long"] >= 3 }
        XCTAssertGreaterThanOrEqual(ContinuousClock.now - opened, .seconds(period * 3), "at most once a period")
        XCTAssertEqual(counts["short"], 0)
        XCTAssertEqual(renewals.status.open, 1)

        renewals.remove(long)
        let renewedWhenRemoved = counts["long"]
        try await waitUntil("the loop ends once no upload is open") { !renewals.status.looping }
        XCTAssertLessThanOrEqual(counts["long"], renewedWhenRemoved + 1, "a removed upload is no longer renewed")

        // The next put starts the loop again.
        let next = renewals.add { counts.renewed("next") }
        XCTAssertTrue(renewals.status.looping)
        try await waitUntil("the next upload renewed") { counts["next"] >= 1 }
        renewals.remove(next)
        renewals.stop()
    }

    func testRemovingAnUploadCancelsItsRenewalUnderWay() async throws {
        let renewals = UploadRenewals(periodSeconds: period)
        let state = NIOLockedValueBox((started: 0, cancelled: false))
        let hung = renewals.add {
            state.withLockedValue { $0.started += 1 }
            // A renewal stuck on an unreachable master, say.
            try? await Task.sleep(for: .seconds(60))
            if Task.isCancelled { state.withLockedValue { $0.cancelled = true } }
        }
        try await waitUntil("the renewal started") { state.withLockedValue { $0.started } > 0 }
        // No second renewal of the upload while the first is under way.
        try await Task.sleep(for: .seconds(period * 4))
        XCTAssertEqual(state.withLockedValue { $0.started }, 1)
        renewals.remove(hung)
        try await waitUntil("the renewal was cancelled") { state.withLockedValue { $0.cancelled } }
        renewals.stop()
    }

    func testStopEndsTheLoopAndRenewsNothingMore() async throws {
        let renewals = UploadRenewals(periodSeconds: period)
        let counts = Counts()
        _ = renewals.add { counts.renewed("open") }
        try await waitUntil("renewed once") { counts["open"] >= 1 }
        renewals.stop()
        XCTAssertFalse(renewals.status.looping)
        let renewedAtStop = counts["open"]
        _ = renewals.add { counts.renewed("after") }
        XCTAssertFalse(renewals.status.looping, "a stopped client starts no loop")
        try await Task.sleep(for: .seconds(period * 6))
        XCTAssertEqual(counts["open"], renewedAtStop)
        XCTAssertEqual(counts["after"], 0)
    }
}
