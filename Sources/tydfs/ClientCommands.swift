import ArgumentParser
import Foundation
import Logging
import TYDFSClient
import TYDFSCore
import TYDFSFileIO
import TYDFSProtocol

/// Options every client command shares.
struct ClientOptions: ParsableArguments {
    @Option(help: "Master URL (default: $TYDFS_MASTER, else http://127.0.0.1:9333).") var master: String?
    @Flag(help: "Log retries and fallbacks to stderr.") var verbose = false

    /// Runs `body` with a client, always shutting it down, reporting errors as one line.
    func withClient(_ body: (TYDFSClient) async throws -> Void) async throws {
        try await TYDFSCommand.reportingErrors {
            let client = try TYDFSClient(
                masterURL: masterURL(master), logger: TYDFSCommand.logger("tydfs.client", level: verbose ? .debug : .error))
            do {
                try await body(client)
            } catch {
                try? await client.shutdown()
                throw error
            }
            try await client.shutdown()
        }
    }
}

/// Options of commands that can print JSON.
struct OutputOptions: ParsableArguments {
    @Flag(help: "Print one JSON document instead of text.") var json = false

    func printJSON(_ value: some Encodable) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        say(String(decoding: try encoder.encode(value), as: UTF8.self))
    }
}

struct PutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "put",
        abstract: "Upload a local file (or - for stdin) to TYDFS.",
        discussion: "REMOTE defaults to /<basename of LOCAL>. Returns once every chunk is fsynced on its replicas and the file is visible.")

    @Argument(help: "Local file, or - for standard input.") var local: String
    @Argument(help: "Remote path, e.g. /dir/file.txt.") var remote: String?
    @Flag(help: "Replace the remote file if it exists.") var overwrite = false
    @OptionGroup var client: ClientOptions

    func validate() throws {
        if local == "-" && remote == nil { throw ValidationError("reading from stdin (-) needs a REMOTE path") }
    }

    func run() async throws {
        try await client.withClient { client in
            let target = try RemotePath(remote ?? "/" + (local.split(separator: "/").last.map(String.init) ?? local))
            let result = try await client.put(localPath: local, to: target, overwrite: overwrite)
            for warning in result.warnings { warn(warning) }
            let replicas = result.file.chunks.map(\.replicas.count).min() ?? result.file.replication
            say("\(result.file.path): \(result.file.sizeBytes) bytes in \(result.file.chunks.count) chunk(s), \(replicas) replica(s) each, \(result.file.checksum)")
        }
    }
}

struct GetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Download a file from TYDFS (LOCAL - writes to stdout).",
        discussion: "LOCAL defaults to ./<basename>; an existing directory receives <dir>/<basename>; an existing file is replaced atomically, like cp.")

    @Argument(help: "Remote path.") var remote: String
    @Argument(help: "Local file or directory, or - for standard output.") var local: String?
    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await client.withClient { client in
            let source = try RemotePath(remote)
            var target = local ?? source.name
            var isDirectory: ObjCBool = false
            if target != "-", FileManager.default.fileExists(atPath: target, isDirectory: &isDirectory), isDirectory.boolValue {
                target = (target.hasSuffix("/") ? target : target + "/") + source.name
            }
            try await client.get(source, to: target)
        }
    }
}

struct ListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls", abstract: "List a directory (or one file): size, modification time, path.")

    @Argument(help: "Remote path.") var path = "/"
    @OptionGroup var output: OutputOptions
    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await client.withClient { client in
            let listing = try await client.list(try RemotePath(path))
            if output.json { return try output.printJSON(listing) }
            for entry in listing.entries {
                let size = String(entry.sizeBytes)
                say("\(String(repeating: " ", count: max(0, 14 - size.count)))\(size)  \(formatTime(entry.mtimeMillis))  \(entry.path)\(entry.isDirectory ? "/" : "")")
            }
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
            let info = try await client.stat(try RemotePath(path))
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

struct NodesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nodes",
        abstract: "List datakeepers: id, address, alive/dead, in-flight transfers, capacity, used, chunk count.")

    @OptionGroup var output: OutputOptions
    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await client.withClient { client in
            let nodes = try await client.nodes()
            if output.json { return try output.printJSON(nodes) }
            let rows = [["ID", "ADDRESS", "STATE", "IN-FLIGHT", "CAPACITY", "USED", "CHUNKS", "REPAIRS", "DELETIONS"]] + nodes.nodes.map { node in
                [node.id.value, node.address, node.alive ? "alive" : "dead", String(node.inFlight),
                 ByteSize.format(node.capacityBytes), ByteSize.format(node.usedBytes), String(node.chunkCount),
                 String(node.repairCopies), String(node.pendingDeletions)]
            }
            let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max()! }
            for row in rows {
                say(zip(row, widths).map { $0 + String(repeating: " ", count: $1 - $0.count) }.joined(separator: "  ").trimmingCharacters(in: .whitespaces))
            }
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

/// `2026-11-25 11:53:53` in UTC.
func formatTime(_ millis: Int64) -> String {
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.timeZone = TimeZone(identifier: "UTC")
    formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
    return formatter.string(from: Date(timeIntervalSince1970: Double(millis) / 1000))
}
