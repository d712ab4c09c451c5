import Foundation
import TYDFSCore
import TYDFSProtocol
import TYDFSTestSupport
import XCTest

/// `tydfs metadata migrate`: a namespace that grew up on SQLite moves to PostgreSQL, and a master
/// started on the database serves the same files (issue 17).
final class MetadataMigrationTests: XCTestCase {
    func testAnSQLiteNamespaceMovesToPostgreSQLAndAMasterServesItFromThere() throws {
        let cluster = try TestCluster(datakeepers: 3)
        defer { cluster.shutdown() }
        let postgres = try PostgresServer()
        defer { postgres.stop() }
        let small = try cluster.makeFile("small", size: 1000, seed: 3)
        let large = try cluster.makeFile("large", size: 300_000, seed: 4)
        try cluster.succeed(["put", small, "/docs/small"])
        try cluster.succeed(["put", large, "/docs/large"])
        try cluster.succeed(["mkdir", "/empty/inside"])
        cluster.killMaster(signal: SIGTERM)

        let url = postgres.url()
        let migrated = try cluster.run(["metadata", "migrate", "--from", cluster.root + "/master", "--to", url], master: false)
        XCTAssertEqual(migrated.exitCode, 0, migrated.stderr)
        XCTAssertTrue(migrated.stdoutText.contains("migrated 2 files (6 chunks), 1 directories"), migrated.stdoutText)
        let again = try cluster.run(["metadata", "migrate", "--from", cluster.root + "/master", "--to", url], master: false)
        XCTAssertEqual(again.exitCode, 1)
        XCTAssertTrue(again.stderr.contains("already holds 2 files"), again.stderr)
        let missing = try cluster.run(["metadata", "migrate", "--from", cluster.root + "/nowhere", "--to", url], master: false)
        XCTAssertEqual(missing.exitCode, 1)
        XCTAssertTrue(missing.stderr.contains("metadata.sqlite does not exist"), missing.stderr)

        // The same data folder (secret, keys) with the metadata on PostgreSQL.
        try FileManager.default.moveItem(atPath: cluster.root + "/master/metadata.sqlite", toPath: cluster.root + "/old.sqlite")
        cluster.masterArguments += ["--metadata", url]
        try cluster.startMaster()
        try cluster.waitUntil("3 datakeepers alive", timeout: 30) { (try? cluster.aliveDataKeepers().count) == 3 }
        for (remote, local) in [("/docs/small", small), ("/docs/large", large)] {
            let out = cluster.root + "/back-" + remote.split(separator: "/").last!
            try cluster.succeed(["get", remote, out])
            XCTAssertEqual(try cluster.contents(out), try cluster.contents(local), remote)
        }
        let listed = try cluster.json(ListResponse.self, ["ls", "/empty"]).entries.map(\.path)
        XCTAssertEqual(listed, ["/empty/inside"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: cluster.root + "/master/metadata.sqlite"), "the master wrote nothing to SQLite")
        let roles = try JSONSerialization.jsonObject(with: cluster.succeed(["masters", "--json"]).stdout) as? [String: Any]
        let entry = (roles?["masters"] as? [[String: Any]])?.first
        XCTAssertEqual(entry?["role"] as? String, "leader")
        XCTAssertEqual(entry?["epoch"] as? Int, 3, "each migration held the lease once (epochs 1 and 2), then the master took it")
    }

    /// A store holding a file `/a` beside `/a/` + U+0301 + `b` (a TYDFS from before names were
    /// split at every `/` byte took the second for a top-level name of its own) cannot be
    /// loaded: a master on it exits, naming both, on SQLite and on PostgreSQL (where it gives
    /// the lease back, rather than every master taking it and failing in turn for ever), and
    /// `metadata migrate` refuses to copy it, writing nothing.
    func testAStoreNoMasterCanLoadStopsTheMasterNamingBoth() throws {
        let cluster = try TestCluster(datakeepers: 1)
        defer { cluster.shutdown() }
        cluster.killMaster(signal: SIGTERM)
        let rows = "('/a', 0, 1, 0, 67108864, 3, NULL, NULL), ('/a/\u{301}b', 0, 1, 0, 67108864, 3, NULL, NULL)"
        let inserted = try cluster.runUntilExit(
            "/usr/bin/env", ["python3", "-c", "import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); db.execute(sys.argv[2]); db.commit()",
                             cluster.root + "/master/metadata.sqlite", "INSERT INTO files VALUES \(rows)"])
        XCTAssertEqual(inserted.status, 0, inserted.output)

        let onSQLite = try cluster.runUntilExit(TestCluster.binary, ["master", "--listen", "127.0.0.1:0", "--data", cluster.root + "/master"])
        XCTAssertEqual(onSQLite.status, 1, onSQLite.output)
        XCTAssertTrue(onSQLite.output.contains("/a/\u{301}b") && onSQLite.output.contains("rename one of them"), onSQLite.output)

        let postgres = try PostgresServer()
        defer { postgres.stop() }
        let url = postgres.url()
        let migrated = try cluster.run(["metadata", "migrate", "--from", cluster.root + "/master", "--to", url], master: false)
        XCTAssertEqual(migrated.exitCode, 1, migrated.stderr)
        XCTAssertTrue(migrated.stderr.contains("rename one of them"), migrated.stderr)
        XCTAssertEqual(try postgres.psql("SELECT count(*) FROM files").trimmingCharacters(in: .whitespacesAndNewlines), "0", "nothing copied")

        // The same rows as a master on PostgreSQL from before would have written them.
        _ = try postgres.psql("INSERT INTO files VALUES \(rows)")
        let port = try PostgresServer.freePort()
        let onPostgres = try cluster.runUntilExit(
            TestCluster.binary, ["master", "--listen", "127.0.0.1:\(port)", "--data", cluster.root + "/pg-master", "--metadata", url])
        let exited = Date().timeIntervalSince1970
        XCTAssertEqual(onPostgres.status, 1, onPostgres.output)
        XCTAssertTrue(onPostgres.output.contains("/a/\u{301}b") && onPostgres.output.contains("rename one of them"), onPostgres.output)
        // It took the lease and gave it back on its way out: the lease ended before the master
        // exited, where left alone it would last until 4 s after its last renewal.
        let lease = try postgres.psql("SELECT epoch, extract(epoch FROM expires_at) FROM leader_lease WHERE id = 1")
            .trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "|")
        XCTAssertEqual(lease.count, 2, "\(lease)")
        XCTAssertGreaterThan(Int(lease.first ?? "") ?? 0, 0, "the master took the lease")
        XCTAssertLessThan(Double(lease.last ?? "") ?? .infinity, exited, "the lease ended before the master exited")
    }
}
