import ArgumentParser
import Foundation
import Logging
import NIOConcurrencyHelpers
import TYDFSClient
import TYDFSCore
import TYDFSFileIO
import TYDFSProtocol
import TYDFSSecurity

/// Options every client command shares.
struct ClientOptions: ParsableArguments {
    @Option(help: "Master URL (default: $TYDFS_MASTER, else the config file's \"master-url\", else http://127.0.0.1:9333).") var master: String?
    @Flag(help: "Log retries and fallbacks to stderr.") var verbose = false
    @Option(help: "CA certificates (PEM) to trust for an https master (default: $TYDFS_CA_FILE, the config file's \"ca-file\", else the system's).")
    var caFile: String?
    @OptionGroup var config: ConfigFileOption

    /// Where and how a client command reaches the master.
    struct Connection {
        var masterURL: String
        var verbose: Bool
        var signer: RequestSigner?
        var caFile: String?
    }

    /// The master URL, verbosity and credentials these options, the environment and the config
    /// file give. Credentials: the access key (`access-key-id` and `secret-access-key` at the top
    /// of the config file, or TYDFS_ACCESS_KEY_ID and TYDFS_SECRET_ACCESS_KEY), else the cluster
    /// secret (`secret-file`, TYDFS_SECRET_FILE: the operator's way back in), else none.
    func resolve(_ settings: Settings) throws -> Connection {
        let masterURL = try settings.masterURL(master) ?? defaultMasterURL
        let verbose = try settings.bool("verbose", verbose)
        let caFile = try settings.topLevel(ClientConfigFile.Setting.caFile, caFile)
        let keyID = try settings.topLevel(ClientConfigFile.Setting.accessKeyID, nil, flags: [])
        let secret = try settings.topLevel(ClientConfigFile.Setting.secretAccessKey, nil, flags: [], secret: true)
        let secretFile = try settings.topLevel("secret-file", nil, flags: [])
        let signer: RequestSigner?
        switch (keyID, secret) {
        case (let keyID?, let secret?): signer = RequestSigner(accessKeyID: keyID, secret: secret)
        case (nil, nil): signer = try secretFile.map { RequestSigner(cluster: try ClusterSecret.read(from: $0)) }
        default:
            throw TYDFSError(.invalidArgument, "an access key needs both \(ClientConfigFile.Setting.accessKeyID) and \(ClientConfigFile.Setting.secretAccessKey) (config file or TYDFS_ACCESS_KEY_ID and TYDFS_SECRET_ACCESS_KEY)")
        }
        return Connection(masterURL: masterURL, verbose: verbose, signer: signer, caFile: caFile)
    }

    /// Runs `body` with a client, always shutting it down, reporting errors as one line.
    /// Every request `body` makes carries one new request id, which the master's and
    /// datakeepers' logs show.
    func withClient(_ body: (TYDFSClient) async throws -> Void) async throws {
        try await withClient(concurrency: { _ in 1 }) { client, _ in try await body(client) }
    }

    /// As `withClient`, for a command that moves many files at once: `body` gets the number of
    /// operations to run at once (`--concurrency`, else the environment or the config file).
    func withClient(transfers: ConcurrencyOptions, _ body: (TYDFSClient, Int) async throws -> Void) async throws {
        try await withClient(concurrency: { try transfers.resolve($0) }, body)
    }

    /// A client for these options, the environment and the config file; the caller shuts it down.
    func makeClient(_ settings: Settings, concurrency: Int) throws -> TYDFSClient {
        let connection = try resolve(settings)
        return try TYDFSClient(
            masterURL: connection.masterURL, concurrency: concurrency, signer: connection.signer, caFile: connection.caFile,
            logger: LogOutput.logger("tydfs.client", level: connection.verbose ? .debug : .error))
    }

