import TYDFSCore

/// One file as the in-memory namespace keeps it; its chunks live in the chunk table.
///
/// Kept small (no path, no per-chunk data): a master holds millions of these.
public struct FileRecord: Equatable, Sendable {
    public var sizeBytes: Int64
    public var mtimeMillis: Int64
    public var crc32c: UInt32
    public var replication: Int
    public var chunkSizeBytes: Int64
    public var chunks: [ChunkID]
    /// Nil when the file has none (most files): no dictionary is kept for them.
    public var attributes: [String: String]?
    /// The put's commit id (`StoredFile.commitID`); the client's are 15 characters, which Swift
    /// keeps inline, so they cost no allocation per file.
    public var commitID: String?
}

/// One chunk of a committed file as the in-memory namespace keeps it.
public struct ChunkRecord: Equatable, Sendable {
    public var index: Int
    public var sizeBytes: Int64
    public var crc32c: UInt32
    /// The replication factor of the chunk's file.
    public var replication: Int
    /// Datakeepers believed to hold a good copy.
    public var replicas: [DataKeeperID]
}

/// One change to the metadata. The master applies it to its `Namespace` at once and the
/// `GroupCommitter` writes it to the store; `Namespace.apply` returns the edits that undo it,
/// so a batch the store failed to write can be taken back out of memory.
public enum MetadataEdit: Equatable, Sendable {
    /// Makes a file visible. Its path is free (checked by the caller).
    case putFile(StoredFile)
    /// Removes a file and its chunks from the namespace (replica deletions are queued separately).
    case removeFile(RemotePath)
    case addReplica(ChunkID, DataKeeperID)
    case removeReplica(ChunkID, DataKeeperID)
    /// The chunk must be deleted from the datakeeper.
    case queueDeletion(ChunkID, DataKeeperID)
    /// The deletion is done, or no longer wanted.
    case cancelDeletion(ChunkID, DataKeeperID)
    /// Makes the directory at `path` an entry of its own (`mkdir`, an S3 bucket): it stays while
    /// empty, until `removeDirectory`. No file stands at the path or above it (checked by the caller).
    /// Made again, a made directory takes the new `attributes` (`chmod` through a mount) and keeps
    /// its time in memory; the store writes the given time (the caller passes the time memory
    /// shows, so a reload shows the same).
    case makeDirectory(RemotePath, mtimeMillis: Int64, attributes: [String: String] = [:])
    /// Undoes `makeDirectory`: the directory then exists only while files lie below it.
    case removeDirectory(RemotePath)
    /// An entry of the directory at `path` was removed or renamed at `mtimeMillis` (as POSIX
    /// marks a directory changed): its time and its ancestors' move forward to it, never back.
    /// When it went too (a directory that existed only through the removed entry), the deepest
    /// one left above it takes the time. Made directories keep it across a restart (the store
    /// writes their rows); one that exists through its files alone then shows the latest time
    /// below it. The one edit a rollback does not take back: a time moved forward is harmless,
    /// and stays in memory until the next load from the store.
    case touchDirectory(RemotePath, mtimeMillis: Int64)
}

extension MetadataEdit {
    /// The edits that remove `file` (`rm`, or replaced by a put, a join or a rename): each replica
    /// of its chunks queued for deletion, then the file.
    public static func removal(of file: StoredFile) -> [MetadataEdit] {
        file.chunks.flatMap { chunk in chunk.replicas.map { MetadataEdit.queueDeletion(chunk.id, $0) } } + [.removeFile(file.path)]
    }

    /// The edits that mark the directories holding `paths` changed at `mtimeMillis`, one per
    /// directory: what follows removing or renaming those entries.
    public static func touchingParents(of paths: [RemotePath], at mtimeMillis: Int64) -> [MetadataEdit] {
        var seen: Set<RemotePath> = []
        return paths.compactMap { path in
            guard let parent = path.parent, seen.insert(parent).inserted else { return nil }
            return .touchDirectory(parent, mtimeMillis: mtimeMillis)
        }
    }
}

