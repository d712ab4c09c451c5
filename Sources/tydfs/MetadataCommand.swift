import ArgumentParser
import Foundation
import Logging
import TYDFSCore
import TYDFSMetadata

struct MetadataCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metadata",
        abstract: "Work on a master's metadata database directly (masters stopped).",
        subcommands: [MetadataMigrateCommand.self])
}

struct MetadataMigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Copy a namespace from a master's SQLite folder into an empty PostgreSQL database.",
        discussion: """
            Stop the master first. --from is the folder holding metadata.sqlite (the master's --data, or its --metadata \
            folder). The target must be empty, and no master may be leading on it. Then start the masters with \
            --metadata postgres://… and the same --data folder (it keeps the cluster secret and the access keys).
            """)

    @Option(help: "Folder holding metadata.sqlite.") var from: String
    @Option(help: "postgres://user@host:port/database to copy into.") var to: String

    func run() async throws {
        try await TYDFSCommand.reportingErrors {
            let sqlite = from + "/metadata.sqlite"
            guard FileManager.default.fileExists(atPath: sqlite) else {
                throw TYDFSError(.notFound, "\(sqlite) does not exist: --from names the folder a master keeps metadata.sqlite in")
            }
            guard PostgresLink.isURL(to) else { throw TYDFSError(.invalidArgument, "--to must be a postgres:// URL, not '\(to)'") }
            var logger = Logger(label: "tydfs.metadata")
            logger.logLevel = .warning
            let link = try PostgresLink(url: to, applicationName: "tydfs metadata migrate", logger: logger)
            // The lease, held for the copy: no master can lead (on a partial namespace) meanwhile.
            let lease = LeaderLease(link: try PostgresLink(url: to, applicationName: "tydfs metadata migrate lease", logger: logger))
            try await lease.prepare()
            let instance = "migration-" + hex64(UInt64.random(in: .min ... .max))
            guard let epoch = try await lease.acquire(instance: instance, url: "", seconds: 24 * 3600) else {
                let holder = try await lease.holder()
                await lease.close()
                throw TYDFSError(.alreadyExists, "a master (\(holder.url)) leads on \(link.displayURL): stop the masters before migrating")
            }
            let started = ContinuousClock.now
            let source: SQLMetadataStore, target: SQLMetadataStore
            do {
                source = try await SQLMetadataStore.openSQLite(path: sqlite, logger: logger)
                // One transaction holds the whole namespace: it takes as long as it takes.
                target = try await SQLMetadataStore.openPostgres(link, epoch: epoch, writeSeconds: nil)
            } catch {
                try? await lease.release(instance: instance, epoch: epoch)
                await lease.close()
                await link.close()
                throw error
            }
            do {
                let counts = try await MetadataMigration.copy(from: source, to: target)
                say("migrated \(counts.files) files (\(counts.chunks) chunks), \(counts.directories) directories and \(counts.deletions) queued deletions from \(sqlite) to \(link.displayURL) in \(ContinuousClock.now - started)")
            } catch {
                try? await lease.release(instance: instance, epoch: epoch)
                await lease.close()
                try? await source.close()
                try? await target.close()
                throw error
            }
            try await lease.release(instance: instance, epoch: epoch)
            await lease.close()
            try await source.close()
            try await target.close()
        }
    }
}
