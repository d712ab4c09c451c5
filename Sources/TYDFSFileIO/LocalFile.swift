#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TYDFSCore

/// An open local file whose blocking calls run on NIO's thread pool, never on an event loop.
///
/// The data path needs exactly this: positioned reads and writes, `fsync` and `fdatasync`, and
/// the atomic rename dance (write a temporary file, fsync it, rename it into place, fsync the
/// folder). The few `…Blocking` calls block their caller instead: for start-up code that reads
/// its files before anything else runs.
///
/// Sendable: the descriptor never changes and POSIX calls on it may come from any thread; the one
/// mutable fact, whether it was closed, is behind a lock, so `close` is safe from anywhere, once.
public final class LocalFile: Sendable {
    public let path: String
    private let descriptor: Int32
    private let closed = NIOLockedValueBox(false)

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    deinit {
        if !closed.withLockedValue({ $0 }) { _ = Glibc.close(descriptor) }
    }

    /// Opens an existing file for reading.
    public static func openForReading(_ path: String) async throws -> LocalFile {
        try await open(path, flags: O_RDONLY, mode: 0)
    }

    /// Opens something that exists for writing from its start, without creating or cutting it: a
    /// device or a FIFO (see `LocalFileSystem.isSpecialFile`).
    public static func openForWriting(_ path: String) async throws -> LocalFile {
        try await open(path, flags: O_WRONLY, mode: 0)
    }

    /// Creates `path` for writing; fails if it exists unless `truncate` is set.
    public static func create(_ path: String, truncate: Bool = false) async throws -> LocalFile {
        try await open(path, flags: O_WRONLY | O_CREAT | (truncate ? O_TRUNC : O_EXCL), mode: 0o644)
    }

    /// Creates `path` (which must not exist) for reading and writing at any offset, and fsyncs
    /// its folder so the file itself survives a crash: what an append-only volume needs once.
    public static func createDurably(_ path: String) async throws -> LocalFile {
        try await blocking {
            let file = try openBlocking(path, flags: O_RDWR | O_CREAT | O_EXCL, mode: 0o644)
            try LocalFileSystem.syncDirectory(containing: path)
            return file
        }
    }

    /// Opens an existing file for reading and writing, blocking the calling thread: for start-up
    /// code that must read its files before anything else runs.
    public static func openForUpdatingBlocking(_ path: String) throws -> LocalFile {
        try openBlocking(path, flags: O_RDWR, mode: 0)
    }

    private static func open(_ path: String, flags: Int32, mode: mode_t) async throws -> LocalFile {
        try await blocking { try openBlocking(path, flags: flags, mode: mode) }
    }

    fileprivate static func openBlocking(_ path: String, flags: Int32, mode: mode_t) throws -> LocalFile {
        let fd = Glibc.open(path, flags | O_CLOEXEC, mode)
        guard fd >= 0 else { throw FileIOError.posix("open", path: path) }
        return LocalFile(path: path, descriptor: fd)
    }

    /// Wraps standard input or output; closing it is a no-op.
    public static func standardStream(_ fd: Int32, name: String) -> LocalFile {
        let file = LocalFile(path: name, descriptor: fd)
        file.closed.withLockedValue { $0 = true }
        return file
    }

    /// Size of the file now.
    public func size() async throws -> Int64 {
        try await Self.blocking { try self.sizeBlocking() }
    }

