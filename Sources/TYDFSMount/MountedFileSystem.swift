#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOConcurrencyHelpers
import NIOCore
import TYDFSClient
import TYDFSCore
import TYDFSProtocol

/// What the mount tells the kernel about one file or directory. Type, permission bits and
/// owner are those kept with it (`PosixAttributes`), else the mount's defaults.
public struct NodeAttributes: Sendable, Equatable {
    public var isDirectory: Bool
    public var sizeBytes: Int64
    public var mtimeMillis: Int64
    public var posix = PosixAttributes()
    /// Removed while a descriptor still holds it: no name links it any more.
    public var isUnlinked = false
    /// A directory's directories, each of which links it by its `..`.
    public var subdirectoryCount = 0
}

extension NodeAttributes {
    /// A file as the master lists it.
    init(file: ListEntry) {
        self.init(isDirectory: false, sizeBytes: file.sizeBytes, mtimeMillis: file.mtimeMillis, posix: PosixAttributes(kept: file.attributes))
    }
}

/// One name in a directory listing, with its file type (the `S_IFMT` bits of its mode), which
/// `find -type` and `ls` take from the listing without a stat.
public struct DirectoryEntry: Sendable {
    public var name: String
    public var type: mode_t
    /// A file's attributes as listed, which `readdirplus` hands the kernel so that `ls -l` and
    /// `find` need no lookup per file; nil for a directory (the listing lacks its link count)
    /// and for a file this mount is writing (its staging file describes it).
    public var attributes: NodeAttributes?
}

/// The cluster's namespace as the file-system operations a FUSE mount receives, in Swift terms:
/// inode numbers in, attributes, bytes and errors out. The FUSE session (`FuseSession`) only
/// translates between this and libfuse.
///
/// Semantics (the README's "Mounting" section says the same):
/// - close-to-open: a file written through the mount is committed, on every replica, when it is
///   closed (or fsynced); others see it from then on;
/// - a file open for writing lives in a local staging file until then, so memory stays small
///   whatever is copied; a new file written in order is put chunk by chunk while it is written
///   (`GrowingFileStream`), any other at close; opening an existing file for writing copies it
///   there first, so random writes and truncation work (copy-on-write of the whole file);
/// - reads stream by verified ranges with read-ahead (`RemoteReader`);
/// - a failure of the cluster is EIO, never a hang: every call to the master or a datakeeper
///   has the client library's timeouts.
public final class MountedFileSystem: Sendable {
    public typealias Inode = InodeTable.Inode

    let client: TYDFSClient
    let logger: Logger
    /// Where staging files live (`tydfs mount --cache-dir`).
    let stagingFolder: String

    private struct Staging {
        var file: StagedFile
        /// What the kernel is shown of the file's mode and owner while it is staged.
        var posix: PosixAttributes
        /// Created by this mount and not stored yet: its first put gives `posix`. Later puts
        /// give none, and the master keeps the file's own (`IdentityAttributes`), so a put never
        /// undoes a `chmod` made meanwhile, here or through another mount.
        var givesPosix: Bool
        var openHandles: Int
        /// Counts completed changes (writes, truncations); `stored` is the count the last
        /// successful put included. Counting, not a flag: a write that lands while a put is under
        /// way leaves the file changed for the next one.
        var changes: UInt64
        var stored: UInt64 = 0
        /// The put that follows a file written in order while it is written (see
        /// `GrowingFileStream`); nil once taken by `upload`, or for a file that began as a copy.
        var streaming: Streaming?
        /// The put under way, which every other upload of this file waits for: one at a time.
        var uploading: Task<Void, Error>?

        var isChanged: Bool { changes != stored }

        /// The attributes a put of the file gives now.
        var putAttributes: [String: String] { givesPosix ? posix.kept : [:] }

        init(file: StagedFile, posix: PosixAttributes, givesPosix: Bool, changed: Bool, streaming: Streaming?) {
            self.file = file
            self.posix = posix
            self.givesPosix = givesPosix
            self.openHandles = 1
            self.changes = changed ? 1 : 0
            self.streaming = streaming
        }

        /// A change that a streamed put cannot follow (out of order, a truncate, an unlink).
        mutating func changedOutOfOrder() {
            streaming?.stream.abandon()
            changes += 1
        }
    }

    private struct Streaming {
        var stream: GrowingFileStream
        var put: Task<PutResult, Error>
    }

