import Foundation
import NIOConcurrencyHelpers
import TYDFSCore
import TYDFSProtocol
import TYDFSTestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Three masters on one private PostgreSQL server, four datakeepers, real processes on loopback
/// (issue 17): the leader killed, paused past its lease, cut from the database, and the database
/// restarted, each under a client putting files in a loop.
final class MasterFailoverTests: XCTestCase {
    private var postgres: PostgresServer!
    private(set) var root = ""
    private var ports: [Int] = []
    private var masters: [Int: Process] = [:]
    private var datakeepers: [Process] = []
    private var sources: [String] = []
    /// The put loops of the running test, reported on if it fails.
    private var loops: [PutLoop] = []
    private var logIndex = 0

    private var urls: [String] { ports.map { "http://127.0.0.1:\($0)" } }
    var masterList: String { urls.joined(separator: ",") }

    override func setUpWithError() throws {
        postgres = try PostgresServer()
        root = NSTemporaryDirectory() + "tydfs-ha-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: root + "/logs", withIntermediateDirectories: true)
        ports = try (0..<3).map { _ in try PostgresServer.freePort() }
        // A database user per master, so one master alone can be cut off from the database.
        try postgres.psql("CREATE ROLE m0 LOGIN SUPERUSER; CREATE ROLE m1 LOGIN SUPERUSER; CREATE ROLE m2 LOGIN SUPERUSER")
        try tydfs(["keygen", "--out", root + "/cluster.secret"], master: false)
        // The first master makes the admin key; the others are given the same keys file.
        try startMaster(0)
        try waitUntil("the admin config", timeout: 20) { FileManager.default.fileExists(atPath: self.root + "/m0/admin-client.conf") }
        for index in 1..<3 {
            try FileManager.default.createDirectory(atPath: root + "/m\(index)", withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: root + "/m0/access-keys.json", toPath: root + "/m\(index)/access-keys.json")
            try startMaster(index)
        }
        for index in 1...4 {
            datakeepers.append(try spawn([
                "datakeeper", "--master", masterList, "--listen", "127.0.0.1:0", "--data", root + "/dk\(index)", "--id", "dk\(index)",
                "--heartbeat-interval", "200ms", "--secret-file", root + "/cluster.secret",
            ], name: "dk\(index)"))
        }
        try waitUntil("4 datakeepers alive", timeout: 30) {
            let nodes = try? JSONDecoder().decode(NodesResponse.self, from: self.tydfs(["nodes", "--json"], check: false).stdout)
            return nodes?.nodes.filter { $0.state == .alive }.count == 4
        }
        sources = try (0..<4).map { index in
            let path = root + "/source\(index)"
            var generator = SeededGenerator(seed: UInt64(index + 1))
            try Data((0..<(50_000 + index * 30_000)).map { _ in UInt8.random(in: 0...255, using: &generator) }).write(to: URL(fileURLWithPath: path))
            return path
        }
    }

    override func tearDown() {
        reportOnFailure()
        // A test that failed midway left its loop running: stopped while the servers still run.
        for loop in loops { loop.stop() }
        for process in datakeepers + Array(masters.values) { TestCluster.end(process, signal: SIGKILL) }
        datakeepers = []
        loops = []
        masters = [:]
        postgres?.stop()
        if ProcessInfo.processInfo.environment["TYDFS_KEEP_TEST_DATA"] == nil { try? FileManager.default.removeItem(atPath: root) }
    }

    // MARK: - Tests

    func testKillingTheLeaderHandsOverWithinTenSecondsAndTheLoopLosesNothing() throws {
        let loop = PutLoop(test: self)
        loop.start()
        try waitUntil("puts before the kill", timeout: 30) { loop.acknowledged.count >= 5 }
        let stream = try StreamPut(test: self, remote: "/stream/across-the-kill", seed: 11)
        try stream.sendFirstHalf()
        let leader = try leaderIndex()
        let killedAt = Date()
        kill(masters[leader]!.processIdentifier, SIGKILL)
        masters[leader]!.waitUntilExit()
        masters[leader] = nil
        var newLeader: Int?
        try waitUntil("a standby to lead", timeout: 10) {
            newLeader = try? self.leaderIndex()
            return newLeader != nil && newLeader != leader
        }
        let handover = Date().timeIntervalSince(killedAt)
        let before = loop.acknowledged.count
        try waitUntil("puts after the handover", timeout: 30) { loop.acknowledged.count >= before + 3 }
        loop.stop()
        print("failover: leader m\(leader) killed; m\(newLeader!) leads \(String(format: "%.1f", handover)) s later")
        XCTAssertLessThanOrEqual(handover, 10)
        XCTAssertEqual(loop.failures, [], "every put of the loop succeeded: the client found the new leader and retried")
        try checkEveryAcknowledgedFile(loop)
        try stream.finishAndCheck()
    }

