import ArgumentParser
import Dispatch
import Foundation
import TYDFSClient
import TYDFSCore
import TYDFSFileIO
import TYDFSMount
#if canImport(Glibc)
import Glibc
#endif

/// `tydfs mount`: the cluster as a local file system, served by a process of its own until
/// `tydfs umount` (or with `--foreground`, by this one).
struct MountCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mount",
        abstract: "Mount the cluster on a local directory (FUSE), for cp, rsync and any other program.",
        discussion: """
            Files written through the mount are stored when they are closed (or fsynced), on every replica, and \
            are visible to other clients from then on; until then they are staged in --cache-dir. Opening an \
            existing file for writing copies it there first, so any write works. Reads stream verified ranges \
            with read-ahead. Modes, owners, modification times, symbolic links and special files are kept at the \
            master; hard links are not. Without --foreground, the \
            command returns once the mount is ready and prints the serving process's id; `tydfs umount` ends it.
            """)

    @Argument(help: "Local directory to mount on.") var mountpoint: String
    @Flag(help: "Serve in this process until unmounted (SIGINT or SIGTERM unmount as umount -l does).") var foreground = false
    @Flag(help: "Let other users use the mount (root, or user_allow_other in /etc/fuse.conf).") var allowOther = false
    @Option(help: "Folder for files being written (default: a new folder under $TMPDIR or /tmp, removed at unmount).")
    var cacheDir: String?
    @Option(help: "Log file of a background mount (default: <cache-dir>/mount.log).") var logFile: String?
    /// Set by a background mount for its server, which then owns the cache folder it was given.
    @Flag(help: .hidden) var removeCacheDir = false
    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await TYDFSCommand.reportingErrors {
            let target = try MountTable.checkedMountpoint(mountpoint)
            if MountTable.isTYDFSMount(target) { throw TYDFSError(.alreadyExists, "\(target) is already a tydfs mount") }
            let ownsCacheFolder = cacheDir == nil || removeCacheDir
            let cacheFolder = try cacheDir ?? Self.makeCacheFolder()
            try LocalFileSystem.makeDirectories(cacheFolder)
            if foreground {
                try await serve(at: target, cacheFolder: cacheFolder, removingIt: ownsCacheFolder)
            } else {
                try startInBackground(at: target, cacheFolder: cacheFolder)
            }
        }
    }

    private static func makeCacheFolder() throws -> String {
        let base = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
        return "\(base)/tydfs-mount-\(hex64(UInt64.random(in: .min ... .max)))"
    }

    private func serve(at target: String, cacheFolder: String, removingIt: Bool) async throws {
        let settings = try await Settings.load(section: ClientSettings.section, configPath: client.config.path)
        let tydfs = try client.makeClient(settings, concurrency: 4)
        let logger = LogOutput.logger("tydfs.mount", level: try settings.bool("verbose", client.verbose) ? .debug : .warning)
        let session = FuseSession(
            fileSystem: MountedFileSystem(client: tydfs, stagingFolder: cacheFolder, logger: logger), mountpoint: target, logger: logger)
        let signals = [SIGINT, SIGTERM].map { number -> DispatchSourceSignal in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number)
            source.setEventHandler { session.unmount() }
            source.resume()
            return source
        }
        defer { for source in signals { source.cancel() } }
        do {
            try await session.run(allowOther: allowOther) {
                say("mounted \(target) (process \(getpid()))")
            }
        } catch let error as MountError {
            try? await tydfs.shutdown()
            throw TYDFSError(.io, error.message)
        }
        try? await tydfs.shutdown()
        if removingIt { try? FileManager.default.removeItem(atPath: cacheFolder) }
    }

    /// Starts this command again with `--foreground` in a session of its own, and returns once
    /// the kernel shows the mount (or reports the log of a server that failed to mount).
    private func startInBackground(at target: String, cacheFolder: String) throws {
        let log = logFile ?? "\(cacheFolder)/mount.log"
        var arguments = Array(CommandLine.arguments.dropFirst()) + ["--foreground"]
        if cacheDir == nil { arguments += ["--cache-dir", cacheFolder, "--remove-cache-dir"] }
        let pid = try BackgroundProcess.spawn(arguments: arguments, log: log)
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if MountTable.isTYDFSMount(target) {
                say("mounted \(target) (process \(pid))")
                return
            }
            if let status = BackgroundProcess.exitStatus(pid) {
                let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                throw TYDFSError(.io, "the mount failed (exit \(status)): \(output.trimmingCharacters(in: .whitespacesAndNewlines))")
            }
            usleep(20_000)
        }
        kill(pid, SIGTERM)
        throw TYDFSError(.unavailable, "\(target) was not mounted within 30 s; see \(log)")
    }
}