/// One line of a listing: a file, or a directory (made by `mkdir`, or implied by the files below it).
public struct NamespaceEntry: Equatable, Sendable {
    public var path: String
    public var isDirectory: Bool
    /// A file's size; for a directory, the total size of the files below it.
    public var sizeBytes: Int64
    /// A file's commit time; for a directory, the latest commit below it.
    public var mtimeMillis: Int64
    /// A file's checksum; nil for a directory.
    public var crc32c: UInt32?
    /// A file's or a made directory's attributes, when it has any.
    public var attributes: [String: String]? = nil

    /// About the bytes this entry takes in a listing's answer: its path, its attributes, and
    /// room for the rest. What bounds a page's size (`Limits.maxListPageBytes`).
    var estimatedBytes: Int {
        64 + path.utf8.count + (attributes?.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count + 16 } ?? 0)
    }
}

/// A page of a directory's listing (`Namespace.page`): listings are paged so that no answer
/// grows with the directory, however many entries it holds.
public struct NamespacePage: Equatable, Sendable {
    public var entries: [NamespaceEntry]
    /// When more entries follow: the name (not the path) of this page's last entry, to ask
    /// for the next page with.
    public var nextAfter: String?

    public init(entries: [NamespaceEntry], nextAfter: String?) {
        self.entries = entries
        self.nextAfter = nextAfter
    }
}

/// Two entries a metadata store holds that cannot stand together in one namespace: one is a
/// file where the other needs a directory (`Namespace.load`). No master can load such a store,
/// however often it tries, so a master stops, naming both, rather than lead without one.
///
/// Only a store written by a TYDFS from before names were split at every `/` byte holds such
/// pairs: it read a `/` followed by a combining accent as part of a name, so `/a/` + U+0301 +
/// `b` was a name of its own beside the file `/a`.
public struct NamespaceConflict: Error, Equatable, CustomStringConvertible {
    public let path: RemotePath
    public let other: RemotePath

    public init(path: RemotePath, other: RemotePath) {
        self.path = path
        self.other = other
    }

    public var description: String {
        "the metadata store holds both \(path) and \(other), and one is a file where the other needs a directory: a TYDFS from before names were split at every / byte (1f33c98) took a / followed by a combining accent as part of a name; rename one of them with that TYDFS and start again"
    }
}

/// The master's whole namespace in memory: the directory tree, every chunk with its replicas,
/// and the deletions owed by each datakeeper. Stat, list, path checks and repair planning read it
/// without touching the store, so reads never wait behind writes.
///
/// Pure (no I/O, no clock). It keeps true: a path is a file or a directory, never both; a
/// directory exists exactly while it was made (`makeDirectory`) or something lies below it; a
/// directory's size is the sum of the files below it; every chunk in the chunk table belongs to
/// exactly one file.
/// Not thread-safe: the master's actor owns it.
public final class Namespace {
    final class Directory {
        private(set) var children: [EntryName: Node] = [:]
        /// The children's names in order while a paged listing of this directory is under way,
        /// so that each page costs a binary search rather than a sort of the directory. Built
        /// by a page that does not reach the end, dropped by one that does.
        private(set) var namesInOrder: OrderedNames?
        var sizeBytes: Int64 = 0
        var mtimeMillis: Int64 = 0
        /// Made by `makeDirectory`: kept when empty.
        var isMade = false
        /// A made directory's attributes; nil when it has none.
        var attributes: [String: String]?

        /// Sets (or with nil removes) the child `name`.
        func setChild(_ name: EntryName, _ node: Node?) {
            if namesInOrder != nil {
                switch (children[name], node) {
                case (nil, _?): namesInOrder!.add(name)
                case (_?, nil): namesInOrder!.noteRemoval()
                default: break
                }
            }
            children[name] = node
        }