    private func withClient(concurrency resolveConcurrency: (Settings) throws -> Int, _ body: (TYDFSClient, Int) async throws -> Void) async throws {
        try await TYDFSCommand.reportingErrors {
            // A get receives into buffers it frees as soon as they are written. With glibc's
            // default the heap gave that memory back and faulted it in again: 14,000-29,000 page
            // faults per GiB got, 4,300-4,700 this way. In 8 gets of 1 GiB + sync alternating
            // with the old build on one cluster, 6 were faster, 1 as fast, 1 slower: 1.02 ->
            // 0.98 s on average, the client's CPU 1.22 -> 1.18 seconds. Keeping freed memory
            // alone also stopped glibc raising its map threshold, so every 1 MiB buffer of a put
            // was mapped and faulted in afresh (265,000 page faults per GiB put, 1.2-1.4
            // CPU-seconds against 0.65-0.76): big buffers come from the heaps too.
            MemoryPolicy.keepFreedMemory(upTo: Limits.keptFreedHeapBytes)
            MemoryPolicy.mapAllocations(ofAtLeast: Limits.clientMappedAllocationBytes)
            MemoryPolicy.limitHeaps(to: Limits.allocatorHeaps)
            let settings = try await Settings.load(section: ClientSettings.section, configPath: config.path)
            let concurrency = try resolveConcurrency(settings)
            let client = try makeClient(settings, concurrency: concurrency)
            do {
                try await RequestID.$current.withValue(RequestID.make()) {
                    try await Interruption.cancelling { try await body(client, concurrency) }
                }
            } catch {
                try? await client.shutdown()
                throw error
            }
            try await client.shutdown()
        }
    }
}

/// The settings of client commands (the shared options and `--concurrency`), as
/// `tydfs config print client` shows them.
struct ClientSettings: SettingsCommand {
    static let section = "client"
    @OptionGroup var client: ClientOptions
    @OptionGroup var transfers: ConcurrencyOptions

    var configFile: String? { client.config.path }

    func resolve(_ settings: Settings) throws -> (connection: ClientOptions.Connection, concurrency: Int) {
        (try client.resolve(settings), try transfers.resolve(settings))
    }
}

/// SIGINT and SIGTERM during a client command: the work under way is cancelled, which aborts an
/// upload at the master and removes a download's temporary file, and the command exits with
/// 128 + the signal's number, as a shell expects.
enum Interruption {
    static func cancelling(_ body: () async throws -> Void) async throws {
        let received = NIOLockedValueBox<Int32?>(nil)
        // The running task, while it runs: a signal cancels it, never a task that has finished
        // (it is cleared under the lock before this function returns). The body is not run in a
        // task of its own because it is not escaping: the commands' closures capture `self`.
        let running = NIOLockedValueBox<UnsafeCurrentTask?>(nil)
        withUnsafeCurrentTask { task in running.withLockedValue { $0 = task } }
        let sources = [SIGINT, SIGTERM].map { number -> DispatchSourceSignal in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number)
            source.setEventHandler {
                running.withLockedValue { task in
                    // A second signal while the first is being handled ends the process at once
                    // (a read that ignores cancellation, e.g. a put from a terminal).
                    if received.withLockedValue({ $0 }) != nil { _exit(128 + number) }
                    received.withLockedValue { $0 = number }
                    task?.cancel()
                }
            }
            source.resume()
            return source
        }
        defer {
            running.withLockedValue { $0 = nil }
            for source in sources { source.cancel() }
            signal(SIGINT, SIG_DFL)
            signal(SIGTERM, SIG_DFL)
        }
        do {
            try await body()
            // A signal that came as the work finished changed nothing: it succeeded.
            return
        } catch {
            if received.withLockedValue({ $0 }) == nil { throw error }
        }
        if let number = received.withLockedValue({ $0 }) {
            FileHandle.standardError.write(Data("tydfs: interrupted by \(number == SIGINT ? "SIGINT" : "SIGTERM"); nothing was left half-done\n".utf8))
            throw ExitCode(128 + number)
        }
    }
}