    /// Starts putting the (new, empty) staging `file` of `inode` to `path` as it is written; nil
    /// if the file cannot be opened again for that (it is then put whole at close).
    private func streamingPut(of file: StagedFile, inode: Inode, to path: RemotePath) -> Streaming? {
        guard let stream = try? GrowingFileStream(file: file) else { return nil }
        let client = self.client
        return Streaming(stream: stream, put: Task {
            defer { try? stream.file.close() }
            return try await client.put(growing: stream, to: path, overwrite: true) { [state] in
                state.withLockedValue { $0.staged[inode]?.putAttributes ?? [:] }
            }
        })
    }

    private enum Handle {
        /// `writable`: opened for writing; only such a handle's close or fsync puts the file.
        case staged(Inode, writable: Bool)
        case remote(Inode, RemoteReader)
        case directory(DirectoryListing)
    }

    /// A directory as listed at its open: what `readdir` pages through.
    private struct DirectoryListing {
        var path: RemotePath
        var entries: [DirectoryEntry]
        /// `State.namespaceChanges` before the listing was asked for.
        var changesBefore: UInt64
        var listedAt: ContinuousClock.Instant
    }

    private struct State {
        var inodes = InodeTable()
        var staged: [Inode: Staging] = [:]
        var handles: [UInt64: Handle] = [:]
        var nextHandle: UInt64 = 1
        /// Files being removed: no put may start for them meanwhile.
        var removing: Set<Inode> = []
        /// Changes this mount made at the master (a put, a removal, a rename, a mode, a time),
        /// counted as each ends: a listing asked for before one may describe what it changed
        /// as it was, so `remember` hands the kernel no attributes from it.
        var namespaceChanges: UInt64 = 0
    }

    /// Counts a change this mount made at the master (see `State.namespaceChanges`).
    private func changedNamespace() {
        state.withLockedValue { $0.namespaceChanges += 1 }
    }

    private let state = NIOLockedValueBox(State())
    private let readAhead = ReadAheadBudget()

    public init(client: TYDFSClient, stagingFolder: String, logger: Logger) {
        self.client = client
        self.stagingFolder = stagingFolder
        self.logger = logger
    }

    // MARK: - Names

    /// The path `inode` names, or ENOENT (a number whose file was removed or renamed over).
    private func path(of inode: Inode) throws -> String {
        guard let path = state.withLockedValue({ $0.inodes.path(of: inode) }) else {
            throw MountError(ENOENT, "inode \(inode) names no file any more")
        }
        return path
    }

    private func child(_ name: String, of parent: Inode) throws -> RemotePath {
        try MountErrno.child(name, of: try path(of: parent))
    }

    public func lookup(_ name: String, in parent: Inode) async throws -> (Inode, NodeAttributes) {
        let path = try child(name, of: parent)
        let attributes = try await attributes(at: path)
        return (state.withLockedValue { $0.inodes.remember(path.value) }, attributes)
    }

    public func forget(_ inode: Inode, count: UInt64) {
        state.withLockedValue { $0.inodes.forget(inode, count: count) }
    }

    // MARK: - Attributes

    /// What the kernel is told of `inode`. A file removed while a descriptor still holds it
    /// (`fstat`, or the kernel checking a file it reads through one) is described by what the
    /// descriptor holds, its staging file or the file as it was opened, with no link left: a
    /// program keeps using a file it removed, as POSIX allows.
    public func attributes(of inode: Inode) async throws -> NodeAttributes {
        let (path, held) = state.withLockedValue { state in
            state.inodes.path(of: inode).map { ($0, nil) } ?? (nil, Self.held(inode, in: state))
        }
        if let path { return try await attributes(at: try RemotePath(path)) }
        guard let held else { throw MountError(ENOENT, "inode \(inode) names no file any more") }
        return held
    }

    private static func held(_ inode: Inode, in state: State) -> NodeAttributes? {
        if let staging = state.staged[inode] {
            return NodeAttributes(isDirectory: false, sizeBytes: staging.file.sizeBytes, mtimeMillis: nowMillis(), posix: staging.posix, isUnlinked: true)
        }
        for case .remote(inode, let reader) in state.handles.values {
            return NodeAttributes(
                isDirectory: false, sizeBytes: reader.info.sizeBytes, mtimeMillis: reader.info.mtimeMillis,
                posix: PosixAttributes(kept: reader.info.attributes), isUnlinked: true)
        }
        return nil
    }

