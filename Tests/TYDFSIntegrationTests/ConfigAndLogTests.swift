import Foundation
import TYDFSTestSupport
import XCTest

/// Settings from flags, `TYDFS_*` variables and the config file, in that order; JSON logs in
/// which one upload can be followed by its request id from the master to every datakeeper.
final class ConfigAndLogTests: XCTestCase {
    private struct Report: Decodable {
        struct Entry: Decodable { var key: String; var value: String; var source: String }
        var configFile: String?
        var settings: [Entry]
    }

    /// Runs `tydfs ARGUMENTS` with only `environment` among the `TYDFS_*` variables and no
    /// home config file; returns its exit status, stdout and stderr.
    private func tydfs(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: Data, errors: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TestCluster.binary)
        process.arguments = arguments
        var variables = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("TYDFS_") }
        variables["HOME"] = NSTemporaryDirectory() + "tydfs-no-home"
        for (name, value) in environment { variables[name] = value }
        process.environment = variables
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, data, text)
    }

    /// `tydfs config print --json ARGUMENTS` with `environment`: key → (value, source).
    private func effective(_ arguments: [String], environment: [String: String] = [:]) throws -> [String: (value: String, source: String)] {
        let result = try tydfs(["config", "print", "--json"] + arguments, environment: environment)
        XCTAssertEqual(result.status, 0, result.errors)
        let report = try JSONDecoder().decode(Report.self, from: result.output)
        return Dictionary(uniqueKeysWithValues: report.settings.map { ($0.key, ($0.value, $0.source)) })
    }

    func testFlagBeatsEnvironmentBeatsFileBeatsDefault() throws {
        let folder = NSTemporaryDirectory() + "tydfs-config-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let file = folder + "/config.json"
        try Data("""
            {"master": {"replication": 2, "chunk-size": "8MiB", "listen": "127.0.0.1:7000", "log-format": "json"},
             "datakeeper": {"maintenance": true}, "master-url": "http://10.0.0.2:9333"}
            """.utf8).write(to: URL(fileURLWithPath: file))
        let settings = try effective(
            ["master", "--config", file, "--listen", "127.0.0.1:7001"],
            environment: ["TYDFS_MASTER_CHUNK_SIZE": "16MiB", "TYDFS_MASTER_HEARTBEAT_TIMEOUT": "9s"])
        XCTAssertEqual(settings["master.listen"]?.value, "127.0.0.1:7001")
        XCTAssertEqual(settings["master.listen"]?.source, "command line", "the flag beats the file")
        XCTAssertEqual(settings["master.chunk-size"]?.value, "16MiB")
        XCTAssertEqual(settings["master.chunk-size"]?.source, "environment TYDFS_MASTER_CHUNK_SIZE", "the environment beats the file")
        XCTAssertEqual(settings["master.heartbeat-timeout"]?.value, "9s")
        XCTAssertEqual(settings["master.replication"]?.value, "2")
        XCTAssertEqual(settings["master.replication"]?.source, "config file \(file)")
        XCTAssertEqual(settings["master.log-format"]?.value, "json")
        XCTAssertEqual(settings["master.orphan-grace"]?.value, "1h")
        XCTAssertEqual(settings["master.orphan-grace"]?.source, "default")
        // The flag beats the environment too; TYDFS_CONFIG names the file when --config does not.
        let flagged = try effective(
            ["master", "--replication", "5"], environment: ["TYDFS_MASTER_REPLICATION": "4", "TYDFS_CONFIG": file])
        XCTAssertEqual(flagged["master.replication"]?.value, "5")
        XCTAssertEqual(flagged["master.chunk-size"]?.source, "config file \(file)")
        let datakeeper = try effective(["datakeeper"], environment: ["TYDFS_CONFIG": file, "TYDFS_MASTER": "http://10.0.0.1:9333"])
        XCTAssertEqual(datakeeper["datakeeper.maintenance"]?.value, "true")
        XCTAssertEqual(datakeeper["master-url"]?.value, "http://10.0.0.1:9333")
        XCTAssertEqual(datakeeper["master-url"]?.source, "environment TYDFS_MASTER")
        let client = try effective(["client"], environment: ["TYDFS_CONFIG": file, "TYDFS_CLIENT_CONCURRENCY": "8"])
        XCTAssertEqual(client["master-url"]?.value, "http://10.0.0.2:9333")
        XCTAssertEqual(client["master-url"]?.source, "config file \(file)")
        XCTAssertEqual(client["client.concurrency"]?.value, "8")
        XCTAssertEqual(client["client.concurrency"]?.source, "environment TYDFS_CLIENT_CONCURRENCY")
        XCTAssertEqual(client["client.verbose"]?.source, "default")

        // --verbose is a flag for the log level: it beats the environment.
        let verbose = try effective(["master", "--verbose"], environment: ["TYDFS_MASTER_LOG_LEVEL": "error"])
        XCTAssertEqual(verbose["master.log-level"]?.value, "debug")
        XCTAssertEqual(verbose["master.log-level"]?.source, "command line")

        // Bad values are named, with where they came from, and stop the command.
        let refused = try tydfs(["config", "print", "master", "--config", file], environment: ["TYDFS_MASTER_REPLICATION": "many"])
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.errors.contains("environment TYDFS_MASTER_REPLICATION sets master.replication to 'many'"), refused.errors)
        let missing = try tydfs(["ls", "/", "--config", folder + "/nope.json"])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.errors.contains("does not exist"), missing.errors)
    }

    func testOneUploadCanBeFollowedAcrossTheClusterInJSONLogs() throws {
        let json = ["--log-format", "json", "--log-level", "debug"]
        let cluster = try TestCluster(datakeepers: 3, dataKeeperArguments: json, masterArguments: json)
        defer { cluster.shutdown() }
        try cluster.succeed(["put", try cluster.makeFile("f", size: 100_000), "/followed"])
        func events(_ name: String) -> [[String: String]] {
            cluster.logs(of: name).joined().split(separator: "\n").compactMap { line in
                guard line.hasPrefix("{") else { return nil }
                let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String]
                XCTAssertNotNil(object, "a log line that is not a JSON object of strings: \(line)")
                return object
            }
        }
        let master = events("master")
        XCTAssertFalse(master.isEmpty)
        for event in master { XCTAssertNotNil(event["time"]); XCTAssertNotNil(event["level"]); XCTAssertNotNil(event["message"]) }
        let committed = try XCTUnwrap(master.first { $0["message"] == "file committed" && $0["path"] == "/followed" })
        let id = try XCTUnwrap(committed["request.id"], "the commit's log line names no request id: \(committed)")
        XCTAssertTrue(master.contains { $0["request.id"] == id && $0["message"] != "file committed" }, "only one master line names the upload")
        for datakeeper in ["dk1", "dk2", "dk3"] {
            XCTAssertTrue(events(datakeeper).contains { $0["request.id"] == id && $0["message"] == "chunk stored" },
                          "\(datakeeper)'s log does not follow upload \(id)")
        }
    }
}