/// Options of commands that can print JSON.
struct OutputOptions: ParsableArguments {
    @Flag(help: "Print one JSON document instead of text.") var json = false

    func printJSON(_ value: some Encodable) throws { try Self.printJSON(value) }

    static func printJSON(_ value: some Encodable) throws {
        say(String(decoding: try OutputJSON.encoder().encode(value), as: UTF8.self))
    }
}

/// Options of commands that move many files at once.
struct ConcurrencyOptions: ParsableArguments {
    @Option(help: "Files transferred at once (1…\(Limits.maxConcurrentFileTransfers)).") var concurrency = 16

    func validate() throws {
        guard (1...Limits.maxConcurrentFileTransfers).contains(concurrency) else {
            throw ValidationError("--concurrency must be 1…\(Limits.maxConcurrentFileTransfers), not \(concurrency)")
        }
    }

    /// The flag, else `TYDFS_CLIENT_CONCURRENCY`, else the config file's `client.concurrency`.
    func resolve(_ settings: Settings) throws -> Int {
        let value = try settings.int("concurrency", concurrency)
        guard (1...Limits.maxConcurrentFileTransfers).contains(value) else {
            throw TYDFSError(.invalidArgument, "concurrency must be 1…\(Limits.maxConcurrentFileTransfers), not \(value)")
        }
        return value
    }
}

struct PutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "put",
        abstract: "Upload a local file (or - for stdin) to TYDFS, or a folder with -r.",
        discussion: """
            REMOTE defaults to /<basename of LOCAL>. Returns once every chunk is fsynced on its replicas and the file is visible.
            With -r, every file below the folder LOCAL goes to the same relative path below REMOTE (LOCAL/a/b.txt → REMOTE/a/b.txt), \
            --concurrency files at once, then a summary line is printed. Empty folders are not kept: the namespace holds files only. \
            A file that fails is named on stderr, the others go on, and the exit code is 1.
            """)

    @Argument(help: "Local file, or - for standard input, or a folder with -r.") var local: String
    @Argument(help: "Remote path, e.g. /dir/file.txt (with -r: the remote folder).") var remote: String?
    @Flag(help: "Replace the remote file if it exists.") var overwrite = false
    @Flag(name: [.customShort("r"), .long], help: "Upload the folder LOCAL and everything below it.") var recursive = false
    @Flag(name: [.customShort("q"), .long], help: "No progress bar (there is one only when stderr is a terminal).") var quiet = false
    @OptionGroup var transfers: ConcurrencyOptions
    @OptionGroup var client: ClientOptions

    func validate() throws {
        if local == "-" && remote == nil { throw ValidationError("reading from stdin (-) needs a REMOTE path") }
        if local == "-" && recursive { throw ValidationError("-r uploads a folder; standard input (-) is a single file") }
    }

    func run() async throws {
        if recursive {
            return try await client.withClient(transfers: transfers) { client, concurrency in
                let target = try RemotePath(remote ?? "/" + LocalFileSystem.lastName(of: local))
                let started = ContinuousClock.now
                let result = try await client.putFolder(
                    local, to: target, overwrite: overwrite, concurrency: concurrency,
                    progress: quiet ? nil : ProgressLine.start("put"))
                try summarize(result, verb: "put", since: started)
            }
        }
        try await client.withClient { client in
            let target = try RemotePath(remote ?? "/" + LocalFileSystem.lastName(of: local))
            let result = try await ProgressBar.around("put", quiet: quiet) {
                try await client.put(localPath: local, to: target, overwrite: overwrite)
            }
            for warning in result.warnings { warn(warning) }
            let replicas = result.file.chunks.map(\.replicas.count).min() ?? result.file.replication
            say("\(result.file.path): \(result.file.sizeBytes) bytes in \(result.file.chunks.count) chunk(s), \(replicas) replica(s) each, \(result.file.checksum)")
        }
    }
}

