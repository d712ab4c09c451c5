import Foundation

/// A private PostgreSQL server for one test: `initdb` into a temporary folder, then `postgres`
/// itself on a free port with its own socket folder, run as the `postgres` user when the tests
/// run as root (PostgreSQL refuses to run as root; `setpriv` changes user without a process in
/// between, so the server is this process's child and is ended by its pid). Debian's
/// `postgresql` package provides the programs (`.ci/run` installs it). `stop` (or deinit) ends
/// the server and removes its folder.
public final class PostgresServer: @unchecked Sendable {
    public let folder: String
    public let port: Int
    /// The superuser the tests connect as (trust authentication, loopback only).
    public static let user = "tydfs"
    private let bin: String
    private var server: Process?

    /// The URL of database `name` (default: the `postgres` database every cluster has) as `user`.
    public func url(_ name: String = "postgres", user: String = PostgresServer.user) -> String {
        "postgres://\(user)@127.0.0.1:\(port)/\(name)?sslmode=disable"
    }

    public init() throws {
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []).compactMap { Int($0) }.sorted()
        guard let version = versions.last else {
            throw TestClusterError("PostgreSQL is not installed (/usr/lib/postgresql/*/bin): apt-get install postgresql")
        }
        bin = "/usr/lib/postgresql/\(version)/bin"
        folder = NSTemporaryDirectory() + "tydfs-pg-" + UUID().uuidString.prefix(8)
        port = try Self.freePort()
        try FileManager.default.createDirectory(atPath: folder + "/sockets", withIntermediateDirectories: true)
        if getuid() == 0 { try Self.shell(["chown", "-R", "postgres:postgres", folder]) }
        try runAsOwner([bin + "/initdb", "-D", folder + "/data", "-U", Self.user, "-A", "trust", "--no-sync", "-E", "UTF8"])
        try start()
    }

    deinit { stop() }

    /// Starts the server (again, after `stop(mode:keepData: true)`) and waits until it accepts connections.
    public func start() throws {
        let process = Process()
        let command = [bin + "/postgres", "-D", folder + "/data", "-p", String(port), "-k", folder + "/sockets",
                       "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200"]
        process.executableURL = URL(fileURLWithPath: getuid() == 0 ? "/usr/bin/setpriv" : command[0])
        process.arguments = getuid() == 0 ? ["--reuid=postgres", "--regid=postgres", "--init-groups", "--"] + command : Array(command.dropFirst())
        process.currentDirectoryURL = URL(fileURLWithPath: folder)
        if !FileManager.default.fileExists(atPath: folder + "/server.log") { FileManager.default.createFile(atPath: folder + "/server.log", contents: nil) }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: folder + "/server.log"))
        log.seekToEndOfFile()
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        server = process
        let deadline = Date().addingTimeInterval(30)
        while (try? Self.shell([bin + "/pg_isready", "-q", "-h", "127.0.0.1", "-p", String(port)])) == nil {
            guard process.isRunning, Date() < deadline else { throw TestClusterError("PostgreSQL did not start: \(self.log)") }
            Thread.sleep(forTimeInterval: 0.1)
        }
    }

    /// Stops the server: `fast` (clients disconnected, a clean shutdown) or `immediate` (as a
    /// crash: recovery from the WAL at the next start). `keepData` keeps the folder for `start`.
    public func stop(mode: String = "fast", keepData: Bool = false) {
        if let server, server.isRunning {
            kill(server.processIdentifier, mode == "immediate" ? SIGQUIT : SIGINT)
            server.waitUntilExit()
        }
        server = nil
        if !keepData { try? FileManager.default.removeItem(atPath: folder) }
    }

    /// Runs `sql` with psql against database `database`; returns its unaligned output.
    @discardableResult
    public func psql(_ sql: String, database: String = "postgres") throws -> String {
        try runAsOwner([bin + "/psql", "-h", "127.0.0.1", "-p", String(port), "-U", Self.user, "-d", database, "-Atq", "-v", "ON_ERROR_STOP=1", "-c", sql])
    }

    /// Makes a fresh database and returns its URL.
    public func createDatabase(_ name: String) throws -> String {
        try psql("CREATE DATABASE \(name)")
        return url(name)
    }

    /// The server's log, for failure messages.
    public var log: String { (try? String(contentsOfFile: folder + "/server.log", encoding: .utf8)) ?? "" }

    @discardableResult
    private func runAsOwner(_ command: [String]) throws -> String {
        try Self.shell(getuid() == 0 ? ["runuser", "-u", "postgres", "--"] + command : command, directory: folder)
    }

    @discardableResult
    static func shell(_ command: [String], directory: String? = nil) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = command
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        // Output goes to a file, not a pipe: a server started by pg_ctl could keep a pipe open.
        let outputPath = NSTemporaryDirectory() + "tydfs-pg-out-" + UUID().uuidString
        FileManager.default.createFile(atPath: outputPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try? output.close()
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        guard process.terminationStatus == 0 else {
            throw TestClusterError("\(command.joined(separator: " ")) failed (\(process.terminationStatus)): \(text)")
        }
        return text
    }

    /// A TCP port nothing listens on now (bound to port 0 and released).
    public static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw TestClusterError("socket() failed") }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) } }
        guard bound == 0 else { throw TestClusterError("bind() failed") }
        let named = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) } }
        guard named == 0 else { throw TestClusterError("getsockname() failed") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
