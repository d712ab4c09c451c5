import Foundation
import NIOConcurrencyHelpers
import TYDFSCore
import TYDFSProtocol
import TYDFSTestSupport
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// `tydfs mount` as programs use it: a real FUSE mount of a real cluster, driven by `cp`,
/// `rsync`, `diff` and plain system calls, and by `tydfs put`/`get` from outside it.
final class MountTests: XCTestCase {
    /// A mount served by a `tydfs mount --foreground` process this test started.
    private final class Mount {
        let directory: String
        let process: Process

        init(_ cluster: TestCluster, extraArguments: [String] = []) throws {
            directory = cluster.root + "/mnt-" + UUID().uuidString.prefix(6)
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            process = try cluster.start(["mount", directory, "--foreground", "--cache-dir", cluster.root + "/mount-cache"] + extraArguments)
            try cluster.waitUntil("the mount at \(directory)", timeout: 20) {
                guard process.isRunning else { throw TestClusterError("tydfs mount exited with \(process.terminationStatus)") }
                return Self.isMounted(directory)
            }
        }

        static func isMounted(_ directory: String) -> Bool {
            let table = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
            return table.split(separator: "\n").contains { $0.contains(" \(directory) ") && $0.contains(" fuse.tydfs ") }
        }

        /// Unmounts (lazily, so a failed test cannot leave it busy) and waits for the process.
        func end() {
            if Self.isMounted(directory) { umount2(directory, Int32(MNT_DETACH)) }
            TestCluster.end(process)
        }

        func path(_ relative: String) -> String { directory + "/" + relative }
    }

    private func shell(_ command: String, in folder: String) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        process.currentDirectoryURL = URL(fileURLWithPath: folder)
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    /// The errno of a system call that failed, 0 if it succeeded: read before anything else runs.
    private func errorCode(_ call: () -> Int32) -> Int32 {
        call() == -1 ? Glibc.errno : 0
    }