    /// A file being written through this mount is described by its staging file; anything else
    /// by the master: its own entry, not its children (a master from before `Query.entryOnly`
    /// lists a directory's children, and a file as itself alone).
    private func attributes(at path: RemotePath) async throws -> NodeAttributes {
        // Under the lock: a staging file is only ever closed after it has left `staged`.
        if let staged = state.withLockedValue({ state in
            state.inodes.inode(of: path.value).flatMap { state.staged[$0] }.map { ($0.file.sizeBytes, $0.posix) }
        }) {
            return NodeAttributes(isDirectory: false, sizeBytes: staged.0, mtimeMillis: Self.nowMillis(), posix: staged.1)
        }
        let listing = try await client.list(path, entryOnly: true)
        if let file = listing.file { return NodeAttributes(file: file) }
        // A master before directories' own times were listed: the newest entry's.
        let mtimeMillis = listing.mtimeMillis ?? listing.entries.map(\.mtimeMillis).max() ?? 0
        return NodeAttributes(
            isDirectory: true, sizeBytes: 0, mtimeMillis: mtimeMillis, posix: PosixAttributes(kept: listing.attributes),
            subdirectoryCount: listing.subdirectoryCount ?? listing.entries.count(where: \.isDirectory))
    }

    /// `truncate` and `ftruncate` (`open(O_TRUNC)` arrives as an open): a file open for writing
    /// has its staging file cut; any other is fetched, cut and put again (a cut to zero is a put
    /// of nothing).
    public func truncate(_ inode: Inode, to sizeBytes: Int64) async throws -> NodeAttributes {
        defer { changedNamespace() }
        guard sizeBytes >= 0 else { throw MountError(EINVAL, "a negative size") }
        // Under the lock: a staging file is only ever closed after it has left `staged`.
        let cut = try state.withLockedValue { state -> Bool in
            guard let staging = state.staged[inode] else { return false }
            try staging.file.truncate(to: sizeBytes)
            state.staged[inode]!.changedOutOfOrder()
            return true
        }
        if cut { return try await attributes(of: inode) }
        let path = try RemotePath(try path(of: inode))
        let current = try await attributes(at: path)
        guard !current.isDirectory else { throw MountError(EISDIR, "\(path) is a directory") }
        // The master keeps the file's mode and owner across the put.
        if sizeBytes == 0 {
            let put = try await client.put(bytes: ByteBuffer(), to: path, overwrite: true)
            return NodeAttributes(isDirectory: false, sizeBytes: 0, mtimeMillis: put.file.mtimeMillis, posix: PosixAttributes(kept: put.file.attributes))
        }
        let file = try await download(path)
        defer { file.discard() }
        try file.truncate(to: sizeBytes)
        let put = try await client.put(localPath: file.localPath, to: path, overwrite: true)
        return NodeAttributes(
            isDirectory: false, sizeBytes: put.file.sizeBytes, mtimeMillis: put.file.mtimeMillis, posix: PosixAttributes(kept: put.file.attributes))
    }

    /// `utimensat` (`touch -d`, `rsync -a`), `chmod` and `chown`: a file's modification time,
    /// and the permission bits (`mode`, whose type bits are ignored), owner and group of a file
    /// or directory, kept at the master. A time lands on a file's newest bytes (a file being
    /// written is stored first); a mode or owner does not need them (a file this mount created
    /// and has not stored yet takes them with its first put). A directory's time is not set:
    /// it is the latest change at or below it. The mount's root keeps nothing: it shows the
    /// defaults.
    public func change(_ inode: Inode, mtimeMillis: Int64?, mode: UInt32?, uid: UInt32?, gid: UInt32?) async throws -> NodeAttributes {
        defer { changedNamespace() }
        let path = try RemotePath(try path(of: inode))
        if mtimeMillis != nil { try await upload(inode) }
        let current = try await attributes(at: path)
        guard !path.isRoot else { return current }
        var result = current
        if let mode { result.posix.mode = current.posix.statusMode(isDirectory: current.isDirectory) & S_IFMT | mode & ~S_IFMT }
        if let uid { result.posix.uid = uid }
        if let gid { result.posix.gid = gid }
        // Only what changed is sent: the rest may have changed meanwhile through another mount.
        let changes = result.posix.kept.filter { current.posix.kept[$0.key] != $0.value }
        var held = false
        if !changes.isEmpty { held = await holdForFirstPut(path, result.posix) }
        let timed = mtimeMillis != nil && !current.isDirectory
        guard (!changes.isEmpty && !held) || timed else { return result }
        let entry = try await client.setAttributes(path, mtimeMillis: timed ? mtimeMillis : nil, attributes: held ? [:] : changes)
        if timed { result.mtimeMillis = entry.mtimeMillis }
        return result
    }