struct GetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Download a file from TYDFS (LOCAL - writes to stdout), or a folder with -r.",
        discussion: """
            LOCAL defaults to ./<basename>; an existing directory receives <dir>/<basename>; an existing file is replaced atomically, like cp.
            With -r, every file below REMOTE goes to the same relative path below the folder LOCAL (REMOTE/a/b.txt → LOCAL/a/b.txt), \
            folders are created as needed, --concurrency files at once, then a summary line is printed. \
            A file that fails is named on stderr, the others go on, and the exit code is 1.
            """)

    @Argument(help: "Remote path (with -r: a remote folder).") var remote: String
    @Argument(help: "Local file or directory, or - for standard output (with -r: the local folder). A device or FIFO (/dev/null, a named pipe) is written into, never replaced.") var local: String?
    @Flag(name: [.customShort("r"), .long], help: "Download the folder REMOTE and everything below it.") var recursive = false
    @Flag(name: [.customShort("q"), .long], help: "No progress bar (there is one only when stderr is a terminal).") var quiet = false
    @OptionGroup var transfers: ConcurrencyOptions
    @OptionGroup var client: ClientOptions

    func validate() throws {
        if local == "-" && recursive { throw ValidationError("-r downloads a folder; standard output (-) takes a single file") }
    }

    func run() async throws {
        if recursive {
            return try await client.withClient(transfers: transfers) { client, concurrency in
                let source = try RemotePath(remote)
                let started = ContinuousClock.now
                let result = try await client.getFolder(
                    source, to: local ?? (source.isRoot ? "." : source.name), concurrency: concurrency,
                    progress: quiet ? nil : ProgressLine.start("get"))
                try summarize(result, verb: "get", since: started)
            }
        }
        try await client.withClient { client in
            let source = try RemotePath(remote)
            var target = local ?? source.name
            var isDirectory: ObjCBool = false
            if target != "-", FileManager.default.fileExists(atPath: target, isDirectory: &isDirectory), isDirectory.boolValue {
                target = (target.hasSuffix("/") ? target : target + "/") + source.name
            }
            try await ProgressBar.around("get", quiet: quiet) { try await client.get(source, to: target) }
        }
    }
}

/// Rows of cells as lines of left-aligned columns, two spaces apart.
func alignedColumns(_ rows: [[String]]) -> [String] {
    guard let first = rows.first else { return [] }
    let widths = (0..<first.count).map { column in rows.map { $0[column].count }.max()! }
    return rows.map { row in
        zip(row, widths).map { $0 + String(repeating: " ", count: $1 - $0.count) }.joined(separator: "  ").trimmingCharacters(in: .whitespaces)
    }
}

/// `text` padded on the left to `width` characters: a column of sizes in `ls` and `du`.
func rightAligned(_ text: String, width: Int) -> String {
    String(repeating: " ", count: max(0, width - text.count)) + text
}

struct ListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls", abstract: "List a directory (or one file): size, modification time, path.")

    @Argument(help: "Remote path.") var path = "/"
    @OptionGroup var output: OutputOptions
    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await client.withClient { client in
            let remote = try RemotePath(path)
            // Each page is printed as it comes, so the first lines of a huge directory show at
            // once and the client holds one page, not the directory.
            if output.json {
                var document = ListingJSON()
                try await client.forEachListPage(remote) { page in emit(try document.add(page)) }
                return say(try document.finish())
            }
            try await client.forEachListPage(remote) { page in
                var text = ""
                for entry in page.entries {
                    let size = String(entry.sizeBytes)
                    text += "\(rightAligned(size, width: 14))  \(formatTime(entry.mtimeMillis))  \(entry.path)\(entry.isDirectory ? "/" : "")\n"
                }
                emit(text)
            }
        }
    }
}

struct CatCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cat",
        abstract: "Write a file to standard output (as `get PATH -`: each chunk verified before any of it is written).")

    @Argument(help: "Remote path.") var path: String
    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await client.withClient { client in
            try await client.get(try RemotePath(path), to: "-")
        }
    }
}