        /// The children's names in order for a page of a listing (`keep`: more pages will
        /// follow), with names removed since they were ordered possibly among them.
        func orderedNames(keep: Bool) -> OrderedNames {
            if namesInOrder == nil {
                let names = OrderedNames(children.keys)
                guard keep else { return names }
                namesInOrder = names
            }
            namesInOrder!.compact { children[$0] != nil }
            return namesInOrder!
        }

        /// Forgets the children's order (a listing reached its end).
        func dropOrderedNames() { namesInOrder = nil }
    }

    /// The names of a directory's children in order, kept between the pages of a listing: those
    /// sorted when the listing began, and apart from them, those added since (sorted as they
    /// come, merged in once there are many), so that neither a put nor a page pays for a sort
    /// of the whole directory. Names removed since may remain (readers skip them) until they
    /// are half of all.
    struct OrderedNames {
        private(set) var sorted: [EntryName]
        /// Names added since `sorted` was made, in order; none of them is in `sorted`.
        private(set) var recent: [EntryName] = []
        private var removals = 0
        /// Most names kept apart in `recent` before they are merged into `sorted`: each insert
        /// moves at most this many, and each merge (a linear pass) comes after this many puts.
        static let maxRecent = 4096

        init(_ names: some Sequence<EntryName>) { sorted = names.sorted() }

        mutating func add(_ name: EntryName) {
            guard sorted.sortedIndex(of: name) == nil else { return }
            let position = recent.sortedIndex(after: name)
            if position == 0 || recent[position - 1] != name { recent.insert(name, at: position) }
        }

        mutating func noteRemoval() { removals += 1 }

        /// Merges `recent` into `sorted`, dropping names that are no longer `isLive`, once
        /// either has grown past its bound.
        mutating func compact(isLive: (EntryName) -> Bool) {
            guard recent.count > Self.maxRecent || removals > (sorted.count + recent.count) / 2 else { return }
            var merged: [EntryName] = []
            merged.reserveCapacity(sorted.count + recent.count)
            var names = self.names(after: nil)
            while let name = names.next() {
                if isLive(name) { merged.append(name) }
            }
            sorted = merged
            recent = []
            removals = 0
        }

        /// The names that sort after `after` (all with nil), in order.
        func names(after: EntryName?) -> Merged {
            Merged(
                sorted: sorted, recent: recent, nextSorted: after.map { sorted.sortedIndex(after: $0) } ?? 0,
                nextRecent: after.map { recent.sortedIndex(after: $0) } ?? 0)
        }

        /// `sorted` and `recent` walked together in order.
        struct Merged: IteratorProtocol {
            let sorted: [EntryName]
            let recent: [EntryName]
            var nextSorted: Int
            var nextRecent: Int

            mutating func next() -> EntryName? {
                if nextSorted < sorted.count, nextRecent == recent.count || sorted[nextSorted] < recent[nextRecent] {
                    defer { nextSorted += 1 }
                    return sorted[nextSorted]
                }
                guard nextRecent < recent.count else { return nil }
                defer { nextRecent += 1 }
                return recent[nextRecent]
            }
        }
    }

    enum Node {
        case file(FileRecord)
        case directory(Directory)
    }

    private let root = Directory()
    public private(set) var chunks: [ChunkID: ChunkRecord] = [:]
    public private(set) var fileCount = 0
    /// Chunks each datakeeper must delete, each with the sequence number of the edit batch that
    /// queued it (an order may go out only once that batch is durable).
    public private(set) var pendingDeletions: [DataKeeperID: [ChunkID: UInt64]] = [:]

    public init() {}

    // MARK: - Reads

    public func file(at path: RemotePath) -> StoredFile? {
        guard case .file(let record)? = node(at: path) else { return nil }
        return storedFile(path, record)
    }