    /// Shows `posix` for the file at `path` if this mount is writing it, and whether its first
    /// put will give them (it was created here and not stored yet): then the master need not be
    /// told. A first put already under way gives the attributes it read as it began (under the
    /// lock that set `uploading`), so it is waited for; if it fails, the next one gives these.
    private func holdForFirstPut(_ path: RemotePath, _ posix: PosixAttributes) async -> Bool {
        while true {
            let (held, running) = state.withLockedValue { state -> (Bool, Task<Void, Error>?) in
                guard let inode = state.inodes.inode(of: path.value), let staging = state.staged[inode] else { return (false, nil) }
                state.staged[inode]!.posix = posix
                guard staging.givesPosix else { return (false, nil) }
                return (staging.uploading == nil, staging.uploading)
            }
            guard let running, !held else { return held }
            _ = await running.result
        }
    }

    /// `symlink`, and `mknod` of a FIFO, socket, device or empty regular file: an empty file at
    /// the master that keeps its type, mode, owner, device number or target (`posix`).
    public func makeNode(_ name: String, in parent: Inode, posix: PosixAttributes) async throws -> (Inode, NodeAttributes) {
        defer { changedNamespace() }
        let path = try child(name, of: parent)
        let put = try await client.put(bytes: ByteBuffer(), to: path, overwrite: false, attributes: posix.kept)
        let attributes = NodeAttributes(isDirectory: false, sizeBytes: 0, mtimeMillis: put.file.mtimeMillis, posix: posix)
        return (state.withLockedValue { $0.inodes.remember(path.value) }, attributes)
    }

    /// `readlink`: the target a symbolic link keeps.
    public func linkTarget(of inode: Inode) async throws -> String {
        let attributes = try await attributes(of: inode)
        guard attributes.posix.isSymbolicLink, let target = attributes.posix.linkTarget else {
            throw MountError(EINVAL, "\(try path(of: inode)) is not a symbolic link")
        }
        return target
    }

    // MARK: - Directories

    /// `mkdir`: the directory keeps `posix` (its mode, owner and group).
    public func makeDirectory(_ name: String, in parent: Inode, posix: PosixAttributes = PosixAttributes()) async throws -> (Inode, NodeAttributes) {
        defer { changedNamespace() }
        let path = try child(name, of: parent)
        try await client.makeDirectory(path, attributes: posix.kept)
        let attributes = NodeAttributes(isDirectory: true, sizeBytes: 0, mtimeMillis: Self.nowMillis(), posix: posix)
        return (state.withLockedValue { $0.inodes.remember(path.value) }, attributes)
    }

    public func removeDirectory(_ name: String, in parent: Inode) async throws {
        defer { changedNamespace() }
        let path = try child(name, of: parent)
        try await client.removeDirectory(path)
        state.withLockedValue { $0.inodes.removed(path.value) }
    }

    /// Lists the directory once, at open: `readdir` pages through this snapshot. Files being
    /// written through this mount and not yet put are listed too.
    public func openDirectory(_ inode: Inode) async throws -> UInt64 {
        let path = try RemotePath(try path(of: inode))
        let changesBefore = state.withLockedValue { $0.namespaceChanges }
        let listing = try await client.list(path)
        let listedAt = ContinuousClock.now
        if listing.file != nil { throw MountError(ENOTDIR, "\(path) is a file") }
        var entries = listing.entries.map { entry in
            DirectoryEntry(
                name: String(decoding: entry.path.utf8.dropFirst(path.childPrefix.utf8.count), as: UTF8.self),
                type: PosixAttributes(kept: entry.attributes).statusMode(isDirectory: entry.isDirectory) & S_IFMT,
                attributes: entry.isDirectory ? nil : NodeAttributes(file: entry))
        }
        var names = Set(entries.map { EntryName($0.name) })
        return state.withLockedValue { state in
            for (inode, _) in state.staged {
                guard let stagedPath = state.inodes.path(of: inode), let remote = try? RemotePath(stagedPath) else { continue }
                let name = remote.name
                if stagedPath.equalsByteWise(path.childPrefix + name), names.insert(EntryName(name)).inserted {
                    entries.append(DirectoryEntry(name: name, type: S_IFREG))
                }
            }
            let directory = DirectoryListing(path: path, entries: entries, changesBefore: changesBefore, listedAt: listedAt)
            return Self.open(.directory(directory), in: &state)
        }
    }