struct DiskUsageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "du",
        abstract: "Show the bytes below each entry of a directory (as stored once; each is kept on --replication datakeepers), and the total.")

    @Argument(help: "Remote path.") var path = "/"
    @OptionGroup var output: OutputOptions
    @OptionGroup var client: ClientOptions

    /// `du --json`: the listing's entries with their sizes, and their sum.
    struct Usage: Encodable {
        var path: String
        var totalBytes: Int64
        var entries: [ListEntry]
    }

    func run() async throws {
        try await client.withClient { client in
            let listing = try await client.list(try RemotePath(path))
            let total = listing.entries.reduce(Int64(0)) { $0 + $1.sizeBytes }
            if output.json { return try output.printJSON(Usage(path: listing.path, totalBytes: total, entries: listing.entries)) }
            var text = ""
            for (size, name) in listing.entries.map({ ($0.sizeBytes, $0.path + ($0.isDirectory ? "/" : "")) }) + [(total, "total")] {
                text += "\(rightAligned(ByteSize.format(size), width: 12))  \(name)\n"
            }
            FileHandle.standardOutput.write(Data(text.utf8))
        }
    }
}

struct StatCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stat", abstract: "Show a file's size, checksum, chunks and the datakeepers holding each chunk.")

    @Argument(help: "Remote path.") var path: String
    @OptionGroup var output: OutputOptions
    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await client.withClient { client in
            let info = try await client.stat(try RemotePath(path), inspecting: true)
            if output.json { return try output.printJSON(info) }
            say("path:        \(info.path)")
            say("size:        \(info.sizeBytes) bytes (\(ByteSize.format(info.sizeBytes)))")
            say("checksum:    \(info.checksum)")
            say("modified:    \(formatTime(info.mtimeMillis))")
            say("replication: \(info.replication)\(info.underReplicated ? " (UNDER-REPLICATED)" : "")")
            say("chunks:      \(info.chunks.count) of up to \(ByteSize.format(info.chunkSizeBytes))")
            for chunk in info.chunks {
                let holders = chunk.replicas.map { "\($0.id)@\($0.address)\($0.alive ? "" : " (dead)")" }.joined(separator: ", ")
                say("  #\(chunk.index) \(chunk.id) \(chunk.sizeBytes) bytes crc32c:\(chunk.crc32c) on \(holders.isEmpty ? "no datakeeper" : holders)")
            }
        }
    }
}

struct RemoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm", abstract: "Remove a file. Its chunks are deleted from the datakeepers in the background.")

    @Argument(help: "Remote path.") var path: String
    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await client.withClient { client in
            try await client.remove(try RemotePath(path))
        }
    }
}

struct MakeDirectoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mkdir",
        abstract: "Make a directory. It exists while empty, until rmdir; parents are made as needed.",
        discussion: "Fails when PATH exists (unless -p) or a file stands at PATH or above it.")

    @Flag(name: [.customShort("p"), .long], help: "No error if the directory exists.") var parents = false
    @Argument(help: "Remote directory to make.") var path: String
    @OptionGroup var output: OutputOptions
    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await client.withClient { client in
            let made = try await client.makeDirectory(try RemotePath(path), parents: parents)
            if output.json { try output.printJSON(made) }
        }
    }
}

struct RemoveDirectoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rmdir",
        abstract: "Remove an empty directory.",
        discussion: "Fails, changing nothing, when the directory holds anything.")

    @Argument(help: "Remote directory to remove.") var path: String
    @OptionGroup var output: OutputOptions
    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await client.withClient { client in
            let removed = try await client.removeDirectory(try RemotePath(path))
            if output.json { try output.printJSON(removed) }
        }
    }
}