    private func storedFile(_ path: RemotePath, _ record: FileRecord) -> StoredFile {
        StoredFile(
            path: path, sizeBytes: record.sizeBytes, mtimeMillis: record.mtimeMillis, crc32c: record.crc32c,
            chunkSizeBytes: record.chunkSizeBytes, replication: record.replication,
            chunks: record.chunks.map { id in
                let chunk = chunks[id]!
                return StoredChunk(index: chunk.index, id: id, sizeBytes: chunk.sizeBytes, crc32c: chunk.crc32c, replicas: chunk.replicas)
            }, attributes: record.attributes ?? [:], commitID: record.commitID)
    }

    /// Whether `path` is a directory (the root always is).
    public func isDirectory(_ path: RemotePath) -> Bool {
        if case .directory? = node(at: path) { return true }
        return false
    }

    /// Whether `path` is a directory made by `makeDirectory` (kept while empty).
    public func isMadeDirectory(_ path: RemotePath) -> Bool {
        if case .directory(let directory)? = node(at: path) { return directory.isMade }
        return false
    }

    /// A file at `path` or at an ancestor of it (a file standing where a directory would have to
    /// be), or a file below `path` (`path` is a directory), if there is one.
    public func conflict(for path: RemotePath) -> RemotePath? {
        var directory = root
        var prefix = ""
        for name in path.names {
            prefix += "/" + name.text
            switch directory.children[name] {
            case nil: return nil
            case .file: return try? RemotePath(prefix)
            case .directory(let next): directory = next
            }
        }
        return path.isRoot ? nil : firstFile(below: directory, prefix: prefix)
    }

    private func firstFile(below directory: Directory, prefix: String) -> RemotePath? {
        guard let (name, node) = directory.children.first else { return nil }
        switch node {
        case .file: return try? RemotePath(prefix + "/" + name.text)
        case .directory(let next): return firstFile(below: next, prefix: prefix + "/" + name.text)
        }
    }

    /// One level of the namespace, sorted by name; nil when nothing is at `path`. A file lists as itself.
    public func list(_ path: RemotePath) -> [NamespaceEntry]? {
        page(of: path, after: nil, limit: .max)?.entries
    }

    /// A page of `list(path)`: the entries whose names sort after `after` (all with nil), as
    /// many as fit `limit` (> 0) and `maxBytes` (one at least), and the name to go on from
    /// when more follow. Pages asked for one after another, each after the `nextAfter` of the
    /// one before, list every entry that stays in the directory meanwhile exactly once, as
    /// HDFS's paged listings do. A file lists as itself, on one page.
    public func page(of path: RemotePath, after: String?, limit: Int, maxBytes: Int = .max) -> NamespacePage? {
        precondition(limit > 0, "a page holds at least one entry")
        switch node(at: path) {
        case nil:
            return nil
        case .file(let record)?:
            return NamespacePage(entries: [Self.entry(path.value, .file(record))], nextAfter: nil)
        case .directory(let directory)?:
            let prefix = path.childPrefix
            let ordered = directory.orderedNames(keep: after != nil || limit < directory.children.count || maxBytes < .max)
            var names = ordered.names(after: after.map(EntryName.init))
            var entries: [NamespaceEntry] = []
            var bytes = 0
            var last: EntryName?
            while entries.count < limit, let name = names.next() {
                guard let node = directory.children[name] else { continue }
                let entry = Self.entry(prefix + name.text, node)
                let entryBytes = entry.estimatedBytes
                if !entries.isEmpty, bytes + entryBytes > maxBytes { return NamespacePage(entries: entries, nextAfter: last?.text) }
                entries.append(entry)
                bytes += entryBytes
                last = name
            }
            // Names removed since they were ordered may be all that is left.
            var rest = names
            while let name = rest.next() {
                if directory.children[name] != nil { return NamespacePage(entries: entries, nextAfter: last?.text) }
            }
            directory.dropOrderedNames()
            return NamespacePage(entries: entries, nextAfter: nil)
        }
    }