/// CLI comfort: a progress bar when stderr is a terminal (a real pseudo-terminal, from
/// util-linux's `script`), none with `--quiet` or in a pipe; shell completion scripts.
final class CommandLineComfortTests: XCTestCase {
    /// Runs `command` in a pseudo-terminal and returns everything it wrote there.
    private func inTerminal(_ command: String, scratch: String) throws -> (output: String, status: Int32) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/script")
        let transcript = scratch + "/transcript-\(UUID().uuidString)"
        process.arguments = ["-q", "-e", "-c", command, transcript]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return ((try? String(contentsOfFile: transcript, encoding: .utf8)) ?? "", process.terminationStatus)
    }

    func testProgressBarOnATerminalOnlyAndQuietSilencesIt() throws {
        let cluster = try TestCluster(datakeepers: 3, chunkSize: "4MiB")
        defer { cluster.shutdown() }
        let file = try cluster.makeFile("big", size: 96 * 1024 * 1024)
        let put = try inTerminal("\(TestCluster.binary) put \(file) /big --master \(cluster.masterURL) --config \(cluster.adminConfigFile)", scratch: cluster.root)
        XCTAssertEqual(put.status, 0, put.output)
        XCTAssertTrue(put.output.contains("% ["), "no progress bar on a terminal: \(put.output)")
        XCTAssertTrue(put.output.contains("/ 96 MiB") && put.output.contains("/s  ETA"), put.output)
        let get = try inTerminal("\(TestCluster.binary) get /big \(cluster.root)/back --master \(cluster.masterURL) --config \(cluster.adminConfigFile)", scratch: cluster.root)
        XCTAssertEqual(get.status, 0, get.output)
        XCTAssertTrue(get.output.contains("get ") && get.output.contains("% ["), get.output)
        XCTAssertEqual(try cluster.contents(cluster.root + "/back"), try cluster.contents(file))
        let quiet = try inTerminal("\(TestCluster.binary) put -q \(file) /big2 --master \(cluster.masterURL) --config \(cluster.adminConfigFile)", scratch: cluster.root)
        XCTAssertEqual(quiet.status, 0)
        XCTAssertFalse(quiet.output.contains("% ["), "--quiet drew a progress bar: \(quiet.output)")
        // Not a terminal: no bar either.
        let piped = try cluster.succeed(["put", file, "/big3"])
        XCTAssertFalse(piped.stderr.contains("% ["), piped.stderr)
    }

    func testShellCompletionScripts() throws {
        for shell in ["bash", "zsh", "fish"] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: TestCluster.binary)
            process.arguments = ["--generate-completion-script", shell]
            let output = Pipe()
            process.standardOutput = output
            try process.run()
            let script = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            XCTAssertEqual(process.terminationStatus, 0, shell)
            for command in ["put", "drain", "config", "nodes"] { XCTAssertTrue(script.contains(command), "\(shell) completion lacks \(command)") }
        }
    }
}