struct MoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mv",
        abstract: "Rename a file or a directory (everything below it moves too), atomically. No data is copied.",
        discussion: """
            If DESTINATION is an existing directory, SOURCE moves into it. Fails, changing nothing, when \
            SOURCE does not exist or the new path is taken.
            """)

    @Argument(help: "Remote path to rename.") var source: String
    @Argument(help: "New remote path, or an existing directory to move into.") var destination: String
    @OptionGroup var output: OutputOptions
    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await client.withClient { client in
            let moved = try await client.rename(try RemotePath(source), to: try RemotePath(destination))
            if output.json { return try output.printJSON(moved) }
            say("\(moved.from) -> \(moved.to) (\(moved.files) file\(moved.files == 1 ? "" : "s"))")
        }
    }
}

struct MastersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "masters",
        abstract: "List the masters given (--master URL1,URL2,...): each one's role (leader or standby) and leadership epoch.",
        discussion: """
            --json prints {"masters": [{"url": ..., "role": "leader", "epoch": 7}, ...]} with every master that answered, and             "unreachable" with those that did not. Exit code 0 when at least one master answered, 1 otherwise.
            """)

    /// The `--json` document.
    struct Listing: Encodable {
        struct Entry: Encodable {
            var url: String
            var role: String
            var epoch: LeaderEpoch
            var leader: String?
        }
        var masters: [Entry]
        var unreachable: [String]
    }

    @OptionGroup var output: OutputOptions
    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await client.withClient { client in
            let answers = await client.masterRoles()
            var listing = Listing(masters: [], unreachable: [])
            for (url, answer) in answers {
                switch answer {
                case .success(let role): listing.masters.append(.init(url: url, role: role.role, epoch: role.epoch, leader: role.leader))
                case .failure(let error):
                    listing.unreachable.append(url)
                    warn("\(url): \(error.message)")
                }
            }
            if output.json {
                try output.printJSON(listing)
            } else {
                let rows = [["URL", "ROLE", "EPOCH", "LEADER"]] + listing.masters.map { [$0.url, $0.role, String($0.epoch.value), $0.leader ?? "-"] }
                for line in alignedColumns(rows) { say(line) }
            }
            guard !listing.masters.isEmpty else { throw TYDFSError(.unreachable, "no master answered") }
        }
    }
}

struct NodesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nodes",
        abstract: "List datakeepers: id, address, state (alive, dead, draining, retired), in-flight transfers, capacity, used, chunk count.")

    @OptionGroup var output: OutputOptions
    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await client.withClient { client in
            let nodes = try await client.nodes()
            if output.json { return try output.printJSON(nodes) }
            let rows = [["ID", "ADDRESS", "STATE", "IN-FLIGHT", "CAPACITY", "USED", "CHUNKS", "REPAIRS", "DELETIONS"]] + nodes.nodes.map { node in
                [node.id.value, node.address, node.state.rawValue, String(node.inFlight),
                 ByteSize.format(node.capacityBytes), ByteSize.format(node.usedBytes), String(node.chunkCount),
                 String(node.repairCopies), String(node.pendingDeletions)]
            }
            for line in alignedColumns(rows) { say(line) }
        }
    }
}

struct FsckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fsck",
        abstract: "Check the health of the namespace: healthy, under-replicated, missing, corrupt chunks.",
        discussion: "Exit code 0 when no data is missing (under-replicated chunks are being repaired), 1 otherwise.")

    @Argument(help: "Remote path (a file or a directory).") var path = "/"
    @OptionGroup var output: OutputOptions
    @OptionGroup var client: ClientOptions

    func run() async throws {
        var missingData = false
        try await client.withClient { client in
            let report = try await client.fsck(try RemotePath(path))
            missingData = !report.healthy
            if output.json { return try output.printJSON(report) }
            for problem in report.problems {
                say("\(problem.status.uppercased()) \(problem.path) chunk #\(problem.chunkIndex) \(problem.chunk): \(problem.liveReplicas)/\(problem.replication) live replicas; \(problem.detail)")
            }
            say("\(report.files) files, \(report.chunks) chunks: \(report.healthyChunks) healthy, \(report.underReplicatedChunks) under-replicated, \(report.overReplicatedChunks) over-replicated, \(report.missingChunks) missing, \(report.corruptReplicas) corrupt replicas")
            say(report.healthy ? "status: HEALTHY (no data missing)" : "status: MISSING DATA in \(report.filesWithMissingData.map(\.value).joined(separator: ", "))")
        }
        if missingData { throw ExitCode.failure }
    }
}

