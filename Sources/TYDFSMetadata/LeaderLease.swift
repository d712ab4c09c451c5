import SQLKit
import TYDFSCore

/// Who leads the masters that share one PostgreSQL database (issue 17): one row holding the
/// leader's instance id, its URL, the epoch and when the lease expires, on the database's clock
/// (so the masters' clocks never have to agree).
///
/// Taking a lapsed lease raises the epoch; the metadata store of a leader checks, inside each
/// write transaction, that the row still carries its epoch (`admit`).
/// Locks: a takeover locks the row `FOR UPDATE`, which waits for every write transaction that
/// checked the old epoch; a renewal's `UPDATE` only conflicts with other updates.
public final class LeaderLease: Sendable {
    /// The lease as the database holds it.
    public struct Holder: Sendable, Equatable {
        /// The leading process (a random id per start), "" before anyone led.
        public var instance: String
        /// Where clients reach it.
        public var url: String
        public var epoch: LeaderEpoch
        /// Whether the lease has not expired yet.
        public var live: Bool

        public init(instance: String, url: String, epoch: LeaderEpoch, live: Bool) {
            self.instance = instance
            self.url = url
            self.epoch = epoch
            self.live = live
        }
    }

    private let link: PostgresLink

    public init(link: PostgresLink) {
        self.link = link
    }

    static let schema = [
        """
        CREATE TABLE IF NOT EXISTS leader_lease (
            id INTEGER PRIMARY KEY, instance TEXT NOT NULL, url TEXT NOT NULL, epoch BIGINT NOT NULL,
            expires_at TIMESTAMPTZ NOT NULL)
        """,
        "INSERT INTO leader_lease (id, instance, url, epoch, expires_at) VALUES (1, '', '', 0, 'epoch') ON CONFLICT DO NOTHING",
    ]

    /// Makes the table if needed.
    public func prepare() async throws {
        let database = try await link.database()
        for statement in Self.schema { try await database.raw(SQLQueryString(statement)).run() }
    }

    /// Takes the lease for `seconds` if it has lapsed, as `instance` reachable at `url`, and
    /// returns the new epoch; nil if another master holds it.
    public func acquire(instance: String, url: String, seconds: Double) async throws -> LeaderEpoch? {
        let rows = try await link.database().raw("""
            WITH locked AS (SELECT id FROM leader_lease WHERE id = 1 FOR UPDATE)
            UPDATE leader_lease SET instance = \(bind: instance), url = \(bind: url), epoch = epoch + 1,
                expires_at = clock_timestamp() + make_interval(secs => \(bind: seconds))
            FROM locked WHERE leader_lease.id = locked.id AND expires_at < clock_timestamp() RETURNING epoch
            """).all()
        return try rows.first.map { LeaderEpoch(try $0.decode(column: "epoch", as: Int64.self)) }
    }

    /// Extends the lease of `epoch` by `seconds` from now; false if another master took it.
    public func renew(instance: String, epoch: LeaderEpoch, seconds: Double) async throws -> Bool {
        let rows = try await link.database().raw("""
            UPDATE leader_lease SET expires_at = clock_timestamp() + make_interval(secs => \(bind: seconds))
            WHERE id = 1 AND instance = \(bind: instance) AND epoch = \(bind: epoch.value) RETURNING epoch
            """).all()
        return !rows.isEmpty
    }

    /// Ends the lease of `epoch` now (a leader shutting down), so a standby takes over at once.
    public func release(instance: String, epoch: LeaderEpoch) async throws {
        try await link.database().raw("""
            UPDATE leader_lease SET expires_at = clock_timestamp() - interval '1 second'
            WHERE id = 1 AND instance = \(bind: instance) AND epoch = \(bind: epoch.value)
            """).run()
    }

    /// Closes the lease's connection.
    public func close() async { await link.close() }

    /// The lease as it stands.
    public func holder() async throws -> Holder {
        let rows = try await link.database().raw("""
            SELECT instance, url, epoch, expires_at > clock_timestamp() AS live FROM leader_lease WHERE id = 1
            """).all()
        guard let row = rows.first else { throw TYDFSError(.internal, "the leader_lease table has no row") }
        return Holder(
            instance: try row.decode(column: "instance", as: String.self), url: try row.decode(column: "url", as: String.self),
            epoch: LeaderEpoch(try row.decode(column: "epoch", as: Int64.self)), live: try row.decode(column: "live", as: Bool.self))
    }

    /// Refuses the write transaction under way on `database` unless the lease carries `epoch`.
    /// The row stays `FOR KEY SHARE` locked until the transaction ends: a takeover (which locks
    /// it `FOR UPDATE`) waits for the transaction, a renewal (a plain `UPDATE` of the expiry)
    /// does not, so a long batch never costs the leader its lease.
    static func admit(_ epoch: LeaderEpoch, on database: any SQLDatabase) async throws {
        let rows = try await database.raw("SELECT epoch FROM leader_lease WHERE id = 1 FOR KEY SHARE").all()
        let current = try rows.first.map { LeaderEpoch(try $0.decode(column: "epoch", as: Int64.self)) }
        guard current == epoch else {
            throw TYDFSError(.notLeader, "this master led in epoch \(epoch), but the lease is now in epoch \(current.map(String.init(describing:)) ?? "none"): it no longer leads")
        }
    }
}
