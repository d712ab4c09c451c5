#if canImport(Glibc)
import Glibc
#endif
import CFuse
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import TYDFSCore
import TYDFSFileIO

/// The kernel's side of `tydfs mount`: a libfuse low-level session whose callbacks hand each
/// request to `MountedFileSystem` and send its answer back.
///
/// libfuse reads requests from /dev/fuse on one thread (`fuse_session_loop`). A callback must
/// not block it on the network, so each request that talks to the cluster runs in a task of its
/// own and replies from there (libfuse allows replies from any thread). Requests answered from
/// what the mount holds are answered on the loop's thread: writes into a staging file, reads
/// whose windows have arrived, directory pages, forgets, and refusals of bad arguments.
public final class FuseSession: @unchecked Sendable {
    /// How long the kernel may keep names and attributes without asking again: short, so
    /// changes made by other clients show within a second.
    static let cacheSeconds = 1.0

    let fileSystem: MountedFileSystem
    public let mountpoint: String
    let logger: Logger
    private let owner = (uid: getuid(), gid: getgid())
    /// Requests being answered in tasks: the session outlives them all.
    private let inFlight = NIOLockedValueBox(0)

    public init(fileSystem: MountedFileSystem, mountpoint: String, logger: Logger) {
        self.fileSystem = fileSystem
        self.mountpoint = mountpoint
        self.logger = logger
    }

    /// Mounts, serves until the kernel ends the session (after `tydfs umount`, `fusermount3 -u`,
    /// or `unmount()` on a signal, once no program uses the mount), then waits for the requests
    /// still being answered.
    /// `onMounted` runs once the kernel has the mount.
    public func run(allowOther: Bool, onMounted: @Sendable () -> Void) async throws {
        // Upload buffers (1 MiB) are big buffers allocated and freed all the time; with glibc's
        // default, when read windows were such buffers too, six readers and three writers
        // peaked at 270 MiB, against a 256 MiB bound.
        MemoryPolicy.mapAllocations(ofAtLeast: Limits.ioBufferBytes)
        // nosuid, nodev: modes and device numbers come from whoever could write them at the
        // master, so a set-user-ID bit or a device file from the cluster grants nothing here.
        var options = "fsname=tydfs,subtype=tydfs,default_permissions,nosuid,nodev"
        if allowOther { options += ",allow_other" }
        let arguments: [UnsafeMutablePointer<CChar>?] = ["tydfs", "-o", options].map { (text: String) in strdup(text) }
        defer { for argument in arguments { free(argument) } }
        var argv = arguments
        var fuseArguments = fuse_args(argc: Int32(argv.count), argv: nil, allocated: 0)
        var operations = Self.operations()
        let created = argv.withUnsafeMutableBufferPointer { pointer -> OpaquePointer? in
            fuseArguments.argv = pointer.baseAddress
            return fuse_session_new(
                &fuseArguments, &operations, MemoryLayout<fuse_lowlevel_ops>.size, Unmanaged.passUnretained(self).toOpaque())
        }
        guard let created else { throw MountError(EINVAL, "libfuse refused the mount options (\(options))") }
        defer { fuse_session_destroy(created) }
        guard fuse_session_mount(created, mountpoint) == 0 else {
            throw MountError(EIO, "cannot mount on \(mountpoint); see the message above (is /dev/fuse there, and are you root or is fusermount3 installed?)")
        }
        onMounted()
        // The loop's thread is the session's only other user, and `run` outlives it.
        let session = UncheckedSession(pointer: created)
        let loopResult: Int32 = await withCheckedContinuation { continuation in
            let thread = Thread { continuation.resume(returning: fuse_session_loop(session.pointer)) }
            thread.name = "fuse"
            thread.start()
        }
        // Answers still being prepared go nowhere now, but they must not reach a destroyed session.
        while inFlight.withLockedValue({ $0 }) > 0 { try? await Task.sleep(for: .milliseconds(20)) }
        fuse_session_unmount(created)
        fileSystem.discardAll()
        if loopResult < 0 { throw MountError(-loopResult, "the FUSE session ended with \(String(cString: strerror(-loopResult)))") }
    }