    /// The path of one entry (any) of the directory at `path`; nil when it holds none, or no
    /// directory is there. Tells a non-empty directory without ordering its names.
    public func anyChild(of path: RemotePath) -> String? {
        guard case .directory(let directory)? = node(at: path), let name = directory.children.keys.first else { return nil }
        return path.childPrefix + name.text
    }

    /// The file or directory at `path` as a line of its parent's listing; nil when nothing is there.
    public func entry(at path: RemotePath) -> NamespaceEntry? {
        node(at: path).map { Self.entry(path.value, $0) }
    }

    /// How many directories the directory at `path` holds (a directory's link count is 2 plus
    /// this, for its name, its `.` and each subdirectory's `..`); nil when no directory is there.
    public func subdirectoryCount(at path: RemotePath) -> Int? {
        guard case .directory(let directory)? = node(at: path) else { return nil }
        return directory.children.values.count { if case .directory = $0 { true } else { false } }
    }

    private static func entry(_ path: String, _ node: Node) -> NamespaceEntry {
        switch node {
        case .file(let record):
            NamespaceEntry(
                path: path, isDirectory: false, sizeBytes: record.sizeBytes, mtimeMillis: record.mtimeMillis, crc32c: record.crc32c,
                attributes: record.attributes)
        case .directory(let directory):
            NamespaceEntry(
                path: path, isDirectory: true, sizeBytes: directory.sizeBytes, mtimeMillis: directory.mtimeMillis, crc32c: nil,
                attributes: directory.attributes)
        }
    }

    /// Every file at or below `path`, depth first with names in order.
    public func files(under path: RemotePath) -> [StoredFile] {
        var result: [StoredFile] = []
        func walk(_ node: Node, _ nodePath: String) {
            switch node {
            case .file(let record):
                if let remote = try? RemotePath(nodePath) { result.append(storedFile(remote, record)) }
            case .directory(let directory):
                let prefix = nodePath == "/" ? "/" : nodePath + "/"
                for name in directory.children.keys.sorted() { walk(directory.children[name]!, prefix + name.text) }
            }
        }
        if let start = node(at: path) { walk(start, path.value) }
        return result
    }

    /// The edits that rename `source` (a file, or a directory with everything below it) as
    /// `mv` does: into `destination` when that is an existing directory, else to `destination`.
    /// Each file is removed and put back under its new path with the same chunks, so applied as
    /// one batch the rename is atomic and moves no byte. Throws, changing nothing, when `source`
    /// does not exist, the new path is taken (or a file stands where one of its folders would
    /// be), or a directory would move into itself.
    ///
    /// With `replacing`, as `rename(2)` does: `destination` is the new path itself, and a file
    /// there is replaced by a file, or an empty directory by a directory, in the same batch (its
    /// replicas queued for deletion), so no one ever sees neither.
    public func renameEdits(
        from source: RemotePath, to destination: RemotePath, replacing: Bool = false
    ) throws -> (target: RemotePath, edits: [MetadataEdit]) {
        guard !source.isRoot else { throw TYDFSError(.invalidArgument, "the root / cannot be renamed") }
        guard let sourceNode = node(at: source) else { throw TYDFSError(.notFound, "\(source): no such file or directory") }
        var target = destination
        if !replacing, case .directory? = node(at: destination), destination != source {
            target = try RemotePath(destination.childPrefix + source.name)
        }
        guard target != source else { throw TYDFSError(.invalidArgument, "\(source) and \(target) are the same path") }
        if case .directory = sourceNode, target.isBelow(source) {
            throw TYDFSError(.invalidArgument, "cannot move the directory \(source) into itself (\(target))")
        }
        var removals: [MetadataEdit] = []
        switch (sourceNode, node(at: target)) {
        case (_, nil):
            break
        case (.file, .file?) where replacing:
            removals = MetadataEdit.removal(of: file(at: target)!)
        case (.directory, .directory(let directory)?) where replacing:
            guard directory.children.isEmpty else { throw TYDFSError(.directoryNotEmpty, "\(target) is not empty") }
            removals = [.removeDirectory(target)]
        default:
            throw TYDFSError(.alreadyExists, "\(target) already exists")
        }
        if let blocking = conflict(for: target), blocking != target || removals.isEmpty {
            throw TYDFSError(.alreadyExists, "\(target) cannot be created: \(blocking) is a file")
        }
        let moving = files(under: source)
        let moved = try moving.map { file in
            var moved = file
            moved.path = try file.path.moved(from: source, to: target)
            return MetadataEdit.putFile(moved)
        }
        let made = madeDirectories(under: source)
        let remade = try made.map { directory in
            MetadataEdit.makeDirectory(
                try directory.path.moved(from: source, to: target), mtimeMillis: directory.mtimeMillis,
                attributes: directory.attributes)
        }
        // All removals, then all puts: the store writes each run of one kind in a few statements.
        return (target, removals + moving.map { .removeFile($0.path) } + made.map { .removeDirectory($0.path) } + remade + moved)
    }