    public func directoryEntries(_ handle: UInt64) throws -> [DirectoryEntry] {
        guard case .directory(let directory)? = state.withLockedValue({ $0.handles[handle] }) else {
            throw MountError(EBADF, "no open directory \(handle)")
        }
        return directory.entries
    }

    /// What `readdirplus` tells the kernel of `entry` of the open directory `handle` (of
    /// `inode`): its number, given once more as a lookup gives it, and its attributes as listed.
    /// Nil when the kernel must look it up itself: no attributes were listed, the listing is
    /// older than `maximumAge` (the kernel keeps what it is given as long as a lookup's), this
    /// mount has changed anything at the master since it was asked for (a file written, removed,
    /// renamed or given a mode then would be described as it was), or the directory has moved.
    public func remember(_ entry: DirectoryEntry, of handle: UInt64, in inode: Inode, maximumAge: Duration) -> (Inode, NodeAttributes)? {
        guard let attributes = entry.attributes else { return nil }
        return state.withLockedValue { state in
            guard case .directory(let directory)? = state.handles[handle], directory.changesBefore == state.namespaceChanges,
                  ContinuousClock.now - directory.listedAt < maximumAge, state.inodes.path(of: inode)?.equalsByteWise(directory.path.value) == true
            else { return nil }
            let path = directory.path.childPrefix + entry.name
            if let known = state.inodes.inode(of: path), state.staged[known] != nil { return nil }
            return (state.inodes.remember(path), attributes)
        }
    }

    // MARK: - Files

    /// Removes the file `name`. A file being written through this mount is forgotten with it:
    /// its bytes are never put (a put under way is waited for first, so it cannot bring the file
    /// back after the removal). If the master refuses, the file stays, and is put at close.
    public func remove(_ name: String, in parent: Inode) async throws {
        defer { changedNamespace() }
        let path = try child(name, of: parent)
        try await whilePutsStopped(of: path) { inode in
            do {
                try await client.remove(path)
            } catch let error as TYDFSError where error.code == .notFound && inode != nil {
                // Created through this mount and never put: there was nothing at the master.
            }
        }
        state.withLockedValue { $0.inodes.removed(path.value) }
    }

    /// Runs `body` while the file at `path`, if this mount is writing it, is going away (removed,
    /// or replaced by a rename): a put following it as it is written is abandoned, no other
    /// starts until `body` ends (its inode is in `removing`), and the one under way is waited for
    /// first. `body` is given that inode.
    private func whilePutsStopped<Result>(of path: RemotePath, _ body: (Inode?) async throws -> Result) async rethrows -> Result {
        let (inode, running) = state.withLockedValue { state -> (Inode?, Task<Void, Error>?) in
            guard let inode = state.inodes.inode(of: path.value), let staging = state.staged[inode] else { return (nil, nil) }
            staging.streaming?.stream.abandon()
            state.removing.insert(inode)
            return (inode, staging.uploading)
        }
        defer { if let inode { state.withLockedValue { _ = $0.removing.remove(inode) } } }
        _ = await running?.result
        return try await body(inode)
    }