    /// Size of the file now, blocking the calling thread.
    public func sizeBlocking() throws -> Int64 {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw FileIOError.posix("stat", path: path) }
        return Int64(info.st_size)
    }

    /// True for a regular file (one that can be read at any offset and re-read on retry).
    public func isRegularFile() async throws -> Bool {
        try await Self.blocking { [descriptor, path] in
            var info = stat()
            guard fstat(descriptor, &info) == 0 else { throw FileIOError.posix("stat", path: path) }
            return (info.st_mode & S_IFMT) == S_IFREG
        }
    }

    /// Reads up to `count` bytes at `offset` (or, with nil, from the current position).
    /// Returns fewer only at end of file; an empty buffer means end of file.
    /// With `prefetching`, the disk is first asked for that range too, without waiting for it
    /// (see `prefetch`), in the same trip to the thread pool.
    public func read(
        count: Int, at offset: Int64?, allocator: ByteBufferAllocator = ByteBufferAllocator(), prefetching ahead: Range<Int64>? = nil
    ) async throws -> ByteBuffer {
        try await Self.blocking { [descriptor, path] in
            if let ahead { Self.prefetchBlocking(ahead, descriptor: descriptor) }
            var buffer = allocator.buffer(capacity: count)
            var total = 0
            try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { pointer in
                while total < count {
                    let base = pointer.baseAddress! + total
                    let result = offset.map { pread(descriptor, base, count - total, off_t($0) + off_t(total)) }
                        ?? Glibc.read(descriptor, base, count - total)
                    if result < 0 {
                        if errno == EINTR { continue }
                        throw FileIOError.posix("read", path: path)
                    }
                    if result == 0 { break }
                    total += result
                }
                return total
            }
            return buffer
        }
    }

    /// Reads up to `count` bytes at `offset`, blocking the calling thread; fewer only at end of file.
    public func readBlocking(count: Int, at offset: Int64) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var total = 0
        try bytes.withUnsafeMutableBytes { pointer in
            while total < count {
                let result = pread(descriptor, pointer.baseAddress! + total, count - total, off_t(offset) + off_t(total))
                if result < 0 {
                    if errno == EINTR { continue }
                    throw FileIOError.posix("read", path: path)
                }
                if result == 0 { break }
                total += result
            }
        }
        bytes.removeLast(count - total)
        return bytes
    }

    /// Writes all of `buffer` at `offset` (or at the current position with nil).
    public func write(_ buffer: ByteBuffer, at offset: Int64?) async throws {
        try await Self.blocking { try self.writeBlocking(buffer, at: offset) }
    }

    /// Writes `buffers` one after another at the current position, in one trip to the thread
    /// pool (received network buffers go to disk as they are, never copied into a bigger one).
    /// With `startingWriteback`, then asks the kernel to start writing the file's dirty pages to
    /// disk without waiting (`sync_file_range(SYNC_FILE_RANGE_WRITE)`): after each I/O buffer of
    /// a large chunk, this overlaps the disk with the network, so the fsync that ends it is short.
    public func append(_ buffers: [ByteBuffer], startingWriteback: Bool) async throws {
        try await Self.blocking {
            for buffer in buffers { try self.writeBlocking(buffer, at: nil) }
            if startingWriteback { self.startWritebackBlocking() }
        }
    }

    /// Asks the kernel to start writing the file's dirty pages to disk now, without waiting
    /// (`sync_file_range(SYNC_FILE_RANGE_WRITE)`), blocking the calling thread only for the
    /// submission.
    public func startWritebackBlocking() {
        _ = startWriteback?(descriptor, 0, 0, syncFileRangeWrite)
    }

    /// Writes all of `buffer` at `offset` (or at the current position with nil), blocking the
    /// calling thread: for callers already on the thread pool that write several buffers in one go.
    public func writeBlocking(_ buffer: ByteBuffer, at offset: Int64?) throws {
        try buffer.withUnsafeReadableBytes { bytes in
            var done = 0
            while done < bytes.count {
                let base = bytes.baseAddress! + done
                let result = offset.map { pwrite(descriptor, base, bytes.count - done, off_t($0) + off_t(done)) }
                    ?? Glibc.write(descriptor, base, bytes.count - done)
                if result < 0 {
                    if errno == EINTR { continue }
                    throw FileIOError.posix("write", path: path)
                }
                done += result
            }
        }
    }

    /// Sets the file's size (used to pre-size a download before parallel writes).
    public func truncate(to size: Int64) async throws {
        try await Self.blocking { try self.truncateBlocking(to: size) }
    }

    /// Sets the file's size and makes the new size durable, blocking the calling thread (used to
    /// cut a torn tail off a volume at start-up).
    public func truncateDurablyBlocking(to size: Int64) throws {
        try truncateBlocking(to: size)
        guard fsync(descriptor) == 0 else { throw FileIOError.posix("fsync", path: path) }
    }

    private func truncateBlocking(to size: Int64) throws {
        guard ftruncate(descriptor, off_t(size)) == 0 else { throw FileIOError.posix("truncate", path: path) }
    }

    /// Forces the file's data and metadata to stable storage.
    public func sync() async throws {
        try await Self.blocking { [descriptor, path] in
            guard fsync(descriptor) == 0 else { throw FileIOError.posix("fsync", path: path) }
        }
    }

    /// Frees the file's clean cached pages (`posix_fadvise(POSIX_FADV_DONTNEED)`); dirty ones
    /// stay. A datakeeper calls it once a chunk it wrote is fsynced, as HDFS datanodes can drop
    /// the cache behind writes and MinIO writes with O_DIRECT: a chunk just written is rarely
    /// read again soon, and caching it takes memory from everything else. On a shared machine
    /// that matters for speed too: on this project's virtual machine a page the page cache takes
    /// beyond the memory in recent use costs ~9 µs to touch (writing a second GiB to keep took
    /// 2.3 s of system time against 0.2 s for the first, `dd`), and pages freed here are taken
    /// again warm by the next chunk or by the client's own file. Advice only: it cannot fail.
    public func dropCachedPages() async {
        _ = try? await Self.blocking { [descriptor] in _ = posix_fadvise(descriptor, 0, 0, POSIX_FADV_DONTNEED) }
    }

    /// Switches the kernel's read-ahead off for this descriptor (`POSIX_FADV_RANDOM`): a read
    /// then takes from the disk only what it asks for (see `RangeReader`); and asks the disk for
    /// `ahead` now (see `prefetch`). Advice only: it cannot fail.
    public func readOnlyWhatIsAsked(prefetching ahead: Range<Int64>) async {
        _ = try? await Self.blocking { [descriptor] in
            _ = posix_fadvise(descriptor, 0, 0, POSIX_FADV_RANDOM)
            Self.prefetchBlocking(ahead, descriptor: descriptor)
        }
    }

    /// Asks the disk for `range` of the file now, without waiting for it
    /// (`POSIX_FADV_WILLNEED`), an I/O buffer per call. The kernel caps each call at the larger
    /// of the disk's largest request and its read-ahead size (1.25 MiB here; on a disk whose
    /// both are smaller, the rest of the buffer is read when asked for). Advice only.
    private static func prefetchBlocking(_ range: Range<Int64>, descriptor: Int32) {
        var start = range.lowerBound
        while start < range.upperBound {
            let count = min(Int64(Limits.ioBufferBytes), range.upperBound - start)
            _ = posix_fadvise(descriptor, off_t(start), off_t(count), POSIX_FADV_WILLNEED)
            start += count
        }
    }

    /// Forces the file's data, and the metadata needed to read it back (its size), to stable
    /// storage: `fdatasync`, which skips timestamps and so costs less than `sync()`.
    public func dataSync() async throws {
        try await Self.blocking { [descriptor, path] in
            guard fdatasync(descriptor) == 0 else { throw FileIOError.posix("fdatasync", path: path) }
        }
    }

    public func close() throws {
        let alreadyClosed = closed.withLockedValue { closed in
            defer { closed = true }
            return closed
        }
        guard !alreadyClosed else { return }
        guard Glibc.close(descriptor) == 0 else { throw FileIOError.posix("close", path: path) }
    }

    /// Runs `body` on NIO's thread pool (one thread per core), never on an event loop.
    public static func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await NIOThreadPool.singleton.runIfActive(body)
    }
}

