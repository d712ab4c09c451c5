import NIOConcurrencyHelpers
import TYDFSCore
import TYDFSFileIO
import TYDFSProtocol

/// One file a batch operation could not handle, named as the user gave it, and why.
public struct FileFailure: Error, Sendable {
    /// A local path for uploads, a remote path otherwise.
    public var path: String
    public var message: String

    public init(path: String, error: Error) {
        self.path = path
        self.message = PeerError.describe(error)
    }
}

/// What a folder transfer (`put -r`, `get -r`) did. One file failing does not stop the others:
/// it is listed in `failures`.
public struct FolderTransferResult: Sendable {
    /// Files transferred.
    public var files = 0
    /// Empty folders made (remote by `put -r`, local by `get -r`).
    public var emptyFolders = 0
    public var bytes: Int64 = 0
    public var failures: [FileFailure] = []
    /// E.g. under-replicated uploads.
    public var warnings: [String] = []
}

/// Progress of a batch: items finished (done or failed) out of all, for a progress line.
public typealias BatchProgress = @Sendable (_ finished: Int, _ total: Int) -> Void

/// Runs one operation per item with at most `concurrency` in flight, in item order; used by the
/// folder transfers and the benchmark so each file is an independent task and a slow one does not
/// hold back the others.
public enum Batch {
    public static func forEach<Item: Sendable>(
        _ items: [Item], concurrency: Int, _ body: @escaping @Sendable (Item) async -> Void
    ) async {
        await withTaskGroup(of: Void.self) { group in
            var started = 0
            for item in items {
                if started >= max(1, concurrency) { await group.next() }
                group.addTask { await body(item) }
                started += 1
            }
        }
    }
}

extension TYDFSClient {
    /// Uploads every file below the local folder `localFolder` to the same relative path below
    /// `remote` (`LOCAL/a/b.txt` → `REMOTE/a/b.txt`), `concurrency` files at once, each exactly as
    /// `put(localPath:to:overwrite:)` would. An empty folder is made a directory of its own (kept
    /// while empty, as `mkdir` makes one). Entries that are neither regular files nor folders
    /// are reported as failures.
    public func putFolder(
        _ localFolder: String, to remote: RemotePath, overwrite: Bool, concurrency: Int, progress: BatchProgress? = nil
    ) async throws -> FolderTransferResult {
        let folder = localFolder.count > 1 && localFolder.hasSuffix("/") ? String(localFolder.dropLast()) : localFolder
        let entries = try await LocalFileSystem.entries(below: folder)
        let result = NIOLockedValueBox(FolderTransferResult())
        let finished = NIOLockedValueBox(0)
        await Batch.forEach(entries, concurrency: concurrency) { entry in
            let localPath = entry.relativePath.isEmpty ? folder : folder + "/" + entry.relativePath
            do {
                if let problem = entry.problem { throw TYDFSError(.invalidArgument, problem) }
                let target = entry.relativePath.isEmpty ? remote : try RemotePath(remote.childPrefix + entry.relativePath)
                if entry.isEmptyFolder {
                    try await self.makeDirectory(target, parents: true)
                    result.withLockedValue { $0.emptyFolders += 1 }
                } else {
                    let put = try await self.put(localPath: localPath, to: target, overwrite: overwrite)
                    result.withLockedValue {
                        $0.files += 1
                        $0.bytes += put.file.sizeBytes
                        $0.warnings += put.warnings
                    }
                }
            } catch {
                result.withLockedValue { $0.failures.append(FileFailure(path: localPath, error: error)) }
            }
            let done = finished.withLockedValue { $0 += 1; return $0 }
            progress?(done, entries.count)
        }
        return result.withLockedValue { $0 }
    }

    /// Downloads every file at or below `remote` into the local folder `localFolder`, keeping the
    /// relative paths (`REMOTE/a/b.txt` → `LOCAL/a/b.txt`), creating folders as needed and each
    /// empty directory below `remote` (`localFolder` itself when `remote` is one),
    /// `concurrency` files at once, each exactly as `get(_:to:)` would (an existing local file is
    /// replaced atomically).
    public func getFolder(
        _ remote: RemotePath, to localFolder: String, concurrency: Int, progress: BatchProgress? = nil
    ) async throws -> FolderTransferResult {
        let tree = try await listTree(below: remote, concurrency: concurrency)
        let targets = tree.files.map { entry -> (remote: String, local: String) in
            let relative = entry.path.removingPrefixByteWise(remote.childPrefix) ?? remote.name
            return (entry.path, localFolder + "/" + relative)
        }
        let emptyFolders = tree.emptyDirectories.map { path in
            path.removingPrefixByteWise(remote.childPrefix).map { localFolder + "/" + $0 } ?? localFolder
        }
        // Byte-wise: two spellings of one name (é, e and an accent) are two folders.
        let folders = (targets.map { target in LocalFileSystem.folder(of: target.local) } + emptyFolders).sorted { $0.precedesByteWise($1) }
        for (index, folder) in folders.enumerated() where index == 0 || !folder.equalsByteWise(folders[index - 1]) {
            try LocalFileSystem.makeDirectories(folder)
        }
        let result = NIOLockedValueBox(FolderTransferResult(emptyFolders: emptyFolders.count))
        let finished = NIOLockedValueBox(0)
        await Batch.forEach(targets, concurrency: concurrency) { target in
            do {
                let info = try await self.get(try RemotePath(target.remote), to: target.local)
                result.withLockedValue {
                    $0.files += 1
                    $0.bytes += info.sizeBytes
                }
            } catch {
                result.withLockedValue { $0.failures.append(FileFailure(path: target.remote, error: error)) }
            }
            let done = finished.withLockedValue { $0 += 1; return $0 }
            progress?(done, targets.count)
        }
        return result.withLockedValue { $0 }
    }

    /// Every file at or below `remote`, sorted by path: the namespace is listed one level at a
    /// time, up to `concurrency` folders of a level at once. A file path lists as itself.
    public func listFiles(below remote: RemotePath, concurrency: Int) async throws -> [ListEntry] {
        try await listTree(below: remote, concurrency: concurrency).files
    }

    /// As `listFiles`, with the paths of the empty directories at or below `remote` besides.
    public func listTree(below remote: RemotePath, concurrency: Int) async throws -> (files: [ListEntry], emptyDirectories: [String]) {
        var files: [ListEntry] = []
        var emptyDirectories: [String] = []
        var level = [remote]
        while !level.isEmpty {
            let listings = try await withThrowingTaskGroup(of: ListResponse.self) { group in
                var listings: [ListResponse] = []
                var started = 0
                for folder in level {
                    if started >= max(1, concurrency), let listing = try await group.next() { listings.append(listing) }
                    group.addTask { try await self.list(folder) }
                    started += 1
                }
                for try await listing in group { listings.append(listing) }
                return listings
            }
            level = []
            for listing in listings {
                if listing.entries.isEmpty { emptyDirectories.append(listing.path) }
                for entry in listing.entries {
                    if entry.isDirectory {
                        level.append(try RemotePath(entry.path))
                    } else {
                        files.append(entry)
                    }
                }
            }
        }
        return (files.sorted { $0.path.precedesByteWise($1.path) }, emptyDirectories.sorted { $0.precedesByteWise($1) })
    }
}
