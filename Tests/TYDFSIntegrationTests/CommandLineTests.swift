import Foundation
import TYDFSProtocol
import TYDFSTestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The command line itself: help for every command, and `tydfs cluster` as a user runs it.
final class CommandLineTests: XCTestCase {
    private func run(_ arguments: [String], environment: [String: String]? = nil) throws -> (Int32, String, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TestCluster.binary)
        process.arguments = arguments
        if let environment { process.environment = environment }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
    }

    /// The environment of a user whose home is `home`: no `TYDFS_*` settings and no
    /// `XDG_CONFIG_HOME`, so the per-user client config is `home/.config/tydfs/config.json`, and
    /// `tydfs cluster` never writes into the real home.
    private func userEnvironment(home: String) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("TYDFS_") }
        environment["XDG_CONFIG_HOME"] = nil
        environment["HOME"] = home
        return environment
    }

    /// A port below the ephemeral range (32768-60999) that nothing on 127.0.0.1 is bound to now.
    private func freePort() -> Int {
        for _ in 0..<100 {
            let port = 20000 + Int.random(in: 0..<12000)
            let probe = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(probe, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
            close(probe)
            if bound { return port }
        }
        return 20000 + Int.random(in: 0..<12000)
    }

    /// Starts `tydfs cluster ARGUMENTS` with `environment`, its output in `<folder>/cluster.log`;
    /// returns the process and a reader of that log.
    private func startCluster(
        _ arguments: [String], folder: String, environment: [String: String]
    ) throws -> (process: Process, log: () -> String) {
        let log = folder + "/cluster.log"
        FileManager.default.createFile(atPath: log, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TestCluster.binary)
        process.arguments = ["cluster"] + arguments
        process.environment = environment
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return (process, { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" })
    }

    /// Asks `tydfs nodes --json ARGUMENTS` until it shows 3 live datakeepers, `deadline` passes or
    /// the cluster exits; returns how many it saw last.
    private func liveDataKeepers(_ arguments: [String], environment: [String: String], cluster: Process, until deadline: Date) throws -> Int {
        var alive = 0
        while Date() < deadline && alive < 3 && cluster.isRunning {
            Thread.sleep(forTimeInterval: 0.2)
            let (code, out, _) = try run(["nodes", "--json"] + arguments, environment: environment)
            if code == 0, let nodes = try? JSONDecoder().decode(NodesResponse.self, from: Data(out.utf8)) {
                alive = nodes.nodes.filter(\.alive).count
            }
        }
        return alive
    }

    /// SIGTERM to the cluster: it stops within 15 s, exits 0, and says it stopped.
    private func stopCluster(_ process: Process, log: () -> String) {
        kill(process.processIdentifier, SIGTERM)
        let stopDeadline = Date().addingTimeInterval(15)
        while process.isRunning && Date() < stopDeadline { Thread.sleep(forTimeInterval: 0.05) }
        XCTAssertFalse(process.isRunning, "cluster stops within 15 s of SIGTERM")
        if !process.isRunning { XCTAssertEqual(process.terminationStatus, 0) }
        XCTAssertTrue(log().contains("tydfs cluster stopped"), log())
    }

    func testEveryCommandExplainsItselfAndTheContractFlagsExist() throws {
        let expected: [String: [String]] = [
            "master": ["--listen", "--data", "--replication", "--chunk-size", "--heartbeat-timeout"],
            "datakeeper": ["--master", "--listen", "--data", "--id", "--capacity"],
            "cluster": ["--datakeepers", "--data", "--port"],
            "put": ["--overwrite", "--master", "--recursive", "-r", "--concurrency"], "get": ["--master", "--recursive", "-r", "--concurrency"],
            "ls": ["--json"], "stat": ["--json"], "mv": ["--json", "--master"], "mkdir": ["-p", "--parents", "--json"], "rmdir": ["--json", "--master"], "du": ["--json", "--master"], "cat": ["--master"], "rm": ["--master"], "nodes": ["--json"], "fsck": ["--json"], "checksum": [],
            "bench": ["--files", "--size", "--concurrency", "--prefix", "--keep", "--json", "--master"],
        ]
        let (status, top, _) = try run(["--help"])
        XCTAssertEqual(status, 0)
        for (command, flags) in expected {
            XCTAssertTrue(top.contains(command), "top-level help lists \(command)")
            let (code, help, _) = try run([command, "--help"])
            XCTAssertEqual(code, 0, command)
            for flag in flags { XCTAssertTrue(help.contains(flag), "\(command) --help mentions \(flag)") }
        }
        let (badCode, _, badError) = try run(["put"])
        XCTAssertNotEqual(badCode, 0)
        XCTAssertTrue(badError.contains("Missing expected argument"), badError)
        let (sizeCode, _, sizeError) = try run(["master", "--chunk-size", "lots"])
        XCTAssertNotEqual(sizeCode, 0)
        XCTAssertTrue(sizeError.contains("'lots' is not a size"), sizeError)
    }

    func testARefusedConnectionFailsAtOnceWithAClearMessage() throws {
        for command in [["stat", "/x"], ["ls"], ["bench", "--files", "5"]] {
            let started = Date()
            let (code, _, stderr) = try run(command + ["--master", "http://127.0.0.1:1"])
            let seconds = Date().timeIntervalSince(started)
            XCTAssertEqual(code, 1, "\(command)")
            XCTAssertLessThan(seconds, 1, "\(command) gave up after \(seconds) s; a refused connection needs no waiting")
            XCTAssertTrue(stderr.contains("cannot reach the master at http://127.0.0.1:1: connection refused"), stderr)
        }
    }

    /// A port held by another process: the master and the datakeeper each exit at once with a
    /// message naming the address (the master used to hang there until SIGKILL).
    func testAServerWhosePortIsTakenExitsWithAClearMessage() throws {
        let holder = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        XCTAssertGreaterThanOrEqual(holder, 0)
        defer { close(holder) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(holder, $0, length) == 0 && listen(holder, 1) == 0 && getsockname(holder, $0, &length) == 0 }
        }
        XCTAssertTrue(bound)
        let taken = "127.0.0.1:\(UInt16(bigEndian: address.sin_port))"
        let folder = NSTemporaryDirectory() + "tydfs-taken-" + UUID().uuidString.prefix(8)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        XCTAssertEqual(try run(["keygen", "--out", folder + "/secret"]).0, 0)
        for arguments in [
            ["master", "--listen", taken, "--data", folder + "/master"],
            ["datakeeper", "--listen", taken, "--data", folder + "/dk", "--master", "http://127.0.0.1:1", "--secret-file", folder + "/secret"],
        ] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: TestCluster.binary)
            process.arguments = arguments
            let log = folder + "/\(arguments[0]).err"
            FileManager.default.createFile(atPath: log, contents: nil)
            process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            try process.run()
            let deadline = Date().addingTimeInterval(15)
            while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
            XCTAssertFalse(process.isRunning, "\(arguments[0]) still runs 15 s after its bind failed")
            TestCluster.end(process, signal: SIGKILL)
            let stderr = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            XCTAssertEqual(process.terminationStatus, 1, "\(arguments[0]): \(stderr)")
            XCTAssertTrue(stderr.contains("tydfs: cannot listen on \(taken): the port is already in use by another process"), stderr)
        }
    }

    func testTheMasterURLComesFromTheFlagThenTheEnvironment() throws {
        var environment = ProcessInfo.processInfo.environment
        environment["TYDFS_MASTER"] = "http://127.0.0.1:2"
        let (code, _, stderr) = try run(["ls"], environment: environment)
        XCTAssertNotEqual(code, 0)
        XCTAssertTrue(stderr.contains("http://127.0.0.1:2"), stderr)
        let (flagCode, _, flagError) = try run(["ls", "--master", "http://127.0.0.1:3"], environment: environment)
        XCTAssertNotEqual(flagCode, 0)
        XCTAssertTrue(flagError.contains("http://127.0.0.1:3"), flagError)
    }

    func testClusterRunsAMasterAndDataKeepersAndStopsCleanlyOnSigterm() throws {
        let folder = NSTemporaryDirectory() + "tydfs-cluster-" + UUID().uuidString.prefix(8)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.createDirectory(atPath: folder + "/home", withIntermediateDirectories: true)
        // The cluster writes its admin key into the per-user config: a home of its own, not the real one.
        let environment = userEnvironment(home: folder + "/home")
        let port = 20000 + Int.random(in: 0..<12000)  // below the ephemeral range (32768-60999)
        let (process, log) = try startCluster(
            ["--datakeepers", "3", "--data", folder + "/data", "--port", String(port), "--s3-port", String(port + 1)],
            folder: folder, environment: environment)
        defer { TestCluster.end(process, signal: SIGKILL) }
        let master = "http://127.0.0.1:\(port)"
        let alive = try liveDataKeepers(["--master", master], environment: environment, cluster: process, until: Date().addingTimeInterval(20))
        XCTAssertEqual(alive, 3, log())
        let input = folder + "/in"
        try Data((0..<300_000).map { UInt8(truncatingIfNeeded: $0 * 7) }).write(to: URL(fileURLWithPath: input))
        XCTAssertEqual(try run(["put", input, "/in", "--master", master], environment: environment).0, 0)
        let (code, _, _) = try run(["get", "/in", folder + "/out", "--master", master], environment: environment)
        XCTAssertEqual(code, 0)
        XCTAssertEqual(FileManager.default.contents(atPath: folder + "/out"), FileManager.default.contents(atPath: input))
        // Its S3 gateway answers, and refuses a request without credentials in S3's words.
        let s3 = try HTTP.request("GET", "http://127.0.0.1:\(port + 1)/", body: nil, headers: [:], signer: nil)
        XCTAssertEqual(s3.status, 403)
        XCTAssertTrue(String(decoding: s3.body, as: UTF8.self).contains("<Code>AccessDenied</Code>"))

        stopCluster(process, log: log)
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder + "/data/master/metadata.sqlite"))
    }

    /// `tydfs cluster --tls` as a user runs it: the per-user client config it writes (0600) names
    /// the https master, the admin key and the throwaway CA, so plain `tydfs put` and `get`, with
    /// no --config and no --master, work over HTTPS.
    func testClusterWithTLSWritesAPrivateClientConfigThatPlainCommandsUse() throws {
        let folder = NSTemporaryDirectory() + "tydfs-cluster-tls-" + UUID().uuidString.prefix(8)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let home = folder + "/home"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        let environment = userEnvironment(home: home)
        let port = freePort()
        let (process, clusterLog) = try startCluster(
            ["--tls", "--datakeepers", "3", "--data", folder + "/data", "--port", String(port), "--s3-port", "0"],
            folder: folder, environment: environment)
        defer { TestCluster.end(process, signal: SIGKILL) }

        // The per-user config appears once the master listens; every command below reads it.
        let config = home + "/.config/tydfs/config.json"
        let deadline = Date().addingTimeInterval(20)
        while !FileManager.default.fileExists(atPath: config) && process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        XCTAssertTrue(FileManager.default.fileExists(atPath: config), "no per-user config: \(clusterLog())")
        let alive = try liveDataKeepers([], environment: environment, cluster: process, until: deadline)
        XCTAssertEqual(alive, 3, clusterLog())

        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: config)[.posixPermissions] as? Int, 0o600)
        let settings = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: config))) as? [String: Any])
        XCTAssertEqual(settings["master-url"] as? String, "https://127.0.0.1:\(port)")
        XCTAssertEqual((settings["access-key-id"] as? String)?.hasPrefix("TK"), true, "\(settings)")
        XCTAssertEqual((settings["secret-access-key"] as? String)?.isEmpty, false, "\(settings)")
        let caFile = try XCTUnwrap(settings["ca-file"] as? String, "\(settings)")
        XCTAssertEqual(URL(fileURLWithPath: caFile).standardizedFileURL.path, URL(fileURLWithPath: folder + "/data/tls/ca.pem").standardizedFileURL.path)
        XCTAssertTrue(FileManager.default.fileExists(atPath: caFile), caFile)
        let adminConfig = folder + "/data/master/admin-client.conf"
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: adminConfig)[.posixPermissions] as? Int, 0o600)

        // Plain commands: the master, the key and the CA all come from the per-user config.
        let input = folder + "/in"
        try Data((0..<300_000).map { UInt8(truncatingIfNeeded: $0 * 13) }).write(to: URL(fileURLWithPath: input))
        let (putCode, _, putError) = try run(["put", input, "/in"], environment: environment)
        XCTAssertEqual(putCode, 0, putError)
        let (getCode, _, getError) = try run(["get", "/in", folder + "/out"], environment: environment)
        XCTAssertEqual(getCode, 0, getError)
        XCTAssertEqual(FileManager.default.contents(atPath: folder + "/out"), FileManager.default.contents(atPath: input))
        // HTTPS only: the master's port does not answer plain HTTP.
        let (plainCode, _, _) = try run(["ls", "/", "--master", "http://127.0.0.1:\(port)"], environment: environment)
        XCTAssertNotEqual(plainCode, 0)

        stopCluster(process, log: clusterLog)
    }
}