/// `tydfs umount`: ends a mount `tydfs mount` made.
struct UnmountCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "umount",
        abstract: "Unmount a tydfs mount; its serving process then exits.",
        discussion: "Fails while a program has a file open or its working directory inside, unless --lazy.")

    @Argument(help: "The mount's local directory.") var mountpoint: String
    @Flag(help: "Detach now and finish when the last program lets go (umount -l).") var lazy = false

    func run() async throws {
        try await TYDFSCommand.reportingErrors {
            let target = try MountTable.checkedMountpoint(mountpoint)
            guard MountTable.isTYDFSMount(target) else { throw TYDFSError(.invalidArgument, "\(target) is not a tydfs mount") }
            do {
                try FuseSession.unmount(target, lazy: lazy)
            } catch let error as MountError {
                if error.errno == EBUSY {
                    throw TYDFSError(.unavailable, "\(target) is busy: a program has a file open or its working directory there; close it, or use --lazy")
                }
                throw TYDFSError(.io, error.message)
            }
        }
    }
}

/// What the kernel's mount table says about a directory.
enum MountTable {
    /// `path` made absolute and checked to be a directory.
    static func checkedMountpoint(_ path: String) throws -> String {
        guard let resolved = realpath(path, nil) else {
            throw TYDFSError(.notFound, "\(path): no such directory")
        }
        defer { free(resolved) }
        var isDirectory: ObjCBool = false
        let absolute = String(cString: resolved)
        guard FileManager.default.fileExists(atPath: absolute, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw TYDFSError(.invalidArgument, "\(path) is not a directory")
        }
        return absolute
    }

    /// Whether a tydfs FUSE file system is mounted at the absolute path `path`.
    static func isTYDFSMount(_ path: String) -> Bool {
        guard let table = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return false }
        // Fields: id parent major:minor root mountpoint options [optional…] - fstype source superoptions;
        // the mount point escapes spaces and backslashes as octal.
        return table.split(separator: "\n").contains { line in
            let fields = line.split(separator: " ")
            guard fields.count > 4, let dash = fields.firstIndex(of: "-"), dash + 1 < fields.count else { return false }
            return fields[dash + 1] == "fuse.tydfs" && unescape(String(fields[4])) == path
        }
    }

    private static func unescape(_ field: String) -> String {
        var bytes: [UInt8] = []
        var utf8 = Array(field.utf8)[...]
        while let byte = utf8.popFirst() {
            if byte == UInt8(ascii: "\\"), utf8.count >= 3, let value = UInt8(String(decoding: utf8.prefix(3), as: UTF8.self), radix: 8) {
                bytes.append(value)
                utf8 = utf8.dropFirst(3)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// A copy of this program started in a new session, detached from the terminal.
enum BackgroundProcess {
    /// glibc's POSIX_SPAWN_SETSID (since 2.26), which Swift does not import: the child calls
    /// setsid, so the terminal's signals and hang-up do not reach it.
    private static let spawnInNewSession: Int16 = 0x80

    static func spawn(arguments: [String], log: String) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Nothing else of ours: a caller waiting for this command to end (a pipe, or Foundation's
        // Process, which watches a socket its child inherits) must not wait for the server too.
        // This process only waits and exits after the spawn, so marking its descriptors is safe.
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? [] {
            if let descriptor = Int32(name), descriptor > 2 { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, spawnInNewSession)
        let program = "/proc/self/exe"
        let argv = ([CommandLine.arguments[0]] + arguments).map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, program, &actions, &attributes, argv, environ)
        guard result == 0 else { throw TYDFSError(.io, "cannot start the mount's process: \(String(cString: strerror(result)))") }
        return pid
    }

    /// The exit status of `pid` if it has ended (reaping it), nil while it runs.
    static func exitStatus(_ pid: pid_t) -> Int32? {
        var status: Int32 = 0
        guard waitpid(pid, &status, WNOHANG) == pid else { return nil }
        return (status >> 8) & 0xff
    }
}