    /// Ends the mount (SIGINT or SIGTERM) as `umount -l` does: it leaves the directory tree at
    /// once; programs still using it finish (their files are stored as they close them), then
    /// the kernel ends the session and `run` returns.
    public func unmount() {
        try? Self.unmount(mountpoint, lazy: true)
    }

    /// Unmounts `mountpoint`: `umount2` as root, else through `fusermount3`. With `lazy`, at
    /// once even while programs still use it (`umount -l`); without, a busy mount is refused
    /// with EBUSY (as root; `fusermount3` says only that it failed, as EIO).
    public static func unmount(_ mountpoint: String, lazy: Bool) throws {
        if geteuid() == 0 {
            guard umount2(mountpoint, lazy ? Int32(MNT_DETACH) : 0) == 0 else {
                let code = errno
                throw MountError(code, "cannot unmount \(mountpoint): \(String(cString: strerror(code)))")
            }
        } else {
            let process = try Process.run(URL(fileURLWithPath: "/bin/fusermount3"), arguments: ["-u"] + (lazy ? ["-z"] : []) + [mountpoint])
            process.waitUntilExit()
            guard process.terminationStatus == 0 else { throw MountError(EIO, "cannot unmount \(mountpoint) (fusermount3 failed)") }
        }
    }

    // MARK: - Answers

    /// libfuse's session, handed to the thread that runs its loop.
    private struct UncheckedSession: @unchecked Sendable {
        let pointer: OpaquePointer
    }

    /// A libfuse request, carried into the task that answers it.
    struct Request: @unchecked Sendable {
        let raw: fuse_req_t?
    }

    /// The kernel's description of an open (its flags), copied out of the callback: the
    /// pointer libfuse passes is valid only until the callback returns.
    struct FileInfo: @unchecked Sendable {
        let value: fuse_file_info
        init(_ value: fuse_file_info) { self.value = value }
    }

    /// Answers `request` from a task: `body` replies on success; an error becomes its errno.
    private func answer(_ request: fuse_req_t?, _ body: @escaping @Sendable (Request) async throws -> Void) {
        let request = Request(raw: request)
        inFlight.withLockedValue { $0 += 1 }
        Task {
            do {
                try await body(request)
            } catch {
                let code = MountErrno.of(error)
                if code == EIO { logger.warning("answering EIO: \(error)") }
                fuse_reply_err(request.raw, code)
            }
            inFlight.withLockedValue { $0 -= 1 }
        }
    }

    /// `mknod` and `symlink`: an entry that keeps `posix`, answered as a lookup is.
    private func makeNode(_ request: fuse_req_t?, _ name: String, in parent: UInt64, posix: PosixAttributes) {
        answer(request) { request in
            let (inode, attributes) = try await self.fileSystem.makeNode(name, in: parent, posix: posix)
            var entry = self.entry(inode, attributes)
            fuse_reply_entry(request.raw, &entry)
        }
    }

    func status(_ attributes: NodeAttributes, inode: UInt64) -> stat {
        var status = stat()
        status.st_ino = __ino_t(inode)
        let posix = attributes.posix
        status.st_mode = posix.statusMode(isDirectory: attributes.isDirectory)
        // A directory is linked by its name, its `.` and each subdirectory's `..`.
        status.st_nlink = attributes.isUnlinked ? 0 : attributes.isDirectory ? 2 + UInt(max(0, attributes.subdirectoryCount)) : 1
        status.st_uid = posix.uid ?? owner.uid
        status.st_gid = posix.gid ?? owner.gid
        status.st_rdev = __dev_t(posix.deviceNumber ?? 0)
        // A symbolic link's size is its target's length, as `readlink` callers expect.
        status.st_size = off_t(posix.isSymbolicLink ? posix.linkTarget?.utf8.count ?? 0 : Int(attributes.sizeBytes))
        status.st_blksize = 1 << 20
        status.st_blocks = blkcnt_t(attributes.sizeBytes / 512 + (attributes.sizeBytes % 512 == 0 ? 0 : 1))
        // Seconds rounded down, so that a time before 1970 keeps a nanosecond part of 0…999,999,999.
        let (seconds, millis) = attributes.mtimeMillis.quotientAndRemainder(dividingBy: 1000)
        let time = millis < 0
            ? timespec(tv_sec: Int(seconds - 1), tv_nsec: Int(millis + 1000) * 1_000_000)
            : timespec(tv_sec: Int(seconds), tv_nsec: Int(millis) * 1_000_000)
        status.st_mtim = time
        status.st_ctim = time
        status.st_atim = time
        return status
    }