/// Whole-file and folder operations of the data path.
public enum LocalFileSystem {
    /// Renames `source` to `destination` atomically (replacing it), then fsyncs the folder so the
    /// rename itself survives a crash.
    public static func renameDurably(_ source: String, to destination: String) async throws {
        try await LocalFile.blocking {
            guard Glibc.rename(source, destination) == 0 else { throw FileIOError.posix("rename", path: destination) }
            try syncDirectory(containing: destination)
        }
    }

    /// Renames `source` to `destination` atomically (replacing it), without waiting for the disk:
    /// readers see the old file or the new one, never a mix, as after `cp` or `mv`.
    public static func rename(_ source: String, to destination: String) async throws {
        try await LocalFile.blocking {
            guard Glibc.rename(source, destination) == 0 else { throw FileIOError.posix("rename", path: destination) }
        }
    }

    /// Writes `bytes` as the file `path` atomically, without waiting for the disk, in one trip to
    /// the thread pool: into `temporaryPath` (created, so it must not exist), which is then
    /// renamed over `path`. Readers see the old file or the new one, never a part. On any failure
    /// the temporary file is removed and `path` is left as it was.
    public static func writeAtomically(_ bytes: ByteBuffer, to path: String, through temporaryPath: String) async throws {
        try await LocalFile.blocking {
            let file = try LocalFile.openBlocking(temporaryPath, flags: O_WRONLY | O_CREAT | O_EXCL, mode: 0o644)
            do {
                try file.writeBlocking(bytes, at: nil)
                try file.close()
                guard Glibc.rename(temporaryPath, path) == 0 else { throw FileIOError.posix("rename", path: path) }
            } catch {
                try? file.close()
                _ = unlink(temporaryPath)
                throw error
            }
        }
    }