    /// Every directory made by `makeDirectory` at or below `path`, parents first, with its mtime
    /// and attributes.
    public func madeDirectories(under path: RemotePath) -> [MadeDirectory] {
        var result: [MadeDirectory] = []
        func walk(_ directory: Directory, _ directoryPath: String) {
            if directory.isMade, let remote = try? RemotePath(directoryPath) {
                result.append(MadeDirectory(path: remote, mtimeMillis: directory.mtimeMillis, attributes: directory.attributes ?? [:]))
            }
            let prefix = directoryPath == "/" ? "/" : directoryPath + "/"
            for name in directory.children.keys.sorted() {
                if case .directory(let child) = directory.children[name]! { walk(child, prefix + name.text) }
            }
        }
        if case .directory(let start)? = node(at: path) { walk(start, path.value) }
        return result
    }

    /// Every datakeeper the replica map names.
    public func datakeepersHoldingReplicas() -> Set<DataKeeperID> {
        var holders: Set<DataKeeperID> = []
        for chunk in chunks.values { holders.formUnion(chunk.replicas) }
        return holders
    }

    /// Chunks the replica map records on `datakeeper`.
    public func chunks(on datakeeper: DataKeeperID) -> Set<ChunkID> {
        var held: Set<ChunkID> = []
        for (id, chunk) in chunks where chunk.replicas.contains(datakeeper) { held.insert(id) }
        return held
    }

    private func node(at path: RemotePath) -> Node? {
        var current = Node.directory(root)
        for name in path.names {
            guard case .directory(let directory) = current, let next = directory.children[name] else { return nil }
            current = next
        }
        return current
    }

    // MARK: - Edits

