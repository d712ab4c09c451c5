import TYDFSCore
import XCTest

/// The leadership policy with no database and no clock: every event in every role, and the
/// timing rules (a leader steps down before its lease can be taken; one request at a time).
final class LeadershipStateMachineTests: XCTestCase {
    private let timing = LeadershipStateMachine.Timing.standard
    private let one = LeaderEpoch(1), two = LeaderEpoch(2)

    /// A machine that took the lease of `epoch` at time `at` and finished loading.
    private func leading(_ epoch: LeaderEpoch, at: Double = 0) -> LeadershipStateMachine {
        var machine = LeadershipStateMachine(timing: timing)
        XCTAssertEqual(machine.tick(now: at), .tryToAcquire)
        XCTAssertEqual(machine.acquired(epoch, sentAt: at), .startLeading(epoch))
        XCTAssertEqual(machine.started(epoch), .none)
        XCTAssertEqual(machine.role, .leading(epoch))
        return machine
    }

    func testAStandbyTriesOncePerIntervalAndNeverWithARequestOut() {
        var machine = LeadershipStateMachine(timing: timing)
        XCTAssertEqual(machine.role, .standby)
        XCTAssertEqual(machine.tick(now: 10), .tryToAcquire)
        let interval = timing.attemptEverySeconds
        XCTAssertEqual(machine.tick(now: 10 + 2 * interval), .none, "the first attempt has not answered")
        XCTAssertEqual(machine.acquireFailed(), .none)
        XCTAssertEqual(machine.tick(now: 10 + 2 * interval), .tryToAcquire, "answered, and an interval has passed")
        XCTAssertEqual(machine.acquireFailed(), .none)
        XCTAssertEqual(machine.tick(now: 10 + 2.5 * interval), .none, "within the interval")
        XCTAssertEqual(machine.tick(now: 10 + 3 * interval), .tryToAcquire)
        XCTAssertEqual(machine.role, .standby)
    }

    func testTakingTheLeaseStartsLeadingOnlyOnceLoaded() {
        var machine = LeadershipStateMachine(timing: timing)
        _ = machine.tick(now: 0)
        XCTAssertEqual(machine.acquired(one, sentAt: 0), .startLeading(one))
        XCTAssertEqual(machine.role, .starting(one))
        XCTAssertEqual(machine.tick(now: 1.5 * timing.attemptEverySeconds), .none, "no renewal while loading")
        XCTAssertEqual(machine.started(two), .none, "another epoch's start is ignored")
        XCTAssertEqual(machine.role, .starting(one))
        XCTAssertEqual(machine.started(one), .none)
        XCTAssertEqual(machine.role, .leading(one))
        XCTAssertEqual(machine.tick(now: 1.6 * timing.attemptEverySeconds), .renew(one))
    }

    func testALoadThatOutlastsTheLeaseOrFailsStepsDown() {
        var slow = LeadershipStateMachine(timing: timing)
        _ = slow.tick(now: 0)
        _ = slow.acquired(one, sentAt: 0)
        XCTAssertEqual(slow.tick(now: timing.stepDownAfterSeconds), .stepDown(one, reason: "the lease was not renewed for \(timing.stepDownAfterSeconds) s"))
        XCTAssertEqual(slow.role, .standby)
        XCTAssertEqual(slow.started(one), .none, "a load that finishes after stepping down does not lead")
        XCTAssertEqual(slow.role, .standby)

        // Renewals made while loading keep the lease: a load longer than the lease is no failover.
        var renewing = LeadershipStateMachine(timing: timing)
        _ = renewing.tick(now: 0)
        _ = renewing.acquired(one, sentAt: 0)
        XCTAssertEqual(renewing.renewed(one, sentAt: timing.stepDownAfterSeconds - 0.5), .none)
        XCTAssertEqual(renewing.tick(now: timing.stepDownAfterSeconds + 1), .none, "renewed while loading: no step-down, no renewal of its own")
        XCTAssertEqual(renewing.started(one), .none)
        XCTAssertEqual(renewing.role, .leading(one))

        var failing = LeadershipStateMachine(timing: timing)
        _ = failing.tick(now: 0)
        _ = failing.acquired(one, sentAt: 0)
        XCTAssertEqual(failing.startFailed(one, reason: "database gone"), .stepDown(one, reason: "database gone"))
        XCTAssertEqual(failing.role, .standby)
        XCTAssertEqual(failing.tick(now: 0.1), .tryToAcquire, "a standby again tries at once")
    }

    func testALeaderRenewsEachIntervalAndKeepsLeadingWhileRenewalsSucceed() {
        var machine = leading(one)
        var now = 0.0
        for _ in 0..<20 {
            now += timing.attemptEverySeconds
            XCTAssertEqual(machine.tick(now: now), .renew(one))
            XCTAssertEqual(machine.tick(now: now + timing.attemptEverySeconds / 2), .none, "one renewal at a time")
            XCTAssertEqual(machine.renewed(one, sentAt: now), .none)
        }
        XCTAssertEqual(machine.role, .leading(one))
    }