    /// Removes a file; a file that is already gone is not an error.
    @discardableResult
    public static func remove(_ path: String) async throws -> Bool {
        try await LocalFile.blocking {
            if unlink(path) == 0 { return true }
            if errno == ENOENT { return false }
            throw FileIOError.posix("unlink", path: path)
        }
    }

    /// Creates `path` and its parents if missing.
    public static func makeDirectories(_ path: String) throws {
        var current = path.utf8.first == UInt8(ascii: "/") ? "" : "."
        for part in path.utf8.split(separator: UInt8(ascii: "/")) {
            current += "/" + String(decoding: part, as: UTF8.self)
            if mkdir(current, 0o755) != 0 && errno != EEXIST { throw FileIOError.posix("mkdir", path: current) }
        }
    }

    /// Names in a folder (without `.` and `..`).
    public static func list(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else { throw FileIOError.posix("opendir", path: path) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Whether `path` names something that is neither a regular file nor a directory: a device,
    /// a FIFO or a socket (following symbolic links, as `/dev/stdout` is one). Such a thing is
    /// written into, never replaced.
    public static func isSpecialFile(_ path: String) -> Bool {
        var info = stat()
        guard stat(path, &info) == 0 else { return false }
        let type = info.st_mode & S_IFMT
        return type != S_IFREG && type != S_IFDIR
    }

    /// Size of a file, or nil if it does not exist.
    public static func fileSize(_ path: String) -> Int64? {
        var info = stat()
        return stat(path, &info) == 0 ? Int64(info.st_size) : nil
    }

    /// Bytes available to unprivileged users on the file system holding `path`.
    public static func availableBytes(at path: String) -> Int64? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        return Int64(info.f_bavail) * Int64(info.f_frsize)
    }

    static func syncDirectory(containing path: String) throws {
        try syncDirectory(folder(of: path))
    }

    /// The folder holding `path`: up to its last `/` (`/` for one in the root, `.` for a bare
    /// name). Cut at the byte: Swift makes one character of a `/` and a combining accent after it.
    public static func folder(of path: String) -> String {
        guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else { return "." }
        return slash == path.utf8.startIndex ? "/" : String(decoding: path.utf8[..<slash], as: UTF8.self)
    }

    /// The last name in `path`: after its last `/` (all of it when it has none).
    public static func name(of path: String) -> String {
        guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else { return path }
        return String(decoding: path.utf8[path.utf8.index(after: slash)...], as: UTF8.self)
    }

    /// The last name in `path` that is not empty (`b` for `a/b/`), what `tydfs put` names its
    /// upload after; `path` itself when it has none (`/`).
    public static func lastName(of path: String) -> String {
        path.utf8.split(separator: UInt8(ascii: "/")).last.map { String(decoding: $0, as: UTF8.self) } ?? path
    }

    /// Forces a folder's entries (creations, renames, removals) to stable storage.
    public static func syncDirectory(_ folder: String) throws {
        let fd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw FileIOError.posix("open", path: folder) }
        defer { _ = close(fd) }
        guard fsync(fd) == 0 else { throw FileIOError.posix("fsync", path: folder) }
    }
}