    /// A folder of more entries than one page of a listing (`Limits.listPageEntries`) is listed
    /// page by page: `tydfs ls` as text and as JSON, and `ls` through the mount, each show every
    /// entry once, in order.
    func testAFolderOfMoreThanOnePageListsWhole() throws {
        let cluster = try TestCluster(datakeepers: 3)
        let count = Limits.listPageEntries + 3
        try cluster.succeed(["bench", "--files", "\(count)", "--size", "0", "--prefix", "/many", "--keep", "--concurrency", "16"])
        let listed = try cluster.json(ListResponse.self, ["ls", "/many"]).entries.map(\.path)
        XCTAssertEqual(listed.count, count)
        XCTAssertEqual(Set(listed).count, count, "no entry twice")
        XCTAssertEqual(listed, listed.sorted())
        let lines = String(decoding: try cluster.succeed(["ls", "/many"]).stdout, as: UTF8.self).split(separator: "\n")
        XCTAssertEqual(lines.compactMap { $0.split(separator: " ").last.map(String.init) }, listed, "the text lists the same, in the same order")
        let mount = try Mount(cluster)
        defer { mount.end() }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: mount.path("many")).sorted().map { "/many/" + $0 }, listed)
    }

    func testFilesAndFoldersRoundTripThroughTheMountAndTheCLI() throws {
        // 1 MiB chunks: a 9 MiB file crosses chunk boundaries and the reader's 8 MiB windows.
        let cluster = try TestCluster(datakeepers: 3, chunkSize: "1MiB")
        defer { cluster.shutdown() }
        let mount = try Mount(cluster)
        defer { mount.end() }
        let big = try cluster.makeFile("big", size: 9 * 1024 * 1024 + 12345, seed: 7)

        // cp in: stored on every replica when cp returns, byte for byte, with the size's chunks.
        XCTAssertEqual(try shell("cp '\(big)' '\(mount.path("big"))'", in: cluster.root).status, 0)
        let stored = try cluster.stat("/big")
        XCTAssertEqual(stored.sizeBytes, 9 * 1024 * 1024 + 12345)
        XCTAssertEqual(stored.chunks.count, 10)
        XCTAssertFalse(stored.underReplicated)
        XCTAssertEqual(try cluster.succeed(["get", "/big", "-"]).stdout, try cluster.contents(big))
        // cp out, and a read at an offset across a window boundary.
        XCTAssertEqual(try shell("cp '\(mount.path("big"))' '\(cluster.root)/big.out' && cmp '\(big)' '\(cluster.root)/big.out'", in: cluster.root).status, 0)
        let handle = try XCTUnwrap(FileHandle(forReadingAtPath: mount.path("big")))
        try handle.seek(toOffset: 8 * 1024 * 1024 - 100)
        XCTAssertEqual(try handle.read(upToCount: 200), try cluster.contents(big).subdata(in: (8 * 1024 * 1024 - 100)..<(8 * 1024 * 1024 + 100)))
        try handle.close()

        // A file put with the CLI reads through the mount.
        let small = try cluster.makeFile("small", size: 70_000, seed: 3)
        try cluster.succeed(["put", small, "/from-cli/small"])
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: mount.path("from-cli/small"))), try cluster.contents(small))

        // rsync -a of a tree with nested folders, an empty folder, empty files and unicode names.
        let tree = cluster.root + "/tree"
        for folder in ["a/b/c", "empty", "ünï/cödé"] {
            try FileManager.default.createDirectory(atPath: tree + "/" + folder, withIntermediateDirectories: true)
        }
        FileManager.default.createFile(atPath: tree + "/a/b/c/zero", contents: Data())
        FileManager.default.createFile(atPath: tree + "/ünï/cödé/ñame with spaces.txt", contents: Data("héllo\n".utf8))
        try FileManager.default.copyItem(atPath: small, toPath: tree + "/a/b/small")
        // Two spellings of one name (é as one character; e and a combining accent) are two
        // folders and two files, as on the local disk, and a name may start with an accent.
        let spellings = try shell(#"cd tree && mkdir -p "twice/caf$(printf '\303\251')" "twice/cafe$(printf '\314\201')" && printf 1 > "twice/caf$(printf '\303\251')/f" && printf 22 > "twice/cafe$(printf '\314\201')/f" && printf 333 > "twice/x$(printf '\303\251')" && printf 4444 > "twice/xe$(printf '\314\201')" && printf 5 > "twice/$(printf '\314\201')first""#, in: cluster.root)
        XCTAssertEqual(spellings.status, 0, spellings.output)
        let synced = try shell("rsync -a '\(tree)/' '\(mount.path("tree"))/' && diff -r '\(tree)' '\(mount.path("tree"))'", in: cluster.root)
        XCTAssertEqual(synced.status, 0, synced.output)
        XCTAssertEqual(try cluster.stat("/tree/a/b/c/zero").sizeBytes, 0)
        let listed = try cluster.json(ListResponse.self, ["ls", "/tree/ünï/cödé", "--json"]).entries.map(\.path)
        XCTAssertEqual(listed, ["/tree/ünï/cödé/ñame with spaces.txt"])
        let twice = try cluster.json(ListResponse.self, ["ls", "/tree/twice", "--json"]).entries
        XCTAssertEqual(twice.map { Array($0.path.utf8) }, ["cafe\u{301}", "caf\u{E9}", "xe\u{301}", "x\u{E9}", "\u{301}first"].map { Array(("/tree/twice/" + $0).utf8) })
        XCTAssertEqual(twice.map(\.sizeBytes), [2, 1, 4, 3, 1], "listed in byte order, each with its own bytes")
        try cluster.succeed(["get", "-r", "/tree/twice", cluster.root + "/fetched"])
        let fetched = try shell("diff -r tree/twice fetched", in: cluster.root)
        XCTAssertEqual(fetched.status, 0, fetched.output)
        // A name that is not UTF-8 (é in Latin-1) is refused with EILSEQ, never repaired into
        // another name (U+FFFD would make caf\xE9 and caf\xE8 one file).
        for last: UInt8 in [0xE9, 0xE8] {
            let name = Array(mount.path("tree/twice/caf").utf8CString.dropLast()) + [CChar(bitPattern: last), 0]
            XCTAssertEqual(errorCode { name.withUnsafeBufferPointer { open($0.baseAddress!, O_CREAT | O_WRONLY, 0o644) } }, EILSEQ)
            XCTAssertEqual(errorCode { name.withUnsafeBufferPointer { mkdir($0.baseAddress!, 0o755) } }, EILSEQ)
        }
        XCTAssertEqual(try cluster.json(ListResponse.self, ["ls", "/tree/twice", "--json"]).entries.count, 5, "nothing was made")
        // rsync -a keeps files' modification times, so a second run sends no file again.
        let sourceTime = try XCTUnwrap(try FileManager.default.attributesOfItem(atPath: tree + "/a/b/small")[.modificationDate] as? Date)
        XCTAssertEqual(try cluster.stat("/tree/a/b/small").mtimeMillis, Int64((sourceTime.timeIntervalSince1970 * 1000).rounded(.down)))
        let resynced = try shell("rsync -ai '\(tree)/' '\(mount.path("tree"))/'", in: cluster.root)
        XCTAssertEqual(resynced.status, 0, resynced.output)
        XCTAssertFalse(resynced.output.split(separator: "\n").contains { $0.hasPrefix(">f") }, resynced.output)
        XCTAssertEqual(try shell("touch -d @1500000000 '\(mount.path("tree/a/b/small"))'", in: cluster.root).status, 0)
        XCTAssertEqual(try cluster.stat("/tree/a/b/small").mtimeMillis, 1_500_000_000_000)
        // Times past what milliseconds hold, or past the year 9999, are refused (EINVAL) and
        // change nothing; the mount lives on.
        for seconds in ["9300000000000000", "-9300000000000000", "253402300800"] {
            let touched = try shell("touch -d @\(seconds) '\(mount.path("tree/a/b/small"))'", in: cluster.root)
            XCTAssertNotEqual(touched.status, 0, "touch -d @\(seconds): \(touched.output)")
            XCTAssertTrue(touched.output.contains("Invalid argument"), touched.output)
        }
        XCTAssertEqual(try cluster.stat("/tree/a/b/small").mtimeMillis, 1_500_000_000_000)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: mount.path("tree/a/b/small"))[.size] as? Int, 70_000)

        // Renames within and across folders, over an existing file, and of a whole folder.
        let files = FileManager.default
        try files.moveItem(atPath: mount.path("from-cli/small"), toPath: mount.path("from-cli/renamed"))
        try files.moveItem(atPath: mount.path("from-cli/renamed"), toPath: mount.path("tree/a/moved"))
        XCTAssertEqual(rename(mount.path("tree/a/moved"), mount.path("tree/a/b/small")), 0)
        XCTAssertEqual(try cluster.succeed(["get", "/tree/a/b/small", "-"]).stdout, try cluster.contents(small))
        XCTAssertEqual(rename(mount.path("tree/a"), mount.path("tree/z")), 0)
        XCTAssertEqual(try cluster.stat("/tree/z/b/small").sizeBytes, 70_000)
        XCTAssertFalse(files.fileExists(atPath: mount.path("tree/a")))

        // mkdir, rmdir (refused while not empty), unlink.
        XCTAssertEqual(mkdir(mount.path("made"), 0o755), 0)
        XCTAssertTrue(try cluster.json(ListResponse.self, ["ls", "/made", "--json"]).entries.isEmpty)
        XCTAssertEqual(errorCode { rmdir(mount.path("tree/z")) }, ENOTEMPTY)
        XCTAssertEqual(rmdir(mount.path("made")), 0)
        XCTAssertEqual(unlink(mount.path("tree/z/b/small")), 0)
        XCTAssertEqual(try cluster.run(["stat", "/tree/z/b/small"]).exitCode, 1)

        // A directory's time moves when an entry is removed from it or renamed out of it, as
        // POSIX has it (make, editors and caches look at it), and the master lists it so.
        func timeMillis(_ name: String) -> Int64 {
            var status = stat()
            XCTAssertEqual(lstat(mount.path(name), &status), 0, name)
            return Int64(status.st_mtim.tv_sec) * 1000 + Int64(status.st_mtim.tv_nsec / 1_000_000)
        }
        XCTAssertEqual(mkdir(mount.path("timed"), 0o755), 0)
        XCTAssertEqual(mkdir(mount.path("timed/sub"), 0o755), 0)
        FileManager.default.createFile(atPath: mount.path("timed/gone"), contents: Data("x".utf8))
        FileManager.default.createFile(atPath: mount.path("timed/moved"), contents: Data("y".utf8))
        for change in [{ unlink(mount.path("timed/gone")) }, { rmdir(mount.path("timed/sub")) }, { rename(mount.path("timed/moved"), mount.path("moved-out")) }] {
            let before = timeMillis("timed")
            usleep(20_000)
            XCTAssertEqual(change(), 0)
            let after = timeMillis("timed")
            XCTAssertGreaterThan(after, before)
            XCTAssertEqual(try cluster.json(ListResponse.self, ["ls", "/timed", "--json"]).mtimeMillis, after)
        }

        // Writes into an existing file: append, overwrite in place, truncate.
        try Data("hello world".utf8).write(to: URL(fileURLWithPath: mount.path("edit")))
        let editing = try XCTUnwrap(FileHandle(forUpdatingAtPath: mount.path("edit")))
        try editing.seek(toOffset: 6)
        try editing.write(contentsOf: Data("WORLD!!".utf8))
        try editing.close()
        XCTAssertEqual(try cluster.succeed(["get", "/edit", "-"]).stdout, Data("hello WORLD!!".utf8))
        XCTAssertEqual(truncate(mount.path("edit"), 5), 0)
        XCTAssertEqual(try cluster.succeed(["get", "/edit", "-"]).stdout, Data("hello".utf8))
        XCTAssertEqual(try shell("printf ' there' >> '\(mount.path("edit"))'", in: cluster.root).status, 0)
        XCTAssertEqual(try cluster.succeed(["get", "/edit", "-"]).stdout, Data("hello there".utf8))

        // A new file written out of order (its streamed put is abandoned) is put whole at close;
        // one removed while still open is never stored.
        let scattered = open(mount.path("scattered"), O_CREAT | O_WRONLY, 0o644)
        XCTAssertGreaterThanOrEqual(scattered, 0)
        XCTAssertEqual(pwrite(scattered, "aaaa", 4, 0), 4)
        XCTAssertEqual(pwrite(scattered, "bb", 2, 0), 2)
        XCTAssertEqual(pwrite(scattered, "cc", 2, 6), 2)
        XCTAssertEqual(close(scattered), 0)
        XCTAssertEqual(try cluster.succeed(["get", "/scattered", "-"]).stdout, Data("bbaa\0\0cc".utf8))
        let doomed = open(mount.path("doomed"), O_CREAT | O_WRONLY, 0o644)
        XCTAssertEqual(write(doomed, String(repeating: "d", count: 5000), 5000), 5000)
        XCTAssertEqual(unlink(mount.path("doomed")), 0)
        XCTAssertEqual(close(doomed), 0)
        XCTAssertEqual(try cluster.run(["stat", "/doomed"]).exitCode, 1)

        // A rename over a file still open for writing and not yet stored replaces it; the
        // writer's later close stores nothing. (No command runs while it is open: a child
        // process closing its inherited copy of the descriptor would store it, as any close does.)
        let writer = open(mount.path("in-progress"), O_CREAT | O_WRONLY, 0o644)
        XCTAssertEqual(write(writer, "first ", 6), 6)
        try Data("replacement".utf8).write(to: URL(fileURLWithPath: mount.path("replacement")))
        XCTAssertEqual(rename(mount.path("replacement"), mount.path("in-progress")), 0)
        XCTAssertEqual(try cluster.succeed(["get", "/in-progress", "-"]).stdout, Data("replacement".utf8))
        XCTAssertEqual(close(writer), 0)

        // Errors a program can act on.
        XCTAssertEqual(errorCode { open(mount.path("missing/file"), O_RDONLY) }, ENOENT)
        XCTAssertEqual(errorCode { mkdir(mount.path(String(repeating: "n", count: 256)), 0o755) }, ENAMETOOLONG)
        XCTAssertEqual(mkdir(mount.path("made-twice"), 0o755), 0)
        XCTAssertEqual(errorCode { mkdir(mount.path("made-twice"), 0o755) }, EEXIST)
        var capacity = statvfs()
        XCTAssertEqual(statvfs(mount.directory, &capacity), 0)
        XCTAssertGreaterThan(capacity.f_blocks, 0)
    }

    func testModesOwnersLinksAndSpecialFilesAreKeptAtTheMasterAndEnforced() throws {
        // The default deletion grace: a removed file's chunks stay 30 s (tests usually drop them at once).
        let cluster = try TestCluster(datakeepers: 3, masterArguments: ["--deletion-grace", "30s"])
        defer { cluster.shutdown() }
        // Other users may enter the mount (and the test's folder above it), as `--allow-other` allows.
        XCTAssertEqual(chmod(cluster.root, 0o755), 0)
        let mount = try Mount(cluster, extraArguments: ["--allow-other"])
        defer { mount.end() }
        let previousMask = umask(0)
        defer { umask(previousMask) }
        func status(_ relative: String) throws -> stat {
            var status = stat()
            guard lstat(mount.path(relative), &status) == 0 else { throw TestClusterError("lstat \(relative): errno \(Glibc.errno)") }
            return status
        }
        func kept(_ path: String) throws -> [String: String]? {
            try cluster.json(ListResponse.self, ["ls", (path as NSString).deletingLastPathComponent, "--json"]).entries.first { $0.path == path }?.attributes
        }

        // Made with a mode, by whoever calls: kept at the master, shown back.
        XCTAssertEqual(mkdir(mount.path("private"), 0o700), 0)
        XCTAssertEqual(try status("private").st_mode, S_IFDIR | 0o700)
        let created = open(mount.path("private/f"), O_CREAT | O_WRONLY, 0o640)
        XCTAssertEqual(write(created, "secret", 6), 6)
        XCTAssertEqual(close(created), 0)
        XCTAssertEqual(try status("private/f").st_mode, S_IFREG | 0o640)
        XCTAssertEqual(try kept("/private/f")?["posix-mode"], "100640")
        // chmod and chown of files and directories; a rewrite through the mount keeps them.
        XCTAssertEqual(chmod(mount.path("private/f"), 0o600), 0)
        XCTAssertEqual(chown(mount.path("private/f"), 65534, 65533), 0)
        XCTAssertEqual(chmod(mount.path("private"), 0o711), 0)
        XCTAssertEqual(mkdir(mount.path("private/sub"), 0o755), 0)
        XCTAssertEqual(try status("private").st_nlink, 3, "linked by its name, its . and its directory's ..")
        XCTAssertEqual(rmdir(mount.path("private/sub")), 0)
        XCTAssertEqual(try shell("printf ' more' >> '\(mount.path("private/f"))'", in: cluster.root).status, 0)
        XCTAssertEqual(try cluster.succeed(["get", "/private/f", "-"]).stdout, Data("secret more".utf8))
        XCTAssertEqual(try kept("/private/f"), ["posix-mode": "100600", "posix-uid": "65534", "posix-gid": "65533"])
        XCTAssertEqual(try kept("/private")?["posix-mode"], "40711")
        // A symbolic link, a FIFO and a device file.
        XCTAssertEqual(symlink("../ünï target", mount.path("private/link")), 0)
        var target = [CChar](repeating: 0, count: 64)
        XCTAssertEqual(readlink(mount.path("private/link"), &target, 64), "../ünï target".utf8.count)
        XCTAssertEqual(String(decoding: target.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self), "../ünï target")
        XCTAssertEqual(try status("private/link").st_mode & S_IFMT, S_IFLNK)
        XCTAssertEqual(mkfifo(mount.path("private/fifo"), 0o620), 0)
        XCTAssertEqual(try status("private/fifo").st_mode, S_IFIFO | 0o620)
        let device: dev_t = 1 << 8 | 3  // makedev(1, 3), /dev/null's number
        XCTAssertEqual(mknod(mount.path("private/device"), S_IFCHR | 0o600, device), 0)
        XCTAssertEqual(try status("private/device").st_rdev, device)
        XCTAssertEqual(errorCode { symlink("x", mount.path("private/link")) }, EEXIST)
        // Their types show in the listing itself, where `find -type` looks.
        let found = try shell("find '\(mount.path("private"))' -mindepth 1 -printf '%y %f\\n' | sort", in: cluster.root)
        XCTAssertEqual(found.output, "c device\nf f\nl link\np fifo\n")
        XCTAssertEqual(errorCode { readlink(mount.path("private/f"), &target, 64) == -1 ? -1 : 0 }, EINVAL)

        // A rename carries them; a second mount (nothing cached) shows the same.
        XCTAssertEqual(rename(mount.path("private"), mount.path("moved")), 0)
        let second = try Mount(cluster, extraArguments: ["--allow-other"])
        defer { second.end() }
        for (relative, mode) in [("moved", S_IFDIR | 0o711), ("moved/f", S_IFREG | 0o600), ("moved/fifo", S_IFIFO | 0o620), ("moved/link", S_IFLNK | 0o777)] {
            var status = stat()
            XCTAssertEqual(lstat(second.path(relative), &status), 0, relative)
            XCTAssertEqual(status.st_mode, mode, relative)
        }
        var owned = stat()
        XCTAssertEqual(lstat(second.path("moved/f"), &owned), 0)
        XCTAssertEqual([owned.st_uid, owned.st_gid], [65534, 65533])

        // The kernel enforces them: the owner reads its 0600 file, another user may not.
        let asOwner = try shell("setpriv --reuid=65534 --regid=65533 --clear-groups cat '\(second.path("moved/f"))'", in: cluster.root)
        XCTAssertEqual(asOwner.status, 0, asOwner.output)
        XCTAssertEqual(asOwner.output, "secret more")
        let asOther = try shell("setpriv --reuid=65532 --regid=65532 --clear-groups cat '\(second.path("moved/f"))'", in: cluster.root)
        XCTAssertNotEqual(asOther.status, 0)
        XCTAssertTrue(asOther.output.contains("Permission denied"), asOther.output)
        // A chmod made through one mount while another holds the file open for writing
        // survives that one's close; a chmod of a new file not yet stored does not store it early.
        let appender = open(mount.path("moved/f"), O_WRONLY | O_APPEND)
        XCTAssertEqual(write(appender, "!", 1), 1)
        XCTAssertEqual(chmod(second.path("moved/f"), 0o604), 0)
        XCTAssertEqual(close(appender), 0)
        XCTAssertEqual(try kept("/moved/f")?["posix-mode"], "100604")
        XCTAssertEqual(try cluster.succeed(["get", "/moved/f", "-"]).stdout, Data("secret more!".utf8))
        // (Asked through the other mount: a command started meanwhile would close its copy of the
        // descriptor, and any close stores the file.)
        // A chmod through a mount that holds the file open sends only the mode: a chown made
        // meanwhile through another mount stays.
        try Data("g".utf8).write(to: URL(fileURLWithPath: mount.path("moved/g")))
        let holder = open(mount.path("moved/g"), O_WRONLY | O_APPEND)
        XCTAssertEqual(chown(second.path("moved/g"), 65531, 65533), 0)
        XCTAssertEqual(fchmod(holder, 0o606), 0)
        XCTAssertEqual(close(holder), 0)
        XCTAssertEqual(try kept("/moved/g")?["posix-uid"], "65531")
        XCTAssertEqual(try kept("/moved/g")?["posix-mode"], "100606")
        let fresh = open(mount.path("fresh"), O_CREAT | O_WRONLY, 0o644)
        XCTAssertEqual(fchmod(fresh, 0o640), 0)
        XCTAssertEqual(errorCode { access(second.path("fresh"), F_OK) }, ENOENT, "not stored before its close")
        XCTAssertEqual(close(fresh), 0)
        XCTAssertEqual(try kept("/fresh")?["posix-mode"], "100640")
        // A file removed while open stays usable through its descriptor, with no link left:
        // one being written (from its staging file), and one only read (as it was opened).
        let scratch = open(mount.path("scratch"), O_CREAT | O_RDWR, 0o600)
        XCTAssertEqual(write(scratch, "temporary", 9), 9)
        XCTAssertEqual(unlink(mount.path("scratch")), 0)
        let reader = open(second.path("moved/f"), O_RDONLY)
        XCTAssertEqual(unlink(second.path("moved/f")), 0)
        Thread.sleep(forTimeInterval: 1.2)  // past the kernel's 1 s attribute cache
        for (descriptor, expected) in [(scratch, "temporary"), (reader, "secret more!")] {
            var held = stat()
            XCTAssertEqual(fstat(descriptor, &held), 0)
            XCTAssertEqual(held.st_nlink, 0)
            XCTAssertEqual(held.st_size, off_t(expected.utf8.count))
            var bytes = [UInt8](repeating: 0, count: 32)
            XCTAssertEqual(pread(descriptor, &bytes, 32, 0), expected.utf8.count)
            XCTAssertEqual(String(decoding: bytes.prefix(expected.utf8.count), as: UTF8.self), expected)
            XCTAssertEqual(close(descriptor), 0)
        }
        XCTAssertEqual(try cluster.run(["stat", "/scratch"]).exitCode, 1, "removed before its close, it is never stored")
        // The mount's root keeps nothing: a chmod of it (as `rsync -a` into it does) changes nothing and fails nothing.
        XCTAssertEqual(chmod(mount.directory, 0o700), 0)
        XCTAssertEqual(try status("").st_mode, S_IFDIR | 0o755)
    }

    func testAReadCompletesWhenADataKeeperIsKilledAndTheMountSurvivesAMasterRestart() throws {
        let cluster = try TestCluster(datakeepers: 3, chunkSize: "1MiB")
        defer { cluster.shutdown() }
        let mount = try Mount(cluster)
        defer { mount.end() }
        let local = try cluster.makeFile("big", size: 40 * 1024 * 1024, seed: 11)
        try cluster.succeed(["put", local, "/big"])

        // Read the first MiB, kill a datakeeper holding every chunk, read the rest.
        let reader = try XCTUnwrap(FileHandle(forReadingAtPath: mount.path("big")))
        var read = try XCTUnwrap(try reader.read(upToCount: 1024 * 1024))
        cluster.killDataKeeper("dk2")
        while let more = try reader.read(upToCount: 1024 * 1024), !more.isEmpty { read.append(more) }
        try reader.close()
        let expected = try cluster.contents(local)
        XCTAssertEqual(read, expected)

        // Reads of one descriptor from several threads at once, far apart.
        let shared = open(mount.path("big"), O_RDONLY)
        XCTAssertGreaterThanOrEqual(shared, 0)
        let mismatches = NIOLockedValueBox(0)
        DispatchQueue.concurrentPerform(iterations: 8) { thread in
            for round in 0..<4 {
                let offset = ((thread * 4 + round) * 1_234_567) % (expected.count - 300_000)
                var bytes = [UInt8](repeating: 0, count: 300_000)
                let count = bytes.withUnsafeMutableBytes { pread(shared, $0.baseAddress, 300_000, off_t(offset)) }
                if count != 300_000 || Data(bytes) != expected.subdata(in: offset..<(offset + 300_000)) {
                    mismatches.withLockedValue { $0 += 1 }
                }
            }
        }
        close(shared)
        XCTAssertEqual(mismatches.withLockedValue { $0 }, 0, "concurrent reads of one descriptor")

        // The master goes away: the mount answers EIO at once instead of hanging…
        cluster.killMaster()
        Thread.sleep(forTimeInterval: 1.2)  // past the kernel's 1 s attribute cache
        let started = Date()
        XCTAssertThrowsError(try FileManager.default.contentsOfDirectory(atPath: mount.directory))
        XCTAssertEqual(open(mount.path("new-file"), O_WRONLY | O_CREAT, 0o644).closingIfOpen(), -1)
        XCTAssertLessThan(Date().timeIntervalSince(started), 15)
        // …and works again once it is back.
        try cluster.startMaster()
        try cluster.waitUntil("the mount to list again", timeout: 20) {
            (try? FileManager.default.contentsOfDirectory(atPath: mount.directory)) == ["big"]
        }
        try cluster.waitUntil("the two datakeepers left to rejoin", timeout: 20) { try cluster.aliveDataKeepers().count == 2 }
        try Data("after".utf8).write(to: URL(fileURLWithPath: mount.path("after")))
        XCTAssertEqual(try cluster.succeed(["get", "/after", "-"]).stdout, Data("after".utf8))
        XCTAssertTrue(mount.process.isRunning)
    }

    /// `ls -l` of a folder gets its files' attributes with the listing (readdirplus), not with a
    /// lookup per file, and they are the files' own; a file changed elsewhere shows its new size
    /// once the kernel's 1 s cache has expired, as after a lookup.
    func testListingAFolderDescribesItsFilesWithoutALookupEach() throws {
        let cluster = try TestCluster(datakeepers: 3)
        defer { cluster.shutdown() }
        let local = cluster.root + "/listed"
        try FileManager.default.createDirectory(atPath: local + "/sub", withIntermediateDirectories: true)
        for index in 0..<40 { FileManager.default.createFile(atPath: local + "/f-\(index)", contents: Data(repeating: 7, count: index * 100)) }
        FileManager.default.createFile(atPath: local + "/sub/inner", contents: Data())
        try cluster.succeed(["put", "-r", local, "/listed"])
        let mount = try Mount(cluster)
        defer { mount.end() }
        func listings() throws -> Double {
            let page = String(decoding: try HTTP.request("GET", cluster.masterURL + Route.metrics).body, as: UTF8.self)
            return TestCluster.metricSample(
                "tydfs_http_requests_total", labels: "http_route=\"\(Route.list)\",http_request_method=\"GET\",http_response_status_code=\"200\"", in: page) ?? 0
        }
        let before = try listings()
        let listed = try shell("ls -ln '\(mount.path("listed"))'", in: cluster.root)
        XCTAssertEqual(listed.status, 0, listed.output)
        let asked = try listings() - before
        XCTAssertLessThan(asked, 10, "the folder's listing and a few lookups, not one per file (\(asked) listings)")
        // "-rw-r--r-- 1 0 0 3900 Nov 30 21:50 f-39": mode, links, size and name as stored.
        var sizes: [String: Int] = [:]
        for line in listed.output.split(separator: "\n") where line.hasPrefix("-") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            XCTAssertEqual(fields[0], "-rw-r--r--", String(line))
            XCTAssertEqual(fields[1], "1", String(line))
            sizes[String(fields.last!)] = Int(fields[4])
        }
        XCTAssertEqual(sizes, Dictionary(uniqueKeysWithValues: (0..<40).map { ("f-\($0)", $0 * 100) }))
        XCTAssertTrue(listed.output.split(separator: "\n").contains { $0.hasPrefix("d") && $0.hasSuffix(" sub") }, listed.output)
        // Changes made through this mount after the folder was opened are not undone by the
        // listing's older attributes: a mode, a rename (the old name stays gone).
        let folder = try XCTUnwrap(opendir(mount.path("listed")))
        XCTAssertEqual(chmod(mount.path("listed/f-5"), 0o600), 0)
        XCTAssertEqual(rename(mount.path("listed/f-6"), mount.path("listed/f-6b")), 0)
        var names: [String] = []
        while let entry = readdir(folder) {
            names.append(withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) })
        }
        closedir(folder)
        XCTAssertTrue(names.contains("f-6"), "the listing of the open")
        var status = stat()
        XCTAssertEqual(stat(mount.path("listed/f-5"), &status), 0)
        XCTAssertEqual(status.st_mode & 0o777, 0o600)
        XCTAssertEqual(errorCode { stat(mount.path("listed/f-6"), &status) }, ENOENT)
        // Changed elsewhere: the new size shows once the kernel's cache expired.
        let bigger = try cluster.makeFile("bigger", size: 12_345, seed: 2)
        try cluster.succeed(["put", "--overwrite", bigger, "/listed/f-3"])
        Thread.sleep(forTimeInterval: 1.2)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: mount.path("listed/f-3"))[.size] as? Int, 12_345)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: mount.path("listed/f-3"))), try cluster.contents(bigger))
    }

    /// A file open through the mount reads on after its chunks moved to other datakeepers (a
    /// drain, then the old holder switched off): the windows not yet fetched find the new
    /// replicas by asking the master again, where the replicas of the open would all fail.
    func testAFileOpenThroughTheMountReadsOnAfterItsReplicasMoved() throws {
        let cluster = try TestCluster(datakeepers: 3, replication: 1, chunkSize: "1MiB")
        defer { cluster.shutdown() }
        let mount = try Mount(cluster)
        defer { mount.end() }
        let local = try cluster.makeFile("moving", size: 40 * 1024 * 1024, seed: 5)
        try cluster.succeed(["put", local, "/moving"])
        // The holder of the last chunk: past the windows the first read fetches (3 of 8 MiB).
        let holder = try XCTUnwrap(try cluster.stat("/moving").chunks.last?.replicas.first?.id.value)

        let reader = try XCTUnwrap(FileHandle(forReadingAtPath: mount.path("moving")))
        var read = try XCTUnwrap(try reader.read(upToCount: 1024 * 1024))
        XCTAssertEqual(try cluster.json(DrainStatus.self, ["drain", holder]).state, .retired)
        cluster.killDataKeeper(holder)
        while let more = try reader.read(upToCount: 1024 * 1024), !more.isEmpty { read.append(more) }
        try reader.close()
        XCTAssertEqual(read, try cluster.contents(local))
        XCTAssertTrue(try cluster.stat("/moving").chunks.last!.replicas.contains { $0.id.value != holder }, "the drain copied it elsewhere")
    }

    func testMountInTheBackgroundAndUnmount() throws {
        let cluster = try TestCluster(datakeepers: 3)
        defer { cluster.shutdown() }
        let directory = cluster.root + "/mnt"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)

        let mounted = try cluster.succeed(["mount", directory, "--cache-dir", cluster.root + "/cache"])
        let line = String(decoding: mounted.stdout, as: UTF8.self)
        let pid = try XCTUnwrap(line.split(separator: " ").last.flatMap { Int32($0.dropLast(2)) }, line)
        defer {
            if Mount.isMounted(directory) { umount2(directory, Int32(MNT_DETACH)) }
            kill(pid, SIGKILL)
        }
        XCTAssertTrue(Mount.isMounted(directory))
        let again = try cluster.run(["mount", directory])
        XCTAssertEqual(again.exitCode, 1)
        XCTAssertTrue(again.stderr.contains("already a tydfs mount"), again.stderr)

        FileManager.default.createFile(atPath: directory + "/x", contents: Data("x".utf8))
        // Busy while a program is inside it.
        let holder = try XCTUnwrap(FileHandle(forReadingAtPath: directory + "/x"))
        let busy = try cluster.run(["umount", directory], master: false)
        XCTAssertEqual(busy.exitCode, 1)
        XCTAssertTrue(busy.stderr.contains("is busy"), busy.stderr)
        try holder.close()

        let unmounted = try cluster.run(["umount", directory], master: false)
        XCTAssertEqual(unmounted.exitCode, 0, unmounted.stderr)
        XCTAssertFalse(Mount.isMounted(directory))
        // Ended, or a zombie nobody reaps (its parent, the first `tydfs mount`, has exited).
        try cluster.waitUntil("the mount's process to exit", timeout: 10) {
            let status = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
            return status.isEmpty || status.contains(") Z ")
        }
        XCTAssertEqual(try cluster.succeed(["get", "/x", "-"]).stdout, Data("x".utf8))

        let notMounted = try cluster.run(["umount", directory], master: false)
        XCTAssertEqual(notMounted.exitCode, 1)
        XCTAssertTrue(notMounted.stderr.contains("is not a tydfs mount"), notMounted.stderr)
        let missing = try cluster.run(["mount", cluster.root + "/nowhere"])
        XCTAssertEqual(missing.exitCode, 1)
        XCTAssertTrue(missing.stderr.contains("no such directory"), missing.stderr)
    }
}

private extension Int32 {
    /// A descriptor `open` returned, closed; -1 stays -1.
    func closingIfOpen() -> Int32 {
        if self >= 0 { close(self) }
        return self
    }
}