    /// Applies `edit`, queued deletions tagged with `sequence`, and returns the edits that undo it
    /// (in order). An edit that changes nothing (a replica already recorded) undoes to nothing.
    @discardableResult
    public func apply(_ edit: MetadataEdit, sequence: UInt64) -> [MetadataEdit] {
        switch edit {
        case .putFile(let file):
            var undo: [MetadataEdit] = []
            if let existing = self.file(at: file.path) {
                remove(file.path)
                undo.append(.putFile(existing))
            }
            insert(file)
            return [.removeFile(file.path)] + undo
        case .removeFile(let path):
            guard let existing = file(at: path) else { return [] }
            remove(path)
            return [.putFile(existing)]
        case .addReplica(let chunk, let datakeeper):
            guard chunks[chunk] != nil, !chunks[chunk]!.replicas.contains(datakeeper) else { return [] }
            chunks[chunk]!.replicas.append(datakeeper)
            return [.removeReplica(chunk, datakeeper)]
        case .removeReplica(let chunk, let datakeeper):
            guard let position = chunks[chunk]?.replicas.firstIndex(of: datakeeper) else { return [] }
            chunks[chunk]!.replicas.remove(at: position)
            return [.addReplica(chunk, datakeeper)]
        case .queueDeletion(let chunk, let datakeeper):
            guard pendingDeletions[datakeeper]?[chunk] == nil else { return [] }
            pendingDeletions[datakeeper, default: [:]][chunk] = sequence
            return [.cancelDeletion(chunk, datakeeper)]
        case .cancelDeletion(let chunk, let datakeeper):
            guard pendingDeletions[datakeeper]?.removeValue(forKey: chunk) != nil else { return [] }
            if pendingDeletions[datakeeper]?.isEmpty == true { pendingDeletions[datakeeper] = nil }
            // Restored only by a rollback, which restores durable state: sequence 0 is durable.
            return [.queueDeletion(chunk, datakeeper)]
        case .makeDirectory(let path, let mtimeMillis, let attributes):
            guard !path.isRoot else { return [] }
            var trail = [root]
            for name in path.names {
                if case .directory(let next)? = trail.last!.children[name] {
                    trail.append(next)
                } else {
                    precondition(trail.last!.children[name] == nil, "\(path) lies at or below a file")
                    let next = Directory()
                    trail.last!.setChild(name, .directory(next))
                    trail.append(next)
                }
            }
            let directory = trail.last!
            let kept = attributes.isEmpty ? nil : attributes
            if directory.isMade {
                guard directory.attributes != kept else { return [] }
                let before = directory.attributes ?? [:]
                directory.attributes = kept
                return [.makeDirectory(path, mtimeMillis: directory.mtimeMillis, attributes: before)]
            }
            directory.isMade = true
            directory.attributes = kept
            for directory in trail { directory.mtimeMillis = max(directory.mtimeMillis, mtimeMillis) }
            return [.removeDirectory(path)]
        case .removeDirectory(let path):
            let names = path.names
            let trail = directories(along: names)
            guard trail.count == names.count + 1, trail.count > 1, trail.last!.isMade else { return [] }
            let attributes = trail.last!.attributes ?? [:]
            trail.last!.isMade = false
            trail.last!.attributes = nil
            pruneEmpty(trail, names)
            return [.makeDirectory(path, mtimeMillis: trail.last!.mtimeMillis, attributes: attributes)]
        case .touchDirectory(let path, let mtimeMillis):
            for directory in directories(along: path.names) { directory.mtimeMillis = max(directory.mtimeMillis, mtimeMillis) }
            return []
        }
    }

    /// The root and the directories below it along `names`, as far as they go: `trail[d]` is the
    /// one named `names[d - 1]`; all of them when the trail has `names.count + 1`.
    private func directories(along names: some Collection<EntryName>) -> [Directory] {
        var trail = [root]
        for name in names {
            guard case .directory(let next)? = trail.last!.children[name] else { break }
            trail.append(next)
        }
        return trail
    }

    /// Drops the empty directories, deepest first, that were not made on their own. `trail` holds
    /// the directories from the root down along `names`: `trail[d]` is the one named `names[d - 1]`.
    private func pruneEmpty(_ trail: [Directory], _ names: [EntryName]) {
        for depth in stride(from: trail.count - 1, to: 0, by: -1) {
            guard trail[depth].children.isEmpty, !trail[depth].isMade else { return }
            trail[depth - 1].setChild(names[depth - 1], nil)
        }
    }

    /// Adds a file as the store holds it, at a master's start: `apply(.putFile)` without making
    /// its undo, walking its path once. Throws `NamespaceConflict`, adding nothing, when the
    /// store holds something else at its path or a file where one of its folders would be.
    public func load(_ file: StoredFile) throws {
        let names = file.path.names
        let trail = directories(along: names.dropLast())
        // Where the walk stopped: a folder still to be made, or the file's own name.
        switch (trail.last!.children[names[trail.count - 1]], trail.count == names.count) {
        case (.file?, _):
            throw NamespaceConflict(path: file.path, other: try RemotePath("/" + names[..<trail.count].map(\.text).joined(separator: "/")))
        case (.directory(let below)?, true):
            throw NamespaceConflict(path: file.path, other: anyEntry(below: below, prefix: file.path.value) ?? file.path)
        default:
            insert(file, names: names, trail: trail)
        }
    }

