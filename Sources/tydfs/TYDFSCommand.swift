import ArgumentParser
import Foundation
import Logging
import TYDFSCore

/// The `tydfs` command: one binary for the master, the datakeepers and the client.
@main
struct TYDFSCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tydfs",
        abstract: "TYDFS, a distributed file system: every chunk of every file on several datakeepers.",
        discussion: """
            Client commands find the master through --master URL, else $TYDFS_MASTER, else http://127.0.0.1:9333.
            Sizes accept KiB, MiB, GiB suffixes; durations s, ms, m. Errors go to stderr, one line, exit code 1.
            """,
        subcommands: [
            MasterCommand.self, DataKeeperCommand.self, ClusterCommand.self, PutCommand.self, GetCommand.self,
            ListCommand.self, DiskUsageCommand.self, StatCommand.self, CatCommand.self, MakeDirectoryCommand.self, RemoveDirectoryCommand.self, MoveCommand.self, RemoveCommand.self, MastersCommand.self, NodesCommand.self, DrainCommand.self, FsckCommand.self,
            ChecksumCommand.self, BenchCommand.self, S3Command.self, MountCommand.self, UnmountCommand.self, ConfigCommand.self, KeygenCommand.self, KeyCommand.self, MetadataCommand.self,
        ])

    /// Runs a command body, turning every failure into one line on stderr and exit code 1.
    static func reportingErrors(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as TYDFSError {
            FileHandle.standardError.write(Data("tydfs: \(error.message)\n".utf8))
            throw ExitCode.failure
        } catch let error as ExitCode {
            throw error
        } catch {
            FileHandle.standardError.write(Data("tydfs: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }

    static func parse<T>(_ text: String, _ parser: (String) throws -> T) throws -> T {
        do {
            return try parser(text)
        } catch let error as TYDFSError {
            throw ValidationError(error.message)
        }
    }
}

/// Prints a line to stdout and flushes it at once, so that scripts and tests reading a pipe or
/// a log file see it immediately.
func say(_ line: String) {
    emit(line + "\n")
}

/// Prints `text` to stdout as it is, at once.
func emit(_ text: String) {
    do {
        try FileHandle.standardOutput.write(contentsOf: Data(text.utf8))
    } catch {
        // The reader went away (`tydfs ls | head`): end as a program killed by SIGPIPE does.
        exit(128 + SIGPIPE)
    }
}

/// Prints a warning line to stderr.
func warn(_ line: String) {
    FileHandle.standardError.write(Data("tydfs: warning: \(line)\n".utf8))
}