    func testAPausedLeaderIsFencedItsWritesTakeNoEffectAndItStepsDown() throws {
        let loop = PutLoop(test: self)
        loop.start()
        try waitUntil("puts before the pause", timeout: 30) { loop.acknowledged.count >= 3 }
        let stream = try StreamPut(test: self, remote: "/stream/across-the-pause", seed: 12)
        try stream.sendFirstHalf()
        let leader = try leaderIndex()
        let paused = masters[leader]!
        kill(paused.processIdentifier, SIGSTOP)
        // A write sent to the paused leader alone: it is answered only once the leader runs again.
        let write = try spawn(["mkdir", "/written-by-the-paused-leader", "--master", urls[leader]], name: "cli", environment: cliEnvironment())
        let others = (0..<3).filter { $0 != leader }
        var newLeader: Int?
        try waitUntil("a standby to lead", timeout: 15) {
            newLeader = others.first { (try? self.role(of: $0))?.role == "leader" }
            return newLeader != nil
        }
        let takenEpoch = try role(of: newLeader!).epoch
        let before = loop.acknowledged.count
        try waitUntil("puts under the new leader", timeout: 30) { loop.acknowledged.count >= before + 1 }
        // The stream's next call goes to the paused leader it knew, which never answers.
        try stream.finishAndCheck()
        kill(paused.processIdentifier, SIGCONT)
        write.waitUntilExit()
        XCTAssertNotEqual(write.terminationStatus, 0, "the deposed leader refused the write")
        try waitUntil("the old leader to step down", timeout: 10) { (try? self.role(of: leader))?.role == "standby" }
        let after = loop.acknowledged.count
        try waitUntil("more puts after the old leader woke", timeout: 30) { loop.acknowledged.count >= after + 2 }
        loop.stop()
        XCTAssertEqual(try role(of: newLeader!).role, "leader", "the new leader still leads")
        XCTAssertEqual(try role(of: newLeader!).epoch, takenEpoch)
        let listed = try JSONDecoder().decode(ListResponse.self, from: tydfs(["ls", "/", "--json"]).stdout).entries.map(\.path)
        XCTAssertFalse(listed.contains("/written-by-the-paused-leader"), "the deposed leader's write took no effect: \(listed)")
        let log = logs(of: "m\(leader)")
        XCTAssertTrue(log.contains("stepping down"), "the old leader says it stepped down")
        // Its orders: datakeepers that saw the new epoch ignored any answer of the old one.
        for index in 1...4 where logs(of: "dk\(index)").contains("its orders are ignored") {
            print("dk\(index) ignored an answer of the deposed leader")
        }
        XCTAssertEqual(loop.failures, [], "the loop's puts all succeeded (the pause only delayed some)")
        try checkEveryAcknowledgedFile(loop)
    }