    /// `rename(2)`: replaces a file, or an empty directory, standing at the target, in one step
    /// at the master (another client sees the old target until the source takes its name).
    /// `RENAME_NOREPLACE` refuses to replace; `RENAME_EXCHANGE` is refused with EINVAL.
    public func rename(_ name: String, in parent: Inode, to newName: String, in newParent: Inode, flags: UInt32) async throws {
        defer { changedNamespace() }
        let noReplace: UInt32 = 1, exchange: UInt32 = 2
        guard flags & exchange == 0 else { throw MountError(EINVAL, "RENAME_EXCHANGE is not supported") }
        let source = try child(name, of: parent)
        let target = try child(newName, of: newParent)
        if source == target { return }
        let sourceAttributes = try await attributes(at: source)
        if !sourceAttributes.isDirectory, let inode = state.withLockedValue({ $0.inodes.inode(of: source.value) }) {
            try await upload(inode)
        }
        if sourceAttributes.isDirectory {
            // A put started below the folder would commit under its old name: streamed ones are
            // abandoned (put whole at close, under the new name), others waited for.
            let running = state.withLockedValue { state -> [Task<Void, Error>] in
                state.staged.compactMap { inode, staging in
                    guard state.inodes.path(of: inode)?.hasPrefixByteWise(source.childPrefix) == true else { return nil }
                    staging.streaming?.stream.abandon()
                    return staging.uploading
                }
            }
            for task in running { _ = await task.result }
        }
        let existing: NodeAttributes?
        do {
            existing = try await attributes(at: target)
        } catch let error as TYDFSError where error.code == .notFound {
            existing = nil
        }
        if let existing {
            guard flags & noReplace == 0 else { throw MountError(EEXIST, "\(target) exists") }
            switch (sourceAttributes.isDirectory, existing.isDirectory) {
            case (true, false): throw MountError(ENOTDIR, "\(target) is not a directory")
            case (false, true): throw MountError(EISDIR, "\(target) is a directory")
            default: break  // the master replaces it (one being written here and not yet put is not there)
            }
        }
        // A put of the target would land over the renamed file.
        try await whilePutsStopped(of: target) { _ in
            let renamed = try await client.rename(source, to: target, replacing: flags & noReplace == 0)
            // A master older than this mount moves a directory into an existing one instead.
            guard renamed.to.equalsByteWise(target.value) else {
                throw MountError(EIO, "the master renamed \(source) to \(renamed.to), not \(target) (is it older than this mount?)")
            }
            state.withLockedValue { $0.inodes.moved(from: source.value, to: target.value) }
        }
    }

    /// Creates `name` and opens it for writing: it exists in this mount at once, and at the
    /// master from its first close or fsync, keeping `posix` (its mode, owner and group).
    public func create(_ name: String, in parent: Inode, posix: PosixAttributes = PosixAttributes()) async throws -> (Inode, NodeAttributes, UInt64) {
        let path = try child(name, of: parent)
        let file = try StagedFile.create(in: stagingFolder)
        return state.withLockedValue { state in
            let inode = state.inodes.remember(path.value)
            if let old = state.staged[inode] {
                // Created again while still open: the new, empty file replaces the old bytes.
                try? old.file.truncate(to: 0)
                file.discard()
                state.staged[inode]?.openHandles += 1
                state.staged[inode]?.changedOutOfOrder()
            } else {
                state.staged[inode] = Staging(
                    file: file, posix: posix, givesPosix: true, changed: true, streaming: streamingPut(of: file, inode: inode, to: path))
            }
            let attributes = NodeAttributes(isDirectory: false, sizeBytes: 0, mtimeMillis: Self.nowMillis(), posix: state.staged[inode]!.posix)
            return (inode, attributes, Self.open(.staged(inode, writable: true), in: &state))
        }
    }

    /// Opens `inode`: for reading, a `RemoteReader` (or the staging file, when this mount is
    /// writing it); for writing, a staging file, empty with `truncate`, else a copy of the file.
    public func open(_ inode: Inode, forWriting: Bool, truncate: Bool) async throws -> UInt64 {
        let joined = state.withLockedValue { state -> UInt64? in
            guard state.staged[inode] != nil, let file = state.staged[inode]?.file else { return nil }
            if forWriting && truncate {
                try? file.truncate(to: 0)
                state.staged[inode]?.changedOutOfOrder()
            }
            state.staged[inode]?.openHandles += 1
            return Self.open(.staged(inode, writable: forWriting), in: &state)
        }
        if let joined { return joined }
        let path = try RemotePath(try path(of: inode))
        if !forWriting {
            let info = try await client.stat(path)
            let reader = RemoteReader(info: info, client: client, budget: readAhead) { [state] in
                state.withLockedValue { $0.inodes.path(of: inode) }.flatMap { try? RemotePath($0) }
            }
            return state.withLockedValue { Self.open(.remote(inode, reader), in: &$0) }
        }
        // Shown while staged; the master keeps them across the put.
        let posix = try await attributes(at: path).posix
        let file = truncate ? try StagedFile.create(in: stagingFolder) : try await download(path)
        return state.withLockedValue { state in
            if state.staged[inode] != nil {
                // Another open staged it meanwhile: share that one.
                file.discard()
                state.staged[inode]?.openHandles += 1
            } else {
                state.staged[inode] = Staging(
                    file: file, posix: posix, givesPosix: false, changed: truncate,
                    streaming: truncate ? streamingPut(of: file, inode: inode, to: path) : nil)
            }
            return Self.open(.staged(inode, writable: true), in: &state)
        }
    }