    func testALeaderStepsDownWhenItsLeaseIsTakenOrItsWriteIsFenced() {
        var taken = leading(one)
        XCTAssertEqual(taken.tick(now: timing.attemptEverySeconds), .renew(one))
        XCTAssertEqual(taken.renewRefused(one), .stepDown(one, reason: "another master took the lease"))
        XCTAssertEqual(taken.role, .standby)

        var fenced = leading(one)
        XCTAssertEqual(fenced.fenced(two, reason: "epoch 3 leads"), .none, "a fence of another epoch is not ours")
        XCTAssertEqual(fenced.fenced(one, reason: "epoch 2 leads"), .stepDown(one, reason: "epoch 2 leads"), "the write's own reason")
        XCTAssertEqual(fenced.role, .standby)
        XCTAssertEqual(fenced.fenced(one, reason: "epoch 2 leads"), .none, "already down")
    }

    func testFailedRenewalsKeepTheLeaderOnlyUntilItsOwnViewOfTheLeaseEnds() {
        let interval = timing.attemptEverySeconds
        var machine = leading(one, at: 100)
        let renewedAt = 100 + interval
        XCTAssertEqual(machine.tick(now: renewedAt), .renew(one))
        XCTAssertEqual(machine.renewed(one, sentAt: renewedAt), .none)
        // The database stops answering: the lease counts from the last renewal *sent*.
        var now = renewedAt
        while now + interval < renewedAt + timing.stepDownAfterSeconds {
            now += interval
            XCTAssertEqual(machine.tick(now: now), .renew(one))
            XCTAssertEqual(machine.renewFailed(one), .none)
            XCTAssertEqual(machine.role, .leading(one))
        }
        XCTAssertEqual(machine.tick(now: renewedAt + timing.stepDownAfterSeconds), .stepDown(one, reason: "the lease was not renewed for \(timing.stepDownAfterSeconds) s"))
        XCTAssertLessThan(timing.stepDownAfterSeconds, timing.leaseSeconds, "the leader gives up before anyone can take its lease")
    }

    func testALateRenewalAnswerNeitherExtendsAnOldTermNorMovesTheLeaseBack() {
        var machine = leading(one)
        let interval = timing.attemptEverySeconds
        XCTAssertEqual(machine.tick(now: 2 * interval), .renew(one))
        XCTAssertEqual(machine.renewed(one, sentAt: 2 * interval), .none)
        XCTAssertEqual(machine.tick(now: 3 * interval), .renew(one))
        // An answer that names an earlier send time does not shorten what was already earned.
        XCTAssertEqual(machine.renewed(one, sentAt: interval), .none)
        XCTAssertEqual(machine.tick(now: 2 * interval + timing.stepDownAfterSeconds - 0.01), .renew(one))
        // After stepping down, answers of the old term change nothing.
        var down = leading(one)
        _ = down.fenced(one, reason: "epoch 2 leads")
        XCTAssertEqual(down.renewed(one, sentAt: 10), .none)
        XCTAssertEqual(down.renewRefused(one), .none)
        XCTAssertEqual(down.role, .standby)
        XCTAssertEqual(down.acquired(two, sentAt: 11), .startLeading(two), "a new term starts cleanly")
    }

    func testEveryEventInEveryRoleLeavesAConsistentMachine() {
        // From each role, each event: the role after it is one the rules allow, and a machine
        // never leads an epoch it did not acquire.
        let roles: [(String, () -> LeadershipStateMachine)] = [
            ("standby", { LeadershipStateMachine(timing: self.timing) }),
            ("starting", {
                var machine = LeadershipStateMachine(timing: self.timing)
                _ = machine.tick(now: 0)
                _ = machine.acquired(self.one, sentAt: 0)
                return machine
            }),
            ("leading", { self.leading(self.one) }),
        ]
        let events: [(String, (inout LeadershipStateMachine) -> LeadershipStateMachine.Action)] = [
            ("tick", { $0.tick(now: 0.5) }), ("late tick", { $0.tick(now: 60) }),
            ("acquired 2", { $0.acquired(LeaderEpoch(2), sentAt: 0.5) }), ("acquireFailed", { $0.acquireFailed() }),
            ("started 1", { $0.started(LeaderEpoch(1)) }), ("startFailed 1", { $0.startFailed(LeaderEpoch(1), reason: "x") }),
            ("renewed 1", { $0.renewed(LeaderEpoch(1), sentAt: 0.5) }), ("renewRefused 1", { $0.renewRefused(LeaderEpoch(1)) }),
            ("renewFailed 1", { $0.renewFailed(LeaderEpoch(1)) }), ("fenced 1", { $0.fenced(LeaderEpoch(1), reason: "x") }),
        ]
        for (roleName, make) in roles {
            for (eventName, event) in events {
                var machine = make()
                let before = machine.role
                let action = event(&machine)
                let after = machine.role
                switch action {
                case .stepDown(let epoch, _):
                    XCTAssertEqual(after, .standby, "\(roleName) + \(eventName)")
                    XCTAssertNotEqual(before, .standby, "\(roleName) + \(eventName): only a leader steps down")
                    XCTAssertEqual(epoch, one)
                case .startLeading(let epoch):
                    XCTAssertEqual(before, .standby, "\(roleName) + \(eventName)")
                    XCTAssertEqual(after, .starting(epoch))
                default:
                    switch after {
                    case .standby: XCTAssertEqual(before, .standby, "\(roleName) + \(eventName): left leadership without a stepDown")
                    case .starting(let epoch): XCTAssertEqual(before, .starting(epoch), "\(roleName) + \(eventName)")
                    case .leading(let epoch): XCTAssertTrue(before == .leading(epoch) || before == .starting(epoch), "\(roleName) + \(eventName)")
                    }
                }
            }
        }
    }
}