    func testDatabaseFaultsUnderLoadLoseNothingAcknowledged() throws {
        let loop = PutLoop(test: self)
        loop.start()
        try waitUntil("puts before the faults", timeout: 30) { loop.acknowledged.count >= 3 }
        // 1. The leader's sessions terminated (pg_terminate_backend): it reconnects; the lease is
        // a row, not a session, so it keeps leading (it can renew within the lease).
        var leader = try leaderIndex()
        var epoch = try role(of: leader).epoch
        let terminated = try postgres.psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = 'm\(leader)'")
        XCTAssertGreaterThanOrEqual(Int(terminated.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0, 1, "the leader had sessions to end")
        var count = loop.acknowledged.count
        try waitUntil("puts after the sessions ended", timeout: 30) { loop.acknowledged.count >= count + 3 }
        let afterTheDrop = try leaderIndex()
        if afterTheDrop != leader {
            // A session ended during a COMMIT leaves whether that batch is stored unknown: the
            // leader then steps down to rebuild its memory from the database, and another
            // takes over. Nothing else about a dropped session may move leadership.
            XCTAssertTrue(logs(of: "m\(leader)").contains("whether the batch was written is unknown"), "a dropped session alone moves no leadership")
            print("database faults: a session ended during a COMMIT; m\(leader) stepped down to reload, m\(afterTheDrop) leads")
            leader = afterTheDrop
            epoch = try role(of: leader).epoch
        }

        // 2. The leader cut off from the database (sessions ended, new ones refused): a standby
        // takes the lapsed lease, the old leader's writes fail, and it steps down.
        try postgres.psql("ALTER ROLE m\(leader) NOLOGIN")
        try postgres.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'm\(leader)'")
        let write = try tydfs(["mkdir", "/written-while-cut-off", "--master", urls[leader]], check: false)
        XCTAssertNotEqual(write.exitCode, 0, "a leader cut off from the database writes nothing: \(write.stdoutText)")
        let others = (0..<3).filter { $0 != leader }
        var newLeader: Int?
        try waitUntil("a standby to lead", timeout: 15) {
            newLeader = others.first { (try? self.role(of: $0))?.role == "leader" }
            return newLeader != nil
        }
        XCTAssertGreaterThan(try role(of: newLeader!).epoch, epoch)
        try waitUntil("the cut-off leader to step down", timeout: 10) { (try? self.role(of: leader))?.role == "standby" }
        XCTAssertTrue(logs(of: "m\(leader)").contains("stepping down"))
        try postgres.psql("ALTER ROLE m\(leader) LOGIN")
        try waitUntil("the old leader to follow the new one", timeout: 10) { (try? self.role(of: leader))?.leader == self.urls[newLeader!] }
        count = loop.acknowledged.count
        try waitUntil("puts under the new leader", timeout: 30) { loop.acknowledged.count >= count + 3 }
        leader = newLeader!
        epoch = try role(of: leader).epoch

        // 3. The database restarted under load: writes fail while it is down, then resume.
        postgres.stop(mode: "fast", keepData: true)
        Thread.sleep(forTimeInterval: 2)
        try postgres.start()
        count = loop.acknowledged.count
        try waitUntil("puts after the restart", timeout: 40) { loop.acknowledged.count >= count + 5 }
        loop.stop()
        let listed = try JSONDecoder().decode(ListResponse.self, from: tydfs(["ls", "/", "--json"]).stdout).entries.map(\.path)
        XCTAssertFalse(listed.contains("/written-while-cut-off"), "\(listed)")
        print("database faults: \(loop.acknowledged.count) puts acknowledged, \(loop.failures.count) failed while the leader or the database was away")
        try checkEveryAcknowledgedFile(loop)
    }

    // MARK: - Helpers

    /// A client putting files one after another through the master list, as a user's loop would.
    final class PutLoop: @unchecked Sendable {
        private let state = NIOLockedValueBox((acknowledged: [String: String](), failures: [String](), started: false, stopping: false))
        private let done = DispatchSemaphore(value: 0)
        private unowned let test: MasterFailoverTests

        init(test: MasterFailoverTests) {
            self.test = test
            test.loops.append(self)
        }

        var acknowledged: [String: String] { state.withLockedValue { $0.acknowledged } }
        var failures: [String] { state.withLockedValue { $0.failures } }

        func start() {
            state.withLockedValue { $0.started = true }
            let sources = test.sources
            Thread.detachNewThread { [self] in
                var round = 0
                while !state.withLockedValue({ $0.stopping }) {
                    let remote = "/loop/f\(round)", source = sources[round % sources.count]
                    let result = try? test.tydfs(["put", source, remote], check: false)
                    state.withLockedValue { state in
                        if result?.exitCode == 0 {
                            state.acknowledged[remote] = source
                        } else {
                            state.failures.append("\(remote): \(result?.stderr ?? "did not run")")
                        }
                    }
                    round += 1
                }
                done.signal()
            }
        }

        /// Stops the loop after its current put; again, does nothing.
        func stop() {
            let running = state.withLockedValue { state in
                defer { state.stopping = true }
                return state.started && !state.stopping
            }
            if running { done.wait() }
        }
    }

    /// A put from standard input, which the client can read only once, spanning a change of
    /// leader: its first half (10 chunks) is stored before the change, and its input ends only
    /// after it, so the put must go on on the new leader with the chunks stored under the old.
    final class StreamPut {
        private let process: Process
        private let input = Pipe()
        private let content: Data
        private let remote: String
        private let output: String
        private unowned let test: MasterFailoverTests

        init(test: MasterFailoverTests, remote: String, seed: UInt64) throws {
            self.test = test
            self.remote = remote
            var generator = SeededGenerator(seed: seed)
            content = Data((0..<(20 * 65_536 + 12_345)).map { _ in UInt8.random(in: 0...255, using: &generator) })
            output = test.root + "/logs/stream-" + UUID().uuidString
            FileManager.default.createFile(atPath: output, contents: nil)
            process = Process()
            process.executableURL = URL(fileURLWithPath: TestCluster.binary)
            process.arguments = ["put", "-", remote, "--master", test.masterList]
            process.environment = test.cliEnvironment()
            process.standardInput = input
            // A client that ended early must fail the test, not kill it with SIGPIPE.
            signal(SIGPIPE, SIG_IGN)
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
            process.standardOutput = handle
            process.standardError = handle
            try process.run()
        }

        /// Returns once the client has read all but a pipe's worth of the first half.
        func sendFirstHalf() throws {
            try input.fileHandleForWriting.write(contentsOf: content.prefix(10 * 65_536))
        }

        /// Sends the rest, ends the input, and checks that the put succeeded and reads back.
        func finishAndCheck() throws {
            try input.fileHandleForWriting.write(contentsOf: content.dropFirst(10 * 65_536))
            try input.fileHandleForWriting.close()
            process.waitUntilExit()
            let said = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
            XCTAssertEqual(process.terminationStatus, 0, "the put from standard input went on under the new leader: \(said)")
            let out = test.root + "/stream-out"
            try? FileManager.default.removeItem(atPath: out)
            let got = try test.tydfs(["get", remote, out], check: false)
            XCTAssertEqual(got.exitCode, 0, "\(remote): \(got.stderr)")
            XCTAssertEqual(try? Data(contentsOf: URL(fileURLWithPath: out)), content, "\(remote) reads back byte-exact")
            // Resumed, not started again: the new leader's commit took the chunks stored before.
            let commits = (0..<3).flatMap { test.logs(of: "m\($0)").split(separator: "\n") }
                .filter { $0.contains("file committed") && $0.contains("path=\(remote) ") }
            XCTAssertEqual(commits.count, 1, "committed once")
            // (How many depends on how far the client got before the change: it had read at
            // least 9 chunks when the first half was written.)
            let adopted = commits.first.flatMap { line in line.firstMatch(of: /chunks\.adopted=(\d+)/).flatMap { Int($0.1) } }
            XCTAssertGreaterThanOrEqual(adopted ?? 0, 1, "the commit adopted the chunks stored under the old leader: \(commits)")
            print("\(remote): \(adopted ?? 0) chunks stored under the old leader adopted by the new one")
        }
    }

    private func checkEveryAcknowledgedFile(_ loop: PutLoop) throws {
        let acknowledged = loop.acknowledged
        XCTAssertGreaterThan(acknowledged.count, 0)
        for (remote, source) in acknowledged {
            let out = root + "/out"
            try? FileManager.default.removeItem(atPath: out)
            let got = try tydfs(["get", remote, out], check: false)
            XCTAssertEqual(got.exitCode, 0, "\(remote): \(got.stderr)")
            XCTAssertEqual(try? Data(contentsOf: URL(fileURLWithPath: out)), try Data(contentsOf: URL(fileURLWithPath: source)), "\(remote) reads back byte-exact")
        }
    }

    private func startMaster(_ index: Int) throws {
        masters[index] = try spawn([
            "master", "--listen", "127.0.0.1:\(ports[index])", "--data", root + "/m\(index)", "--metadata", postgres.url(user: "m\(index)"),
            "--secret-file", root + "/cluster.secret", "--replication", "3", "--chunk-size", "64KiB",
            "--heartbeat-timeout", "2s", "--repair-interval", "300ms",
        ], name: "m\(index)")
    }

    func role(of index: Int) throws -> MasterRole {
        let result = try tydfs(["masters", "--json", "--master", urls[index]], master: false)
        let listing = try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any]
        guard let entry = (listing?["masters"] as? [[String: Any]])?.first, let role = entry["role"] as? String,
              let epoch = entry["epoch"] as? Int64 else { throw TestClusterError("no role in \(result.stdoutText)") }
        return MasterRole(url: urls[index], role: role, epoch: LeaderEpoch(epoch), leader: entry["leader"] as? String)
    }

