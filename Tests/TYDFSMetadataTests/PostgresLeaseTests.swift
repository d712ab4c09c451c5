import Foundation
import Logging
import TYDFSCore
import TYDFSMetadata
import TYDFSTestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The leader lease and the epoch fence on a real PostgreSQL server (a private one per test):
/// what makes a deposed master harmless, checked where it is enforced, in the database.
final class PostgresLeaseTests: XCTestCase {
    private var postgres: PostgresServer!
    private let logger = Logger(label: "test")

    override func setUpWithError() throws {
        postgres = try PostgresServer()
    }

    override func tearDown() {
        postgres?.stop()
    }

    private func lease() throws -> LeaderLease { LeaderLease(link: try PostgresLink(url: postgres.url(), logger: logger)) }

    func testOneMasterHoldsTheLeaseAndEachTakeoverRaisesTheEpoch() async throws {
        let first = try lease(), second = try lease()
        try await first.prepare()
        try await second.prepare()
        let epoch = try await first.acquire(instance: "a", url: "http://a", seconds: 1)
        XCTAssertEqual(epoch, LeaderEpoch(1))
        let refused = try await second.acquire(instance: "b", url: "http://b", seconds: 1)
        XCTAssertNil(refused, "a live lease cannot be taken")
        var holder = try await second.holder()
        XCTAssertEqual(holder, LeaderLease.Holder(instance: "a", url: "http://a", epoch: LeaderEpoch(1), live: true))
        let renewed = try await first.renew(instance: "a", epoch: LeaderEpoch(1), seconds: 1)
        XCTAssertTrue(renewed)
        try await Task.sleep(for: .milliseconds(1300))
        holder = try await second.holder()
        XCTAssertFalse(holder.live, "not renewed: it lapses on the database's clock")
        let taken = try await second.acquire(instance: "b", url: "http://b", seconds: 5)
        XCTAssertEqual(taken, LeaderEpoch(2))
        let lateRenewal = try await first.renew(instance: "a", epoch: LeaderEpoch(1), seconds: 5)
        XCTAssertFalse(lateRenewal, "the old holder cannot renew a lease another took")
        try await second.release(instance: "b", epoch: LeaderEpoch(2))
        let afterRelease = try await first.acquire(instance: "a", url: "http://a", seconds: 5)
        XCTAssertEqual(afterRelease, LeaderEpoch(3), "a released lease is free at once")
        await first.close()
        await second.close()
    }