/// Turns `errno` into a `TYDFSError` that names the operation, the file and the reason.
enum FileIOError {
    static func posix(_ operation: String, path: String) -> TYDFSError {
        let code = errno
        let reason = String(cString: strerror(code))
        switch code {
        case ENOENT: return TYDFSError(.notFound, "\(path): \(reason)")
        case ENOSPC, EDQUOT: return TYDFSError(.insufficientSpace, "\(path): \(operation) failed: \(reason)")
        case EEXIST: return TYDFSError(.alreadyExists, "\(path): \(reason)")
        default: return TYDFSError(.io, "\(path): \(operation) failed: \(reason)")
        }
    }
}

/// A non-folder entry found below a local folder, for folder uploads.
public struct FolderEntry: Sendable, Equatable {
    /// Path from the folder walked, `/`-separated, e.g. `photos/2026/a.jpg`.
    public var relativePath: String
    /// Why the entry cannot be uploaded (not a regular file, an unreadable folder); nil for a
    /// regular file.
    public var problem: String?
    /// A folder holding nothing, kept as a folder of its own (`cp -r` and `hdfs dfs -put` keep
    /// empty folders too); `relativePath` is empty when the folder walked is empty itself.
    public var isEmptyFolder = false
}

extension LocalFileSystem {
    /// Every entry below `folder` that is not a folder, and every empty folder (`folder` itself
    /// when it is empty), depth first, sorted by name within each folder. Symbolic links are not
    /// followed into folders (as `cp -r`); a link to a regular file counts as that file. A
    /// subfolder that cannot be read becomes one entry with a problem, so one bad folder does not
    /// hide the rest.
    public static func entries(below folder: String) async throws -> [FolderEntry] {
        try await LocalFile.blocking {
            var info = stat()
            guard stat(folder, &info) == 0 else { throw FileIOError.posix("stat", path: folder) }
            guard (info.st_mode & S_IFMT) == S_IFDIR else { throw TYDFSError(.invalidArgument, "\(folder) is not a folder") }
            var found: [FolderEntry] = []
            walk(folder, relative: "", into: &found)
            return found
        }
    }

    private static func walk(_ folder: String, relative: String, into found: inout [FolderEntry]) {
        let names: [String]
        do {
            names = try list(folder).sorted()
        } catch {
            found.append(FolderEntry(relativePath: relative, problem: "cannot read the folder: \((error as? TYDFSError)?.message ?? "\(error)")"))
            return
        }
        if names.isEmpty {
            found.append(FolderEntry(relativePath: relative, problem: nil, isEmptyFolder: true))
            return
        }
        for name in names {
            let path = folder + "/" + name
            let relativePath = relative.isEmpty ? name : relative + "/" + name
            var info = stat()
            guard lstat(path, &info) == 0 else {
                found.append(FolderEntry(relativePath: relativePath, problem: FileIOError.posix("stat", path: path).message))
                continue
            }
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                walk(path, relative: relativePath, into: &found)
            case S_IFREG:
                found.append(FolderEntry(relativePath: relativePath, problem: nil))
            case S_IFLNK where stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG:
                found.append(FolderEntry(relativePath: relativePath, problem: nil))
            default:
                found.append(FolderEntry(relativePath: relativePath, problem: "\(path) is not a regular file; skipped"))
            }
        }
    }
}

/// Linux `sync_file_range`. Glibc declares it only under `_GNU_SOURCE`, which Swift's Glibc
/// module does not import, so it is looked up by name; where it is missing, nothing is started
/// early and the final fsync does all the work, as before.
private let startWriteback: (@convention(c) (Int32, Int64, Int64, UInt32) -> Int32)? = {
    guard let symbol = dlsym(nil, "sync_file_range") else { return nil }
    return unsafeBitCast(symbol, to: (@convention(c) (Int32, Int64, Int64, UInt32) -> Int32).self)
}()
/// `SYNC_FILE_RANGE_WRITE`: start write-out of dirty pages not already being written; do not wait.
private let syncFileRangeWrite: UInt32 = 2