    /// A read answered at once, on the caller's thread, when its bytes are at hand: a file being
    /// read whose windows have arrived (`RemoteReader.readArrived`). Nil: `read` it.
    public func readArrived(_ handle: UInt64, count: Int, at offset: Int64) -> [ByteBuffer]? {
        guard case .remote(_, let reader)? = state.withLockedValue({ $0.handles[handle] }) else { return nil }
        return reader.readArrived(count: count, at: offset)
    }

    public func read(_ handle: UInt64, count: Int, at offset: Int64) async throws -> [ByteBuffer] {
        switch state.withLockedValue({ state -> (Handle, StagedFile?)? in
            guard let handle = state.handles[handle] else { return nil }
            if case .staged(let inode, _) = handle { return (handle, state.staged[inode]?.file) }
            return (handle, nil)
        }) {
        case (.remote(_, let reader), _)?:
            return try await reader.read(count: count, at: offset)
        case (.staged, let file?)?:
            return [ByteBuffer(bytes: try file.read(count: count, at: offset))]
        default:
            throw MountError(EBADF, "no open file \(handle)")
        }
    }

    /// Writes into the staging file, on the caller's thread (the bytes are the kernel's, valid
    /// only during the call).
    public func write(_ handle: UInt64, _ bytes: UnsafeRawBufferPointer, at offset: Int64) throws {
        guard let (inode, file) = state.withLockedValue({ state -> (Inode, StagedFile)? in
            guard case .staged(let inode, writable: true)? = state.handles[handle], let file = state.staged[inode]?.file else { return nil }
            return (inode, file)
        }) else { throw MountError(EBADF, "file \(handle) is not open for writing") }
        do {
            try file.write(bytes, at: offset)
        } catch {
            state.withLockedValue { $0.staged[inode]?.changedOutOfOrder() }
            throw error
        }
        // Counted once the bytes are in the file, in the same step the streamed put learns of
        // them: an upload that starts meanwhile either includes them or leaves the file changed.
        state.withLockedValue { state in
            guard state.staged[inode] != nil else { return }
            state.staged[inode]!.changes += 1
            state.staged[inode]!.streaming?.stream.wrote(at: offset, count: bytes.count)
        }
    }

    /// `close` (each descriptor's) and `fsync`: puts the file if it was written since its last put.
    public func flush(_ handle: UInt64) async throws {
        guard case .staged(let inode, writable: true)? = state.withLockedValue({ $0.handles[handle] }) else { return }
        try await upload(inode)
    }

    /// The last reference to an open file is gone: a file still unwritten is put (an error can
    /// only be logged now), and its staging file removed once no handle uses it.
    public func release(_ handle: UInt64) async {
        guard let released = state.withLockedValue({ $0.handles.removeValue(forKey: handle) }) else { return }
        switch released {
        case .remote(_, let reader):
            reader.close()
        case .staged(let inode, let writable):
            var failed = false
            var puts = 0
            var putNow = writable
            while true {
                if putNow {
                    puts += 1
                    do {
                        try await upload(inode)
                    } catch {
                        failed = true
                        logger.error("a file closed through the mount could not be stored: \(error)")
                    }
                }
                let (done, again) = state.withLockedValue { state -> (StagedFile?, Bool) in
                    guard let staging = state.staged[inode] else { return (nil, false) }
                    // The last handle, and the file changed since its last put (a truncate by
                    // path, or a reader closing last): put it once more before letting go.
                    if staging.openHandles <= 1, staging.isChanged, !failed, puts < 2,
                       state.inodes.path(of: inode) != nil, !state.removing.contains(inode) {
                        return (nil, true)
                    }
                    state.staged[inode]!.openHandles -= 1
                    guard state.staged[inode]!.openHandles <= 0 else { return (nil, false) }
                    state.staged[inode] = nil
                    return (staging.file, false)
                }
                if again {
                    putNow = true
                    continue
                }
                done?.discard()
                return
            }
        case .directory:
            break
        }
    }