struct ChecksumCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checksum",
        abstract: "Print the CRC32C of a local file (or - for stdin), as `tydfs stat` shows it for a stored file.")

    @Argument(help: "Local file, or - for standard input.") var local: String

    func run() async throws {
        try await TYDFSCommand.reportingErrors {
            let file = local == "-" ? LocalFile.standardStream(0, name: "standard input") : try await LocalFile.openForReading(local)
            defer { try? file.close() }
            var crc = CRC32C()
            var offset: Int64 = 0
            while true {
                let piece = try await file.read(count: Limits.ioBufferBytes, at: local == "-" ? nil : offset)
                if piece.readableBytes == 0 { break }
                piece.withUnsafeReadableBytes { crc.update($0) }
                offset += Int64(piece.readableBytes)
            }
            say("crc32c:\(hex32(crc.value))  \(offset) bytes  \(local)")
        }
    }
}

/// Prints a folder transfer's summary line on stdout and each failure on stderr; a failure makes
/// the command exit with 1 after the summary.
func summarize(_ result: FolderTransferResult, verb: String, since started: ContinuousClock.Instant) throws {
    let seconds = max(1e-6, (ContinuousClock.now - started).inSeconds)
    for warning in result.warnings { warn(warning) }
    for failure in result.failures { FileHandle.standardError.write(Data("tydfs: \(failure.path): \(failure.message)\n".utf8)) }
    let failed = result.failures.isEmpty ? "" : "; \(result.failures.count) failed"
    let folders = result.emptyFolders == 0 ? "" : "; \(result.emptyFolders) empty folder\(result.emptyFolders == 1 ? "" : "s")"
    say("\(verb) -r: \(result.files) files, \(ByteSize.format(result.bytes)) in \(String(format: "%.2f", seconds)) s (\(String(format: "%.1f", Double(result.files) / seconds)) files/s)\(folders)\(failed)")
    if !result.failures.isEmpty { throw ExitCode.failure }
}

/// A "put 120/2000 files" line on stderr, redrawn at most 10 times a second, only when stderr is
/// a terminal (never in logs or pipes).
enum ProgressLine {
    static func start(_ verb: String) -> BatchProgress? {
        guard isatty(STDERR_FILENO) == 1 else { return nil }
        let lastDrawn = NIOLockedValueBox<ContinuousClock.Instant?>(nil)
        return { finished, total in
            let now = ContinuousClock.now
            let draw = lastDrawn.withLockedValue { last in
                guard finished == total || last.map({ now - $0 >= .milliseconds(100) }) ?? true else { return false }
                last = now
                return true
            }
            guard draw else { return }
            let end = finished == total ? "\r\u{1B}[K" : ""
            FileHandle.standardError.write(Data("\r\(verb) \(finished)/\(total) files\(end)".utf8))
        }
    }
}