    /// Which master leads now, found as scripts find it: `tydfs masters --json`.
    private func leaderIndex() throws -> Int {
        let result = try tydfs(["masters", "--json"], check: false)
        let listing = try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any]
        let leaders = (listing?["masters"] as? [[String: Any]] ?? []).filter { $0["role"] as? String == "leader" }.compactMap { $0["url"] as? String }
        guard leaders.count == 1, let index = urls.firstIndex(of: leaders[0]) else { throw TestClusterError("no single leader: \(result.stdoutText)") }
        return index
    }

    func cliEnvironment() -> [String: String] {
        ProcessInfo.processInfo.environment.merging(["TYDFS_CONFIG": root + "/m0/admin-client.conf"]) { _, ours in ours }
    }

    @discardableResult
    func tydfs(_ arguments: [String], master: Bool = true, check: Bool = true) throws -> CommandResult {
        let out = root + "/logs/cli-" + UUID().uuidString
        FileManager.default.createFile(atPath: out, contents: nil)
        FileManager.default.createFile(atPath: out + ".err", contents: nil)
        defer {
            try? FileManager.default.removeItem(atPath: out)
            try? FileManager.default.removeItem(atPath: out + ".err")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TestCluster.binary)
        process.arguments = arguments + (master && !arguments.contains("--master") ? ["--master", masterList] : [])
        process.environment = cliEnvironment()
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: out + ".err"))
        process.standardInput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        let result = CommandResult(
            exitCode: process.terminationStatus, stdout: (try? Data(contentsOf: URL(fileURLWithPath: out))) ?? Data(),
            stderr: (try? String(contentsOfFile: out + ".err", encoding: .utf8)) ?? "")
        if check, result.exitCode != 0 { throw TestClusterError("tydfs \(arguments.joined(separator: " ")) failed: \(result.stderr)") }
        return result
    }

    private func spawn(_ arguments: [String], name: String, environment: [String: String]? = nil) throws -> Process {
        logIndex += 1
        let log = "\(root)/logs/\(logIndex)-\(name).log"
        FileManager.default.createFile(atPath: log, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TestCluster.binary)
        process.arguments = arguments
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        if let environment { process.environment = environment }
        try process.run()
        return process
    }

    /// After a failed test: what the put loops saw fail, and the end of every server's log (the
    /// folder is removed afterwards), so that a failure in CI can be read from its output.
    private func reportOnFailure() {
        guard let run = testRun, run.totalFailureCount > 0 else { return }
        for loop in loops { print("put loop: \(loop.acknowledged.count) acknowledged; failures:\n" + loop.failures.joined(separator: "\n")) }
        let folder = root + "/logs"
        for name in ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted() where name.hasSuffix(".log") {
            let lines = ((try? String(contentsOfFile: folder + "/" + name, encoding: .utf8)) ?? "").split(separator: "\n").suffix(40)
            print("--- the last \(lines.count) lines of \(name):\n" + lines.joined(separator: "\n"))
        }
    }

    func logs(of name: String) -> String {
        let folder = root + "/logs"
        return ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasSuffix("-\(name).log") }
            .compactMap { try? String(contentsOfFile: folder + "/" + $0, encoding: .utf8) }.joined()
    }

    private func waitUntil(_ what: String, timeout: Double, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try condition() { return }
            Thread.sleep(forTimeInterval: 0.1)
        }
        throw TestClusterError("timed out after \(timeout) s waiting for \(what)")
    }
}
