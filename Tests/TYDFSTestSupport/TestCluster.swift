import Foundation
import TYDFSCore
import TYDFSProtocol
import TYDFSSecurity
#if canImport(Glibc)
import Glibc
#endif

/// What one run of the `tydfs` CLI did.
public struct CommandResult {
    public var exitCode: Int32
    public var stdout: Data
    public var stderr: String
    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }

    public init(exitCode: Int32, stdout: Data, stderr: String) {
        self.exitCode = exitCode
        self.stdout = stdout
        self.stderr = stderr
    }
}

/// A real TYDFS cluster for tests: a master and datakeeper processes of the built `tydfs`
/// binary on loopback, each with its own data folder under a temporary root, and helpers to run
/// CLI commands against it. Everything it starts, it ends (`shutdown`, also on deinit).
// Unchecked Sendable: a test drives its cluster from its own thread. The one concurrent use
// (GroupCommitTests) runs `run` from several threads, which only reads `root` and `masterPort`,
// while another kills the master, which changes only `master`.
public final class TestCluster: @unchecked Sendable {
    public let root: String
    public let replication: Int
    public let chunkSize: String
    public let heartbeatTimeoutSeconds: Double
    public private(set) var masterPort = 0
    private var master: Process?
    private var datakeepers: [String: Process] = [:]
    private var others: [Process] = []
    private var logIndex = 0

    /// When set, the master and every datakeeper run on hosts of their own (network namespaces):
    /// the master on host `m`, each datakeeper on a host named as it.
    public let network: NetworkLab?

    /// The cluster secret the master made on its first start; datakeepers are given its file.
    public var secretFile: String { root + "/master/cluster.secret" }
    /// The admin client config the master wrote on its first start; every CLI run reads it.
    public var adminConfigFile: String { root + "/master/admin-client.conf" }

    /// The cluster secret, for signing as a datakeeper does or minting chunk tokens in tests.
    public func clusterSecret() throws -> ClusterSecret { try ClusterSecret.read(from: secretFile) }

    /// A signer with the admin key, as the CLI signs.
    public func adminSigner() throws -> RequestSigner {
        let settings = try JSONSerialization.jsonObject(with: try Data(contentsOf: URL(fileURLWithPath: adminConfigFile))) as? [String: String] ?? [:]
        return RequestSigner(accessKeyID: settings["access-key-id"] ?? "", secret: settings["secret-access-key"] ?? "")
    }

    /// A chunk token as the master would sign one, valid for an hour.
    public func token(_ operation: ChunkToken.Operation, _ chunk: ChunkID, pipeline: [PipelineHop] = []) throws -> String {
        ChunkTokenIssuer(secret: try clusterSecret()).token(operation, chunk, pipeline: pipeline)
    }

    /// The master's address: its lab host's, else loopback.
    public var masterHost: String { network?.host("m")?.address ?? "127.0.0.1" }
    public var masterURL: String { "\(scheme)://\(masterHost):\(masterPort)" }

    /// Starts a master and `datakeepers` datakeepers named dk1…dkN, and waits until all are alive.
    /// Extra flags for every master start: by default, fast repair rounds, a short orphan grace,
    /// and removed chunks deleted at once (tests of the deletion grace set their own).
    public var masterArguments = ["--repair-interval", "300ms", "--orphan-grace", "1s", "--deletion-grace", "0s"]
    /// Extra flags for every datakeeper start: by default, frequent chunk reports and scrub passes.
    public var dataKeeperArguments = ["--report-interval", "2s", "--scrub-interval", "1s", "--scrub-rate", "256MiB"]

    /// HTTPS everywhere, with a throwaway CA (`tydfs keygen --tls`).
    public let tls: Bool
    public var scheme: String { tls ? "https" : "http" }
    private var tlsArguments: [String] {
        tls ? ["--tls-cert", root + "/tls/server.pem", "--tls-key", root + "/tls/server.key", "--ca-file", root + "/tls/ca.pem"] : []
    }