/// A progress bar on stderr for one large put or get: bytes, percent, rate and time left,
/// redrawn 5 times a second, only when stderr is a terminal and not `--quiet`.
enum ProgressBar {
    static func around<T>(_ verb: String, quiet: Bool, _ body: () async throws -> T) async throws -> T {
        guard !quiet, isatty(STDERR_FILENO) == 1 else { return try await body() }
        let meter = TransferMeter()
        let started = ContinuousClock.now
        let drawer = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(200))
                if Task.isCancelled { break }
                FileHandle.standardError.write(Data(("\r" + line(verb, meter.progress, seconds: (ContinuousClock.now - started).inSeconds) + "\u{1B}[K").utf8))
            }
        }
        let result: Result<T, Error>
        do {
            result = .success(try await TransferMeter.$current.withValue(meter) { try await body() })
        } catch {
            result = .failure(error)
        }
        drawer.cancel()
        await drawer.value
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
        return try result.get()
    }

    /// `put  42% [########            ] 430.0 MiB / 1.0 GiB  215.0 MiB/s  ETA 3s`
    static func line(_ verb: String, _ progress: (done: Int64, total: Int64?), seconds: Double) -> String {
        let rate = seconds > 0 ? Double(progress.done) / seconds : 0
        let rateText = ByteSize.format(Int64(rate)) + "/s"
        guard let total = progress.total, total > 0 else { return "\(verb) \(ByteSize.format(progress.done))  \(rateText)" }
        let fraction = min(1, Double(progress.done) / Double(total))
        let filled = Int(fraction * 20)
        let bar = String(repeating: "#", count: filled) + String(repeating: " ", count: 20 - filled)
        let left = rate > 0 ? Int((Double(total - min(progress.done, total)) / rate).rounded(.up)) : nil
        let eta = left.map { $0 >= 60 ? "\($0 / 60)m\($0 % 60)s" : "\($0)s" } ?? "?"
        return "\(verb) \(rightAligned(String(Int(fraction * 100)), width: 3))% [\(bar)] \(ByteSize.format(progress.done)) / \(ByteSize.format(total))  \(rateText)  ETA \(eta)"
    }
}

/// `2026-11-25 11:53:53` in UTC (`CivilTime`: `ls` prints one per entry).
func formatTime(_ millis: Int64) -> String {
    let time = CivilTime(millisSince1970: millis)
    func two(_ value: Int64) -> String { value < 10 ? "0\(value)" : "\(value)" }
    return "\(time.year)-\(two(time.month))-\(two(time.day)) \(two(time.hour)):\(two(time.minute)):\(two(time.second))"
}

struct DrainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drain",
        abstract: "Take a datakeeper out of service: it takes no new chunks, and its chunks are copied to others.",
        discussion: """
            Waits until every chunk it holds is at its factor on other datakeepers (state 'retired'); it can then \
            be switched off without any chunk going below its factor. --no-wait only starts the drain; --cancel \
            puts the datakeeper back in service. The drain is kept in the master's memory: after a master restart, \
            drain again (or run the datakeeper with --maintenance, which asks for it itself).
            """)

    @Argument(help: "The datakeeper's id (see `tydfs nodes`).") var id: String
    @Flag(help: "Put a draining or retired datakeeper back in service.") var cancel = false
    @Flag(inversion: .prefixedNo, help: "Wait until the datakeeper is drained.") var wait = true
    @OptionGroup var output: OutputOptions
    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await client.withClient { client in
            let datakeeper = try DataKeeperID(id)
            var status = try await cancel ? client.cancelDrain(datakeeper) : client.drain(datakeeper)
            var lastShown = -1
            while wait, !cancel, status.state == .draining {
                if !output.json, status.chunksRemaining != lastShown {
                    let blocked = status.blockedBy.map { " (\($0))" } ?? ""
                    FileHandle.standardError.write(Data("tydfs: draining \(id): \(status.chunksRemaining) chunks still below their factor elsewhere\(blocked)\n".utf8))
                    lastShown = status.chunksRemaining
                }
                try await Task.sleep(for: .seconds(1))
                status = try await client.drainStatus(datakeeper)
            }
            if wait, !cancel, status.state == .dead {
                throw TYDFSError(.unavailable, "\(id) died while draining; its chunks are repaired from other replicas")
            }
            if output.json { return try output.printJSON(status) }
            say("\(id): \(status.state.rawValue)\(status.state == .draining ? ", \(status.chunksRemaining) chunks to go" : "")")
        }
    }
}