    func testARenewalDoesNotWaitForAWriteTransactionButATakeoverDoes() async throws {
        let holder = try lease(), other = try lease()
        try await holder.prepare()
        let acquired = try await holder.acquire(instance: "a", url: "http://a", seconds: 1)
        let epoch = try XCTUnwrap(acquired)
        // A leader's write transaction under way, holding the lease row as `admit` does.
        let writerLink = try PostgresLink(url: postgres.url(), logger: logger)
        defer { Task { await writerLink.close() } }
        let writer = try await writerLink.database()
        try await writer.raw("BEGIN").run()
        _ = try await writer.raw("SELECT epoch FROM leader_lease WHERE id = 1 FOR KEY SHARE").all()
        let started = ContinuousClock.now
        let renewed = try await holder.renew(instance: "a", epoch: epoch, seconds: 1)
        XCTAssertTrue(renewed)
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(1), "the renewal did not wait for the write")
        try await Task.sleep(for: .milliseconds(1200))
        do {
            _ = try await other.acquire(instance: "b", url: "http://b", seconds: 5)
            XCTFail("a takeover must wait for the write transaction that checked the old epoch")
        } catch {
            // lock_timeout: the takeover gave up waiting; it is tried again later.
        }
        try await writer.raw("COMMIT").run()
        let taken = try await other.acquire(instance: "b", url: "http://b", seconds: 5)
        XCTAssertEqual(taken, LeaderEpoch(epoch.value + 1), "once the write ended, the lapsed lease is taken")
        await holder.close()
        await other.close()
    }

    func testAStoreOfAnOldEpochWritesNothingOnceAnotherMasterTookTheLease() async throws {
        let url = postgres.url()
        let old = try lease(), new = try lease()
        try await old.prepare()
        let oldEpoch = try await old.acquire(instance: "old", url: "http://old", seconds: 0.5)
        let oldStore = try await SQLMetadataStore.openPostgres(try PostgresLink(url: url, logger: logger), epoch: try XCTUnwrap(oldEpoch))
        try await oldStore.apply([.putFile(Fixture.file("/before"))])
        try await Task.sleep(for: .milliseconds(800))
        let newEpoch = try await new.acquire(instance: "new", url: "http://new", seconds: 5)
        XCTAssertEqual(newEpoch, LeaderEpoch(2))
        do {
            try await oldStore.apply([.putFile(Fixture.file("/after")), .removeFile(try RemotePath("/before"))])
            XCTFail("a deposed leader's write must be refused")
        } catch let error as TYDFSError {
            XCTAssertEqual(error.code, .notLeader, error.message)
        }
        let newStore = try await SQLMetadataStore.openPostgres(try PostgresLink(url: url, logger: logger), epoch: newEpoch)
        try await newStore.apply([.putFile(Fixture.file("/new"))])
        let namespace = try await newStore.loadNamespace()
        XCTAssertNotNil(namespace.file(at: try RemotePath("/before")), "the refused batch removed nothing")
        XCTAssertNil(namespace.file(at: try RemotePath("/after")), "and added nothing")
        XCTAssertNotNil(namespace.file(at: try RemotePath("/new")))
        try await oldStore.close()
        try await newStore.close()
        await old.close()
        await new.close()
    }

    /// A server that stops answering in the middle of a leader's write (its backend stopped with
    /// SIGSTOP): the write is abandoned after the time limit with `not_leader` (its outcome is
    /// unknown, so the master must reload), and the next write goes through on a new connection.
    func testAWriteTheServerStopsAnsweringIsAbandonedAndTheNextGoesThrough() async throws {
        let holder = try lease()
        try await holder.prepare()
        let acquired = try await holder.acquire(instance: "m", url: "http://m", seconds: 60)
        let epoch = try XCTUnwrap(acquired)
        let link = try PostgresLink(url: postgres.url(), applicationName: "stalled-writer", logger: logger)
        let store = try await SQLMetadataStore.openPostgres(link, epoch: epoch, writeSeconds: 1)
        try await store.apply([.putFile(Fixture.file("/one"))])
        let backend = try XCTUnwrap(Int32(try postgres.psql(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'stalled-writer'").trimmingCharacters(in: .whitespacesAndNewlines)))
        kill(backend, SIGSTOP)
        var stopped = true
        defer { if stopped { kill(backend, SIGCONT) } }
        let started = ContinuousClock.now
        do {
            try await store.apply([.putFile(Fixture.file("/stalled"))])
            XCTFail("a write the server never answers must fail")
        } catch let error as TYDFSError {
            XCTAssertEqual(error.code, .notLeader, error.message)
            XCTAssertTrue(error.message.contains("did not finish a write"), error.message)
        }
        let waited = ContinuousClock.now - started
        kill(backend, SIGCONT)
        stopped = false
        XCTAssertLessThan(waited, .seconds(5), "abandoned after its time limit, not left waiting")
        try await store.apply([.putFile(Fixture.file("/two"))])
        let namespace = try await store.loadNamespace()
        XCTAssertNotNil(namespace.file(at: try RemotePath("/one")))
        XCTAssertNotNil(namespace.file(at: try RemotePath("/two")), "the next write went through on a new connection")
        XCTAssertNil(namespace.file(at: try RemotePath("/stalled")), "the abandoned transaction never committed")
        try await store.close()
        await holder.close()
    }

    func testAStoreReconnectsAfterItsConnectionIsTerminatedAndAfterARestart() async throws {
        let store = try await SQLMetadataStore.openPostgres(try PostgresLink(url: postgres.url(), logger: logger), epoch: nil)
        try await store.apply([.putFile(Fixture.file("/one"))])
        try postgres.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND usename = '\(PostgresServer.user)'")
        // The first use after the drop may fail (the drop is noticed then); the next reconnects.
        try? await store.apply([.putFile(Fixture.file("/maybe"))])
        try await store.apply([.putFile(Fixture.file("/two"))])
        postgres.stop(mode: "immediate", keepData: true)
        do {
            try await store.apply([.putFile(Fixture.file("/down"))])
            XCTFail("a write while the database is down must fail")
        } catch let error as TYDFSError {
            XCTAssertEqual(error.code, .io)
            XCTAssertTrue(error.message.contains("metadata database"), error.message)
        }
        try postgres.start()
        try? await store.apply([.putFile(Fixture.file("/maybe2"))])
        try await store.apply([.putFile(Fixture.file("/three"))])
        let namespace = try await store.loadNamespace()
        for path in ["/one", "/two", "/three"] { XCTAssertNotNil(namespace.file(at: try RemotePath(path)), path) }
        XCTAssertNil(namespace.file(at: try RemotePath("/down")))
        try await store.close()
    }
}