    public init(
        datakeepers count: Int, replication: Int = 3, chunkSize: String = "64KiB", heartbeatTimeoutSeconds: Double = 2,
        dataKeeperArguments: [String] = [], masterArguments: [String] = [], network: NetworkLab? = nil, tls: Bool = false
    ) throws {
        self.network = network
        self.tls = tls
        if let network { try network.addHost("m") }
        root = NSTemporaryDirectory() + "tydfs-test-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: root + "/logs", withIntermediateDirectories: true)

        self.replication = replication
        self.chunkSize = chunkSize
        self.heartbeatTimeoutSeconds = heartbeatTimeoutSeconds
        self.dataKeeperArguments += dataKeeperArguments
        self.masterArguments += masterArguments
        if tls {
            let made = try run(["keygen", "--tls", root + "/tls"], master: false)
            guard made.exitCode == 0 else { throw TestClusterError("tydfs keygen --tls failed: \(made.stderr)") }
        }
        try startMaster()
        for index in 0..<count { try startDataKeeper("dk\(index + 1)") }
        try waitUntil("\(count) datakeepers alive", timeout: 20) { try self.aliveDataKeepers().count == count }
    }

    deinit { shutdown() }

    /// The built `tydfs` binary: `$TYDFS_BIN`, else next to the test bundle.
    public static var binary: String {
        if let path = ProcessInfo.processInfo.environment["TYDFS_BIN"] { return path }
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [bundle, bundle.deletingLastPathComponent()] {
            let path = candidate.appendingPathComponent("tydfs").path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return FileManager.default.currentDirectoryPath + "/.build/debug/tydfs"
    }

    // MARK: - Processes

    /// Starts (or restarts, on the same port and data) the master.
    public func startMaster() throws {
        let log = nextLog("master")
        let process = try spawn([
            "master", "--listen", "\(masterHost):\(masterPort)", "--data", root + "/master",
            "--replication", String(replication), "--chunk-size", chunkSize, "--heartbeat-timeout", "\(heartbeatTimeoutSeconds)s",
        ] + tlsArguments + masterArguments, log: log, host: "m")
        master = process
        masterPort = try waitForListening(log: log, process: process)
    }

    /// Starts (or restarts with its old data) the datakeeper `id`.
    public func startDataKeeper(_ id: String, capacity: String? = nil, extraArguments: [String] = []) throws {
        let log = nextLog(id)
        var address = "127.0.0.1"
        if let network { address = try network.host(id)?.address ?? network.addHost(id) }
        var arguments = [
            "datakeeper", "--master", masterURL, "--listen", "\(address):0", "--data", root + "/" + id, "--id", id,
            "--heartbeat-interval", "200ms", "--secret-file", secretFile,
        ] + tlsArguments + dataKeeperArguments + extraArguments
        if let capacity { arguments += ["--capacity", capacity] }
        let process = try spawn(arguments, log: log, host: id)
        datakeepers[id] = process
        _ = try waitForListening(log: log, process: process)
    }

    /// Sends `signal` to datakeeper `id` and waits for it to exit.
    public func killDataKeeper(_ id: String, signal: Int32 = SIGKILL) {
        guard let process = datakeepers.removeValue(forKey: id) else { return }
        Self.end(process, signal: signal)
    }

    /// The running process of datakeeper `id`, if this cluster started one and did not end it.
    public func dataKeeperProcess(_ id: String) -> Process? { datakeepers[id] }

    /// Stops datakeeper `id` with SIGSTOP: its sockets stay open and nothing answers, as a hung
    /// process or a wedged disk looks to its peers. `resumeDataKeeper` (or `shutdown`) continues it.
    public func pauseDataKeeper(_ id: String) {
        guard let process = datakeepers[id] else { return }
        Glibc.kill(process.processIdentifier, SIGSTOP)
    }

    /// Continues a datakeeper stopped by `pauseDataKeeper`.
    public func resumeDataKeeper(_ id: String) {
        guard let process = datakeepers[id] else { return }
        Glibc.kill(process.processIdentifier, SIGCONT)
    }

    /// Stops the master with SIGSTOP (its sockets stay open, nothing answers: a long pause).
    public func pauseMaster() {
        guard let process = master else { return }
        Glibc.kill(process.processIdentifier, SIGSTOP)
    }

    /// Continues a master stopped by `pauseMaster`.
    public func resumeMaster() {
        guard let process = master else { return }
        Glibc.kill(process.processIdentifier, SIGCONT)
    }

    public func killMaster(signal: Int32 = SIGKILL) {
        guard let process = master else { return }
        Self.end(process, signal: signal)
        master = nil
    }

    /// Sends `signal` and waits; a process still running 10 s after a gentle signal gets SIGKILL.
    public static func end(_ process: Process, signal: Int32 = SIGTERM) {
        guard process.isRunning else { return }
        Glibc.kill(process.processIdentifier, signal)
        // A stopped process (pauseDataKeeper) acts on the signal only once continued.
        Glibc.kill(process.processIdentifier, SIGCONT)
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    /// Every log file of the processes named `name` (`master`, `dk1`, …), oldest first.
    public func logs(of name: String) -> [String] {
        let folder = root + "/logs"
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [])
            .filter { $0.hasSuffix("-\(name).log") }
            .sorted { Int($0.prefix { $0.isNumber }) ?? 0 < Int($1.prefix { $0.isNumber }) ?? 0 }
        return files.compactMap { try? String(contentsOfFile: folder + "/" + $0, encoding: .utf8) }
    }

    /// The data folder of datakeeper `id`.
    public func dataDirectory(of id: String) -> String { root + "/" + id }

    /// Where a chunk's frame is on a datakeeper's disk: a file of its own (offset 0), or a
    /// record in a volume (offset past its header).
    public struct StoredFrame: Equatable {
        public var path: String
        public var offset: UInt64
        public var frameBytes: Int
    }

    /// The frames datakeeper `id` holds on disk: large chunks' own files, then the live records
    /// of its volumes (read the way the datakeeper reads them at start-up, tombstones applied).
    public func storedFrames(on id: String) -> [ChunkID: StoredFrame] {
        var frames: [ChunkID: StoredFrame] = [:]
        let chunks = dataDirectory(of: id) + "/chunks"
        for name in FileManager.default.enumerator(atPath: chunks)?.allObjects as? [String] ?? [] where name.count > 3 {
            let path = chunks + "/" + name
            guard let chunk = try? ChunkID(String(name.suffix(32))),
                  let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int
            else { continue }
            frames[chunk] = StoredFrame(path: path, offset: 0, frameBytes: size)
        }
        let volumes = dataDirectory(of: id) + "/volumes"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: volumes)) ?? []
        for number in names.compactMap({ $0.hasSuffix(".vol") ? Int($0.dropLast(4)) : nil }).sorted() {
            let path = "\(volumes)/\(number).vol"
            guard let bytes = FileManager.default.contents(atPath: path) else { continue }
            _ = try? VolumeScanner.scan(volumeBytes: Int64(bytes.count), blockBytes: Limits.volumeScanBlockBytes, read: { offset, count in
                [UInt8](bytes[Int(offset)..<min(bytes.count, Int(offset) + count)])
            }) { record in
                switch record.header.kind {
                case .chunk:
                    frames[record.header.chunk] = StoredFrame(
                        path: path, offset: UInt64(record.offset) + UInt64(VolumeRecord.headerBytes), frameBytes: Int(record.header.frameBytes))
                case .tombstone:
                    frames[record.header.chunk] = nil
                }
            }
        }
        return frames
    }

    /// The chunks on datakeeper `id`'s disk.
    public func storedChunks(on id: String) -> Set<ChunkID> { Set(storedFrames(on: id).keys) }

    /// Chunks on the disks of every datakeeper started so far (a chunk counted once per holder).
    public func storedChunkCount() -> Int {
        let ids = (try? FileManager.default.contentsOfDirectory(atPath: root))?.filter { $0.hasPrefix("dk") } ?? []
        return ids.map { storedFrames(on: $0).count }.reduce(0, +)
    }

    /// Where `chunk`'s frame is on datakeeper `id`'s disk, or nil when it holds none.
    public func storedFrame(_ chunk: ChunkID, on id: String) -> StoredFrame? { storedFrames(on: id)[chunk] }

    /// Whether datakeeper `id` holds `chunk` on disk.
    public func holds(_ chunk: ChunkID, on id: String) -> Bool { storedFrame(chunk, on: id) != nil }

    /// Whether datakeeper `id` holds `chunk` as a whole frame whose every block matches its checksum.
    public func isIntact(_ chunk: ChunkID, on id: String) -> Bool {
        guard let frame = storedFrame(chunk, on: id), let handle = FileHandle(forReadingAtPath: frame.path) else { return false }
        defer { try? handle.close() }
        guard (try? handle.seek(toOffset: frame.offset)) != nil,
              let bytes = try? handle.read(upToCount: frame.frameBytes), bytes.count == frame.frameBytes,
              let dataBytes = ChunkFrame.dataBytes(frameBytes: Int64(bytes.count))
        else { return false }
        var reader = ChunkFrameReader(dataBytes: dataBytes)
        return (try? bytes.withUnsafeBytes { try reader.consume($0) { _ in } }) != nil && (try? reader.finish()) != nil
    }

    /// Flips the lowest bit of the byte at `offset` in `chunk`'s frame on datakeeper `id`: bit rot.
    public func flipByte(of chunk: ChunkID, on id: String, at offset: UInt64) throws {
        guard let frame = storedFrame(chunk, on: id) else { throw TestClusterError("\(id) holds no chunk \(chunk)") }
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: frame.path))
        defer { try? handle.close() }
        try handle.seek(toOffset: frame.offset + offset)
        var byte = try handle.read(upToCount: 1)!
        byte[byte.startIndex] ^= 0x01
        try handle.seek(toOffset: frame.offset + offset)
        try handle.write(contentsOf: byte)
    }

    /// Loses `chunk` on datakeeper `id` behind its back: its own file is removed, or its volume
    /// record's header is zeroed (the datakeeper then finds the record damaged and sets it aside).
    public func destroy(_ chunk: ChunkID, on id: String) throws {
        guard let frame = storedFrame(chunk, on: id) else { throw TestClusterError("\(id) holds no chunk \(chunk)") }
        guard frame.offset > 0 else { return try FileManager.default.removeItem(atPath: frame.path) }
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: frame.path))
        defer { try? handle.close() }
        try handle.seek(toOffset: frame.offset - UInt64(VolumeRecord.headerBytes))
        try handle.write(contentsOf: Data(count: VolumeRecord.headerBytes))
    }

    /// Wipes every chunk off datakeeper `id`'s disk (stop it first): a replaced disk.
    public func wipeChunks(on id: String) throws {
        for folder in ["/chunks", "/volumes"] where FileManager.default.fileExists(atPath: dataDirectory(of: id) + folder) {
            try FileManager.default.removeItem(atPath: dataDirectory(of: id) + folder)
        }
    }

    /// `tydfs fsck --json` for `path`, whatever its exit code.
    public func fsck(_ path: String = "/") throws -> FsckReport {
        let result = try run(["fsck", path, "--json"])
        do {
            return try JSONDecoder().decode(FsckReport.self, from: result.stdout)
        } catch {
            throw TestClusterError("fsck printed no report (exit \(result.exitCode)): \(result.stderr)")
        }
    }

    /// Ends every process this cluster started and removes its files.
    public func shutdown() {
        for process in others { Self.end(process, signal: SIGKILL) }
        others = []
        for id in Array(datakeepers.keys) { killDataKeeper(id, signal: SIGTERM) }
        killMaster(signal: SIGTERM)
        if ProcessInfo.processInfo.environment["TYDFS_KEEP_TEST_DATA"] == nil {
            try? FileManager.default.removeItem(atPath: root)
        }
    }

    private func nextLog(_ name: String) -> String {
        logIndex += 1
        return "\(root)/logs/\(logIndex)-\(name).log"
    }

    /// Starts `tydfs ARGUMENTS`, on lab host `host` when the cluster has a network.
    private func spawn(_ arguments: [String], log: String, host: String? = nil, environment: [String: String]? = nil) throws -> Process {
        FileManager.default.createFile(atPath: log, contents: nil)
        let process = Process()
        let onHost = host.flatMap { network?.command(on: $0) } ?? []
        // `ip netns exec` execs the program in place, so the process is tydfs itself.
        process.executableURL = URL(fileURLWithPath: onHost.first ?? Self.binary)
        process.arguments = Array(onHost.dropFirst()) + (onHost.isEmpty ? [] : [Self.binary]) + arguments
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        if let environment { process.environment = environment }
        try process.run()
        return process
    }

    private func waitForListening(log: String, process: Process) throws -> Int {
        var port: Int?
        try waitUntil("\(log) to show the listening line", timeout: 20) {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            guard process.isRunning else { throw TestClusterError("process exited early: \(text)") }
            guard let range = text.range(of: "listening on http://") ?? text.range(of: "listening on https://") else { return false }
            let address = text[range.upperBound...].prefix { !$0.isWhitespace }
            port = address.split(separator: ":").last.flatMap { Int($0) }
            return port != nil
        }
        return port!
    }

    // MARK: - CLI

    /// The environment of CLI runs: the admin's client config (its key), unless `environment`
    /// names another config.
    private func cliEnvironment(_ environment: [String: String]) -> [String: String] {
        ProcessInfo.processInfo.environment.merging(["TYDFS_CONFIG": adminConfigFile]) { _, ours in ours }
            .merging(environment) { _, given in given }
    }

    /// Runs `tydfs ARGUMENTS --master URL` to completion, with `stdinFile` as standard input,
    /// as the admin (the master's `admin-client.conf`) unless `environment` says otherwise.
    @discardableResult
    public func run(_ arguments: [String], stdinFile: String? = nil, master: Bool = true, environment: [String: String] = [:]) throws -> CommandResult {
        let outPath = root + "/logs/cli-out-\(UUID().uuidString)"
        let errPath = outPath + ".err"
        FileManager.default.createFile(atPath: outPath, contents: nil)
        FileManager.default.createFile(atPath: errPath, contents: nil)
        defer {
            try? FileManager.default.removeItem(atPath: outPath)
            try? FileManager.default.removeItem(atPath: errPath)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = arguments + (master ? ["--master", masterURL] : [])
        process.environment = cliEnvironment(environment)
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        process.standardInput = stdinFile.flatMap { FileHandle(forReadingAtPath: $0) } ?? FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return CommandResult(
            exitCode: process.terminationStatus,
            stdout: (try? Data(contentsOf: URL(fileURLWithPath: outPath))) ?? Data(),
            stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
    }

    /// Runs `executable ARGUMENTS` (a program that ends on its own, such as a master expected
    /// to stop) with its output in one log, and waits at most `seconds`; a program still
    /// running then is ended (`status` is then its signal's) and the result says so.
    public func runUntilExit(_ executable: String, _ arguments: [String], seconds: Double = 60) throws -> (status: Int32, output: String) {
        let log = root + "/logs/run-\(UUID().uuidString)"
        FileManager.default.createFile(atPath: log, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        let overran = process.isRunning
        if overran { Self.end(process) }
        process.waitUntilExit()
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        return (process.terminationStatus, overran ? text + "\n(still running after \(seconds) s: ended)" : text)
    }

    /// Starts `tydfs ARGUMENTS --master URL` without waiting; `shutdown` ends it if the caller does not.
    public func start(_ arguments: [String]) throws -> Process {
        let process = try spawn(arguments + ["--master", masterURL], log: nextLog("cli"), environment: cliEnvironment([:]))
        others.append(process)
        return process
    }

    /// Starts an S3 gateway (`tydfs s3`) in front of the master, on a free port; returns its URL.
    /// `shutdown` ends it.
    public func startS3Gateway(extraArguments: [String] = []) throws -> String {
        let log = nextLog("s3")
        let process = try spawn(
            ["s3", "--listen", "127.0.0.1:0", "--master", masterURL, "--secret-file", secretFile] + tlsArguments + extraArguments, log: log)
        others.append(process)
        return "\(scheme)://127.0.0.1:\(try waitForListening(log: log, process: process))"
    }

    /// The admin's access key id and secret (S3 credentials).
    public func adminKey() throws -> (id: String, secret: String) {
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: adminConfigFile))) as? [String: Any]
        guard let id = config?["access-key-id"] as? String, let secret = config?["secret-access-key"] as? String else {
            throw TestClusterError("\(adminConfigFile) holds no access key")
        }
        return (id, secret)
    }

    /// Runs a command that must succeed; throws with its stderr otherwise.
    @discardableResult
    public func succeed(_ arguments: [String], stdinFile: String? = nil) throws -> CommandResult {
        let result = try run(arguments, stdinFile: stdinFile)
        guard result.exitCode == 0 else {
            throw TestClusterError("`tydfs \(arguments.joined(separator: " "))` exited \(result.exitCode): \(result.stderr)")
        }
        return result
    }

    public func json<T: Decodable>(_ type: T.Type, _ arguments: [String]) throws -> T {
        try JSONDecoder().decode(T.self, from: try succeed(arguments + ["--json"]).stdout)
    }

    public func nodes() throws -> NodesResponse { try json(NodesResponse.self, ["nodes"]) }

    public func aliveDataKeepers() throws -> [String] {
        try nodes().nodes.filter(\.alive).map(\.id.value).sorted()
    }

    public func stat(_ path: String) throws -> FileInfo { try json(FileInfo.self, ["stat", path]) }

    /// The value of one sample line `name{labels} value` (or `name value`) of a `/metrics` page.
    public static func metricSample(_ name: String, labels: String = "", in page: String) -> Double? {
        let prefix = labels.isEmpty ? name + " " : "\(name){\(labels)} "
        return page.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { Double($0.dropFirst(prefix.count)) }
    }

    /// Datakeeper `id`'s metric `name` (one of its `tydfs_datakeeper_…{datakeeper="id"}`), read
    /// from its `/metrics` at `address` (as `nodes` lists it).
    public func dataKeeperMetric(_ name: String, of id: String, at address: String) throws -> Double? {
        let page = String(decoding: try HTTP.request("GET", "\(scheme)://\(address)\(Route.metrics)").body, as: UTF8.self)
        return Self.metricSample(name, labels: "datakeeper=\"\(id)\"", in: page)
    }

    /// Waits until no datakeeper reports or is assigned any transfer, so that read order depends
    /// on ids alone (a stat counts as work for the replicas it ranks first, until the next heartbeat).
    public func waitUntilIdle() throws {
        Thread.sleep(forTimeInterval: 0.5)
        try waitUntil("datakeepers idle", timeout: 10) { try nodes().nodes.filter(\.alive).allSatisfy { $0.inFlight == 0 } }
    }

    // MARK: - Files and waiting

    /// A local file of `size` pseudo-random bytes (from `seed`), under the cluster's root.
    public func makeFile(_ name: String, size: Int, seed: UInt64 = 1) throws -> String {
        let path = root + "/" + name
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        var bytes = [UInt8](repeating: 0, count: size)
        for index in 0..<size {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            bytes[index] = UInt8(truncatingIfNeeded: state)
        }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    public func contents(_ path: String) throws -> Data {
        try Data(contentsOf: URL(fileURLWithPath: path))
    }

    public func waitUntil(_ what: String, timeout: Double, interval: Double = 0.1, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if try condition() { return }
            if Date() > deadline { throw TestClusterError("timed out after \(timeout) s waiting for \(what)") }
            Thread.sleep(forTimeInterval: interval)
        }
    }
}

public struct TestClusterError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
