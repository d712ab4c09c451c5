/// When a master tries to take the leader lease, renews it, and gives leadership up (issue 17):
/// the policy alone, with no clock and no database. Its shell (`LeadershipService`) feeds it
/// what happened (a tick of the monotonic clock, an answer from the database) and performs the
/// action it returns.
///
/// The lease lives in the database, timed by the database's clock. A leader counts its own
/// lease from the moment it *sent* the last renewal that succeeded, so its view always ends
/// before the database's does, and it stops acting as leader (`stepDown`) once
/// `stepDownAfterSeconds` pass without a successful renewal, before a standby can take over.
/// Nothing else depends on that timing: the epoch check in every write is the fence.
public struct LeadershipStateMachine: Sendable, Equatable {
    /// The timing of the lease.
    public struct Timing: Sendable, Equatable {
        /// How long a lease lasts after each renewal, on the database's clock.
        public var leaseSeconds: Double
        /// How often a leader renews, and a standby tries to take a lapsed lease.
        public var attemptEverySeconds: Double
        /// A leader with no successful renewal for this long stops leading; below `leaseSeconds`.
        public var stepDownAfterSeconds: Double

        public init(leaseSeconds: Double, attemptEverySeconds: Double, stepDownAfterSeconds: Double) {
            self.leaseSeconds = leaseSeconds
            self.attemptEverySeconds = attemptEverySeconds
            self.stepDownAfterSeconds = stepDownAfterSeconds
        }

        /// 4 s leases renewed twice a second (a renewal is one small UPDATE): a standby leads
        /// within about 5 s of a leader's death, and a leader rides out 5 failed renewals.
        public static let standard = Timing(leaseSeconds: 4, attemptEverySeconds: 0.5, stepDownAfterSeconds: 3)
    }

    /// What this master is to the cluster, as far as the lease says.
    public enum Role: Sendable, Equatable {
        case standby
        /// Taking over: the namespace is being loaded; nothing is served as leader yet.
        case starting(LeaderEpoch)
        case leading(LeaderEpoch)
    }

    /// What the shell must do next.
    public enum Action: Sendable, Equatable {
        case none
        /// Try to take the lease if it lapsed (and learn who holds it otherwise).
        case tryToAcquire
        /// Load the namespace for `epoch` and start serving as leader; report `started` or `startFailed`.
        case startLeading(LeaderEpoch)
        /// Renew the lease of `epoch`.
        case renew(LeaderEpoch)
        /// Stop every leader service of `epoch` at once and serve as a standby.
        case stepDown(LeaderEpoch, reason: String)
    }

    public private(set) var role: Role = .standby
    public let timing: Timing
    /// When the last renewal that succeeded was sent (or the lease taken), on the shell's clock.
    private var leaseFrom: Double = 0
    /// When the shell last asked the database (a renewal or an attempt to acquire).
    private var lastAttempt: Double?
    /// Whether a request to the database is out (none is started until it answers).
    private var waiting = false

    public init(timing: Timing = .standard) {
        self.timing = timing
    }

    /// Time passed; `now` in seconds on a monotonic clock.
    public mutating func tick(now: Double) -> Action {
        switch role {
        case .standby:
            guard !waiting, isDue(now) else { return .none }
            return begin(.tryToAcquire, now: now)
        case .starting(let epoch), .leading(let epoch):
            if now - leaseFrom >= timing.stepDownAfterSeconds {
                return stepDown(epoch, reason: "the lease was not renewed for \(timing.stepDownAfterSeconds) s")
            }
            guard case .leading = role, !waiting, isDue(now) else { return .none }
            return begin(.renew(epoch), now: now)
        }
    }

    /// An attempt to acquire, sent at `sentAt`, took the lease with `epoch`.
    public mutating func acquired(_ epoch: LeaderEpoch, sentAt: Double) -> Action {
        waiting = false
        guard role == .standby else { return .none }
        role = .starting(epoch)
        leaseFrom = sentAt
        return .startLeading(epoch)
    }

    /// An attempt to acquire found the lease held (or the database unreachable).
    public mutating func acquireFailed() -> Action {
        waiting = false
        return .none
    }

    /// The namespace is loaded and the leader's services run.
    public mutating func started(_ epoch: LeaderEpoch) -> Action {
        guard role == .starting(epoch) else { return .none }
        role = .leading(epoch)
        return .none
    }

    /// Taking over failed (the database dropped while loading): give the lease up.
    public mutating func startFailed(_ epoch: LeaderEpoch, reason: String) -> Action {
        guard role == .starting(epoch) else { return .none }
        return stepDown(epoch, reason: reason)
    }

    /// A renewal of `epoch` sent at `sentAt` succeeded (also while starting: the shell renews
    /// while the namespace loads, which may take longer than a lease).
    public mutating func renewed(_ epoch: LeaderEpoch, sentAt: Double) -> Action {
        waiting = false
        guard role == .leading(epoch) || role == .starting(epoch) else { return .none }
        leaseFrom = max(leaseFrom, sentAt)
        return .none
    }

    /// The database said the lease of `epoch` is no longer ours (another master took it).
    public mutating func renewRefused(_ epoch: LeaderEpoch) -> Action {
        waiting = false
        guard role == .leading(epoch) else { return .none }
        return stepDown(epoch, reason: "another master took the lease")
    }

    /// A renewal got no answer (the database is down or slow): keep leading until the lease
    /// runs out (`tick` steps down then).
    public mutating func renewFailed(_ epoch: LeaderEpoch) -> Action {
        waiting = false
        return .none
    }

    /// A write of `epoch` ended its term, for `reason`: a later epoch holds the lease, or the
    /// database failed during a COMMIT, so whether the write is stored is unknown and what the
    /// leader holds in memory must be rebuilt.
    public mutating func fenced(_ epoch: LeaderEpoch, reason: String) -> Action {
        guard role == .leading(epoch) || role == .starting(epoch) else { return .none }
        return stepDown(epoch, reason: reason)
    }

    private func isDue(_ now: Double) -> Bool {
        guard let lastAttempt else { return true }
        return now - lastAttempt >= timing.attemptEverySeconds
    }

    private mutating func begin(_ action: Action, now: Double) -> Action {
        waiting = true
        lastAttempt = now
        return action
    }

    private mutating func stepDown(_ epoch: LeaderEpoch, reason: String) -> Action {
        role = .standby
        waiting = false
        lastAttempt = nil
        return .stepDown(epoch, reason: reason)
    }
}