    /// Makes a directory the store holds, at a master's start; throws `NamespaceConflict`,
    /// changing nothing, when the store holds a file at its path or at one of its folders'.
    public func loadDirectory(_ made: MadeDirectory) throws {
        if let file = conflict(for: made.path), file == made.path || made.path.isBelow(file) {
            throw NamespaceConflict(path: made.path, other: file)
        }
        apply(.makeDirectory(made.path, mtimeMillis: made.mtimeMillis, attributes: made.attributes), sequence: 0)
    }

    /// The path of an entry (any, a file or a directory) below `directory`, which is at `prefix`.
    private func anyEntry(below directory: Directory, prefix: String) -> RemotePath? {
        directory.children.first.flatMap { try? RemotePath(prefix + "/" + $0.key.text) }
    }

    /// Puts `file` at its path (split into `names`), making the folders it needs; `known` is
    /// `directories(along: names.dropLast())` when the caller walked them already.
    private func insert(_ file: StoredFile, names: [EntryName]? = nil, trail known: [Directory]? = nil) {
        let names = names ?? file.path.names
        var trail = known ?? directories(along: names.dropLast())
        precondition(trail.count == names.count || trail.last!.children[names[trail.count - 1]] == nil, "\(file.path) lies below a file")
        while trail.count < names.count {
            let next = Directory()
            trail.last!.setChild(names[trail.count - 1], .directory(next))
            trail.append(next)
        }
        for directory in trail {
            directory.sizeBytes += file.sizeBytes
            directory.mtimeMillis = max(directory.mtimeMillis, file.mtimeMillis)
        }
        trail.last!.setChild(names.last!, .file(FileRecord(
            sizeBytes: file.sizeBytes, mtimeMillis: file.mtimeMillis, crc32c: file.crc32c, replication: file.replication,
            chunkSizeBytes: file.chunkSizeBytes, chunks: file.chunks.map(\.id), attributes: file.attributes.isEmpty ? nil : file.attributes,
            commitID: file.commitID)))
        for chunk in file.chunks {
            chunks[chunk.id] = ChunkRecord(
                index: chunk.index, sizeBytes: chunk.sizeBytes, crc32c: chunk.crc32c, replication: file.replication, replicas: chunk.replicas)
        }
        fileCount += 1
    }

    /// Removes the file at `path` (which exists) and every directory left empty above it that
    /// was not made on its own.
    private func remove(_ path: RemotePath) {
        let names = path.names
        let trail = directories(along: names.dropLast())
        guard trail.count == names.count, case .file(let record)? = trail.last!.children[names.last!] else {
            preconditionFailure("\(path) is not a file")
        }
        trail.last!.setChild(names.last!, nil)
        for directory in trail { directory.sizeBytes -= record.sizeBytes }
        pruneEmpty(trail, names)
        for chunk in record.chunks { chunks[chunk] = nil }
        fileCount -= 1
    }
}

extension [EntryName] {
    /// The position of `name` in this sorted array, if it is there.
    fileprivate func sortedIndex(of name: EntryName) -> Int? {
        let position = sortedIndex(after: name)
        return position > 0 && self[position - 1] == name ? position - 1 : nil
    }

    /// The position of the first name in this sorted array that sorts after `name`.
    fileprivate func sortedIndex(after name: EntryName) -> Int {
        var low = 0
        var high = count
        while low < high {
            let middle = (low + high) / 2
            if self[middle] <= name { low = middle + 1 } else { high = middle }
        }
        return low
    }
}