    func entry(_ inode: UInt64, _ attributes: NodeAttributes) -> fuse_entry_param {
        var entry = fuse_entry_param()
        entry.ino = inode
        entry.generation = 1
        entry.attr = status(attributes, inode: inode)
        entry.attr_timeout = Self.cacheSeconds
        entry.entry_timeout = Self.cacheSeconds
        return entry
    }

    private static func of(_ request: fuse_req_t?) -> FuseSession {
        Unmanaged<FuseSession>.fromOpaque(fuse_req_userdata(request)!).takeUnretainedValue()
    }

    /// A name (or a link's target) as the kernel passed it; nil when it is not UTF-8. Paths are
    /// UTF-8 at the master, and `String(cString:)` would repair such bytes into U+FFFD, making
    /// two names one (`caf\xE9` and `caf\xE8` in Latin-1): those are refused (`refuseName`).
    private static func name(_ pointer: UnsafePointer<CChar>?) -> String? { String(validatingCString: pointer!) }

    /// Answers a read with `pieces`, in order, as one I/O vector (`fuse_reply_iov`): the kernel
    /// copies each straight out of the buffer it arrived in from the network. Past
    /// `maxReplyPieces` they are joined first (the kernel takes at most 1,024 vectors).
    private static func reply(_ request: fuse_req_t?, _ pieces: [ByteBuffer]) {
        if pieces.count > maxReplyPieces {
            var joined = ByteBuffer()
            joined.reserveCapacity(pieces.reduce(0) { $0 + $1.readableBytes })
            for piece in pieces { joined.writeImmutableBuffer(piece) }
            return reply(request, [joined])
        }
        var vectors: [iovec] = []
        vectors.reserveCapacity(pieces.count)
        // Each buffer's bytes are valid inside its own closure, so the reply goes out from the
        // innermost one.
        func gather(from index: Int) {
            guard index < pieces.count else {
                _ = vectors.withUnsafeBufferPointer { fuse_reply_iov(request, $0.baseAddress, Int32($0.count)) }
                return
            }
            pieces[index].withUnsafeReadableBytes { bytes in
                vectors.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes.baseAddress), iov_len: bytes.count))
                gather(from: index + 1)
            }
        }
        gather(from: 0)
    }

    static let maxReplyPieces = 256

    /// Answers EILSEQ (as file systems that take only UTF-8 names do) for a name that `name` refused.
    private static func refuseName(_ request: fuse_req_t?) { fuse_reply_err(request, EILSEQ) }

    /// What a new file or directory keeps: `mode` (type and permission bits, the caller's umask
    /// already applied by the kernel) and, as owner and group, the calling process's.
    private static func made(by request: fuse_req_t?, mode: mode_t, deviceNumber: dev_t? = nil, linkTarget: String? = nil) -> PosixAttributes {
        let caller = fuse_req_ctx(request)!.pointee
        return PosixAttributes(mode: mode, uid: caller.uid, gid: caller.gid, deviceNumber: deviceNumber.map(UInt64.init), linkTarget: linkTarget)
    }

    /// One page of `readdir`, or of `readdirplus` (`withAttributes`), which also hands the kernel
    /// each file's number and attributes, as a lookup would: `.` and `..` at offsets 0 and 1, then
    /// the entries. Each page reads the listing the open kept, without copying it.
    private func answerDirectoryPage(_ request: fuse_req_t?, _ inode: fuse_ino_t, size: Int, offset: off_t, handle: UInt64, withAttributes: Bool) {
        do {
            let entries = try fileSystem.directoryEntries(handle)
            var page = [CChar](repeating: 0, count: size)
            var used = 0
            var index = Int(offset)
            // The numbers given in this page, each counted as a lookup: taken back if it never arrives.
            var given: [UInt64] = []
            while index < entries.count + 2 {
                let entry = index >= 2 ? entries[index - 2] : DirectoryEntry(name: index == 0 ? "." : "..", type: S_IFDIR)
                let nextOffset = off_t(index + 1)
                let added = page.withUnsafeMutableBufferPointer { buffer -> Bool in
                    let start = buffer.baseAddress! + used
                    guard withAttributes else {
                        var status = stat()
                        status.st_ino = __ino_t(index == 0 ? inode : 0xffff_ffff)
                        status.st_mode = entry.type
                        let needed = fuse_add_direntry(request, start, size - used, entry.name, &status, nextOffset)
                        guard needed <= size - used else { return false }
                        used += needed
                        return true
                    }
                    // Whether it fits depends on the name alone; only then is its number given
                    // (the kernel counts each entry it receives as a lookup).
                    guard fuse_add_direntry_plus(request, nil, 0, entry.name, nil, nextOffset) <= size - used else { return false }
                    var described = fuse_entry_param()
                    if index >= 2, let (number, attributes) = fileSystem.remember(
                        entry, of: handle, in: inode, maximumAge: .milliseconds(Int(Self.cacheSeconds * 1000))) {
                        described = self.entry(number, attributes)
                        given.append(number)
                    } else {
                        // Number 0: a name and type only; the kernel looks it up itself.
                        described.attr.st_ino = __ino_t(index == 0 ? inode : 0xffff_ffff)
                        described.attr.st_mode = entry.type
                    }
                    used += fuse_add_direntry_plus(request, start, size - used, entry.name, &described, nextOffset)
                    return true
                }
                if !added { break }
                index += 1
            }
            if fuse_reply_buf(request, page, used) != 0 {
                for number in given { fileSystem.forget(number, count: 1) }
            }
        } catch {
            fuse_reply_err(request, MountErrno.of(error))
        }
    }

    // MARK: - The operations table

    // swiftlint:disable:next function_body_length
    private static func operations() -> fuse_lowlevel_ops {
        var operations = fuse_lowlevel_ops()
        operations.`init` = { _, connection in
            guard let connection else { return }
            // open(O_TRUNC) arrives as one open, not a truncate to zero and then an open.
            connection.pointee.want |= UInt32(FUSE_CAP_ATOMIC_O_TRUNC)
            // The kernel clears set-user-ID and set-group-ID bits on a write or chown itself (as
            // a setattr of the mode), where libfuse would leave that to the file system.
            connection.pointee.want &= ~UInt32(FUSE_CAP_HANDLE_KILLPRIV)
            // 1 MiB writes instead of 128 KiB: a quarter of the requests for a big file.
            connection.pointee.max_write = 1 << 20
        }
        operations.lookup = { request, parent, name in
            let session = FuseSession.of(request)
            guard let name = FuseSession.name(name) else { return FuseSession.refuseName(request) }
            session.answer(request) { request in
                let (inode, attributes) = try await session.fileSystem.lookup(name, in: parent)
                var entry = session.entry(inode, attributes)
                fuse_reply_entry(request.raw, &entry)
            }
        }
        operations.forget = { request, inode, count in
            FuseSession.of(request).fileSystem.forget(inode, count: count)
            fuse_reply_none(request)
        }
        operations.getattr = { request, inode, _ in
            let session = FuseSession.of(request)
            session.answer(request) { request in
                var status = session.status(try await session.fileSystem.attributes(of: inode), inode: inode)
                fuse_reply_attr(request.raw, &status, FuseSession.cacheSeconds)
            }
        }
        operations.setattr = { request, inode, attributes, changes, _ in
            let session = FuseSession.of(request)
            let newSize = changes & FUSE_SET_ATTR_SIZE != 0 ? Int64(attributes!.pointee.st_size) : nil
            let newMode = changes & FUSE_SET_ATTR_MODE != 0 ? attributes!.pointee.st_mode : nil
            let newOwner = changes & FUSE_SET_ATTR_UID != 0 ? attributes!.pointee.st_uid : nil
            let newGroup = changes & FUSE_SET_ATTR_GID != 0 ? attributes!.pointee.st_gid : nil
            let given = attributes!.pointee.st_mtim
            let newTime: Int64? = if changes & FUSE_SET_ATTR_MTIME_NOW != 0 {
                MountedFileSystem.nowMillis()
            } else if changes & FUSE_SET_ATTR_MTIME != 0 {
                // Past what milliseconds hold (`touch -d @9300000000000000`) the time is clamped,
                // where the arithmetic would trap, and the master refuses it (EINVAL).
                min(max(Int64(given.tv_sec), Int64.min / 1000 + 1), Int64.max / 1000 - 1) * 1000 + Int64(given.tv_nsec) / 1_000_000
            } else {
                nil
            }
            session.answer(request) { request in
                // A size, a file's modification time, mode, owner and group are kept; the access
                // time is not (see the README).
                var result = if let newSize {
                    try await session.fileSystem.truncate(inode, to: newSize)
                } else {
                    try await session.fileSystem.attributes(of: inode)
                }
                if newTime != nil || newMode != nil || newOwner != nil || newGroup != nil {
                    result = try await session.fileSystem.change(inode, mtimeMillis: newTime, mode: newMode, uid: newOwner, gid: newGroup)
                }
                var status = session.status(result, inode: inode)
                fuse_reply_attr(request.raw, &status, FuseSession.cacheSeconds)
            }
        }
        operations.mkdir = { request, parent, name, mode in
            let session = FuseSession.of(request)
            guard let name = FuseSession.name(name) else { return FuseSession.refuseName(request) }
            let posix = FuseSession.made(by: request, mode: S_IFDIR | mode)
            session.answer(request) { request in
                let (inode, attributes) = try await session.fileSystem.makeDirectory(name, in: parent, posix: posix)
                var entry = session.entry(inode, attributes)
                fuse_reply_entry(request.raw, &entry)
            }
        }
        operations.mknod = { request, parent, name, mode, device in
            let type = mode & S_IFMT
            guard PosixAttributes.fileTypes.contains(type) else {
                fuse_reply_err(request, EINVAL)
                return
            }
            let posix = FuseSession.made(by: request, mode: mode, deviceNumber: type == S_IFCHR || type == S_IFBLK ? device : nil)
            guard let name = FuseSession.name(name) else { return FuseSession.refuseName(request) }
            FuseSession.of(request).makeNode(request, name, in: parent, posix: posix)
        }
        operations.symlink = { request, target, parent, name in
            guard let name = FuseSession.name(name), let target = FuseSession.name(target) else { return FuseSession.refuseName(request) }
            let posix = FuseSession.made(by: request, mode: S_IFLNK | 0o777, linkTarget: target)
            FuseSession.of(request).makeNode(request, name, in: parent, posix: posix)
        }
        operations.readlink = { request, inode in
            let session = FuseSession.of(request)
            session.answer(request) { request in
                let target = try await session.fileSystem.linkTarget(of: inode)
                fuse_reply_readlink(request.raw, target)
            }
        }
        operations.unlink = { request, parent, name in
            let session = FuseSession.of(request)
            guard let name = FuseSession.name(name) else { return FuseSession.refuseName(request) }
            session.answer(request) { request in
                try await session.fileSystem.remove(name, in: parent)
                fuse_reply_err(request.raw, 0)
            }
        }
        operations.rmdir = { request, parent, name in
            let session = FuseSession.of(request)
            guard let name = FuseSession.name(name) else { return FuseSession.refuseName(request) }
            session.answer(request) { request in
                try await session.fileSystem.removeDirectory(name, in: parent)
                fuse_reply_err(request.raw, 0)
            }
        }
        operations.rename = { request, parent, name, newParent, newName, flags in
            let session = FuseSession.of(request)
            guard let name = FuseSession.name(name) else { return FuseSession.refuseName(request) }
            guard let newName = FuseSession.name(newName) else { return FuseSession.refuseName(request) }
            session.answer(request) { request in
                try await session.fileSystem.rename(name, in: parent, to: newName, in: newParent, flags: flags)
                fuse_reply_err(request.raw, 0)
            }
        }
        operations.open = { request, inode, info in
            let session = FuseSession.of(request)
            let given = FileInfo(info!.pointee)
            let forWriting = given.value.flags & O_ACCMODE != O_RDONLY
            let truncate = given.value.flags & O_TRUNC != 0
            session.answer(request) { request in
                var opened = given.value
                opened.fh = try await session.fileSystem.open(inode, forWriting: forWriting, truncate: truncate)
                if fuse_reply_open(request.raw, &opened) != 0 { await session.fileSystem.release(opened.fh) }
            }
        }
        operations.create = { request, parent, name, mode, info in
            let session = FuseSession.of(request)
            guard let name = FuseSession.name(name) else { return FuseSession.refuseName(request) }
            let given = FileInfo(info!.pointee)
            let posix = FuseSession.made(by: request, mode: S_IFREG | mode & ~S_IFMT)
            session.answer(request) { request in
                var opened = given.value
                let (inode, attributes, handle) = try await session.fileSystem.create(name, in: parent, posix: posix)
                opened.fh = handle
                var entry = session.entry(inode, attributes)
                if fuse_reply_create(request.raw, &entry, &opened) != 0 { await session.fileSystem.release(handle) }
            }
        }
        operations.read = { request, _, count, offset, info in
            let session = FuseSession.of(request)
            let handle = info!.pointee.fh
            if let pieces = session.fileSystem.readArrived(handle, count: count, at: Int64(offset)) {
                FuseSession.reply(request, pieces)
                return
            }
            session.answer(request) { request in
                FuseSession.reply(request.raw, try await session.fileSystem.read(handle, count: count, at: Int64(offset)))
            }
        }
        operations.write = { request, _, bytes, count, offset, info in
            let session = FuseSession.of(request)
            do {
                try session.fileSystem.write(info!.pointee.fh, UnsafeRawBufferPointer(start: bytes, count: count), at: Int64(offset))
                fuse_reply_write(request, count)
            } catch {
                fuse_reply_err(request, MountErrno.of(error))
            }
        }
        operations.flush = { request, _, info in
            let session = FuseSession.of(request)
            let handle = info!.pointee.fh
            session.answer(request) { request in
                try await session.fileSystem.flush(handle)
                fuse_reply_err(request.raw, 0)
            }
        }
        operations.fsync = { request, _, _, info in
            let session = FuseSession.of(request)
            let handle = info!.pointee.fh
            session.answer(request) { request in
                try await session.fileSystem.flush(handle)
                fuse_reply_err(request.raw, 0)
            }
        }
        operations.release = { request, _, info in
            let session = FuseSession.of(request)
            let handle = info!.pointee.fh
            session.answer(request) { request in
                await session.fileSystem.release(handle)
                fuse_reply_err(request.raw, 0)
            }
        }
        operations.opendir = { request, inode, info in
            let session = FuseSession.of(request)
            let given = FileInfo(info!.pointee)
            session.answer(request) { request in
                var opened = given.value
                opened.fh = try await session.fileSystem.openDirectory(inode)
                if fuse_reply_open(request.raw, &opened) != 0 { session.fileSystem.releaseDirectory(opened.fh) }
            }
        }
        operations.readdir = { request, inode, size, offset, info in
            FuseSession.of(request).answerDirectoryPage(request, inode, size: size, offset: offset, handle: info!.pointee.fh, withAttributes: false)
        }
        operations.readdirplus = { request, inode, size, offset, info in
            FuseSession.of(request).answerDirectoryPage(request, inode, size: size, offset: offset, handle: info!.pointee.fh, withAttributes: true)
        }
        operations.releasedir = { request, _, info in
            FuseSession.of(request).fileSystem.releaseDirectory(info!.pointee.fh)
            fuse_reply_err(request, 0)
        }
        operations.statfs = { request, _ in
            let session = FuseSession.of(request)
            session.answer(request) { request in
                let capacity = try await session.fileSystem.capacity()
                let blockBytes: Int64 = 4096
                var statistics = statvfs()
                statistics.f_bsize = UInt(blockBytes)
                statistics.f_frsize = UInt(blockBytes)
                statistics.f_blocks = fsblkcnt_t(capacity.totalBytes / blockBytes)
                statistics.f_bfree = fsblkcnt_t(capacity.freeBytes / blockBytes)
                statistics.f_bavail = fsblkcnt_t(capacity.freeBytes / blockBytes)
                statistics.f_files = 1 << 32
                statistics.f_ffree = 1 << 32
                statistics.f_favail = 1 << 32
                statistics.f_namemax = UInt(MountErrno.maxNameBytes)
                fuse_reply_statfs(request.raw, &statistics)
            }
        }
        return operations
    }
}