    /// Sends the staging file of `inode` to the cluster if it changed since its last put, one
    /// put at a time: a second caller waits for the put under way, then puts again if that one
    /// failed or the file changed meanwhile. A put that followed the file as it was written is
    /// finished (or, abandoned, awaited); otherwise the staging file is put whole.
    private func upload(_ inode: Inode) async throws {
        defer { changedNamespace() }
        while true {
            enum Step { case done, wait(Task<Void, Error>), run(Task<Void, Error>) }
            let step = state.withLockedValue { state -> Step in
                guard let staging = state.staged[inode] else { return .done }
                if let running = staging.uploading { return .wait(running) }
                guard staging.isChanged else { return .done }
                let changes = staging.changes
                let streaming = staging.streaming
                state.staged[inode]!.streaming = nil
                // Ended in the same locked step that counted the changes: the streamed put holds
                // exactly the writes counted so far.
                if state.inodes.path(of: inode) == nil || state.removing.contains(inode) {
                    streaming?.stream.abandon()
                } else {
                    streaming?.stream.end()
                }
                // The task empties its own slot as it ends (it cannot before: this lock is held
                // until the slot is set), so whoever sees it finished sees the slot free.
                let task = Task {
                    defer { self.state.withLockedValue { $0.staged[inode]?.uploading = nil } }
                    try await self.put(inode, changes: changes, streaming: streaming, file: staging.file)
                }
                state.staged[inode]!.uploading = task
                return .run(task)
            }
            switch step {
            case .done:
                return
            case .wait(let running):
                _ = await running.result
            case .run(let task):
                return try await task.value
            }
        }
    }

    private func put(_ inode: Inode, changes: UInt64, streaming: Streaming?, file: StagedFile) async throws {
        if let streaming, case .success = await streaming.put.result, !streaming.stream.isAbandoned {
            stored(inode, changes: changes)
            return
        }
        // The path as it is now: a file renamed meanwhile goes to its new name, one being
        // removed (or removed) nowhere.
        guard let (path, attributes) = state.withLockedValue({ state in
            state.removing.contains(inode) ? nil : state.inodes.path(of: inode).map { ($0, state.staged[inode]?.putAttributes ?? [:]) }
        }) else { return }
        _ = try await client.put(localPath: file.localPath, to: try RemotePath(path), overwrite: true, attributes: attributes)
        stored(inode, changes: changes)
    }

    /// A put of `inode` holding its first `changes` succeeded: the master has the file now.
    private func stored(_ inode: Inode, changes: UInt64) {
        state.withLockedValue { state in
            state.staged[inode]?.stored = changes
            state.staged[inode]?.givesPosix = false
        }
    }

    /// A local copy of the remote file `path`, as a staging file.
    private func download(_ path: RemotePath) async throws -> StagedFile {
        let local = "\(stagingFolder)/copy-\(hex64(UInt64.random(in: .min ... .max)))"
        try await client.get(path, to: local)
        return try StagedFile.adopt(local)
    }

    // MARK: - Whole file system

    /// Raw capacity and free bytes of the live datakeepers (`df`), as HDFS and MooseFS report it.
    public func capacity() async throws -> (totalBytes: Int64, freeBytes: Int64) {
        let nodes = try await client.nodes().nodes.filter(\.alive)
        let total = nodes.map(\.capacityBytes).saturatingSum()
        let used = nodes.map(\.usedBytes).saturatingSum()
        return (total, max(0, total - used))
    }

    /// Every handle dropped and every staging file removed, after the kernel let go of the mount.
    public func discardAll() {
        let files = state.withLockedValue { state -> [StagedFile] in
            let files = state.staged.values.map(\.file)
            state.staged = [:]
            state.handles = [:]
            return files
        }
        for file in files { file.discard() }
    }

    private static func open(_ handle: Handle, in state: inout State) -> UInt64 {
        let id = state.nextHandle
        state.nextHandle += 1
        state.handles[id] = handle
        return id
    }

    public func releaseDirectory(_ handle: UInt64) {
        _ = state.withLockedValue { $0.handles.removeValue(forKey: handle) }
    }

    static func nowMillis() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }
}
