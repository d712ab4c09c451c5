import TYDFSCore

/// One entry of a bucket's folder, as `BucketFolders` lists it: an object, or a folder below.
public struct FolderChild: Sendable, Equatable {
    /// The name within its folder (no `/`).
    public var name: String
    /// The object, its key in full; nil for a folder.
    public var object: ObjectSummary?

    public init(name: String, object: ObjectSummary?) {
        self.name = name
        self.object = object
    }
}

/// Where `ObjectWalk` reads a bucket: its folders one page at a time, each in the byte order of
/// its children's names, as the master pages a listing (`GET /v1/list?limit&after`). The gateway
/// reads the master; tests read a bucket in memory.
public protocol BucketFolders: Sendable {
    /// Up to `limit` children of the folder whose keys start with `folder` (`""` for the bucket,
    /// else ending in `/`) with names after `after` (all with nil), in byte order of names; and
    /// while more follow, the name to read on after (past any child left out of this page). No
    /// children and nil for a folder that does not exist.
    func children(of folder: String, after: String?, limit: Int) async throws -> (children: [FolderChild], nextAfter: String?)
    /// The child named `name` of `folder`, if there is one.
    func child(_ name: String, of folder: String) async throws -> FolderChild?
}

/// The objects of a bucket from a resume point on, in S3's key order, read folder by folder from
/// paged listings: a page of a ListObjects costs what it lists, not a walk of the whole bucket
/// (with 100,000 objects, listing them all 1,000 at a time walked 100 times 100,000).
///
/// A folder's children come in the order of their names, but a folder `a` sorts among keys as
/// `a/`: after `a-b` and `a.txt` (`-` and `.` are below `/`). So a folder is held back until the
/// next name read sorts after `a/` (no later name can sort before it), and a walk that resumes
/// inside a folder's range also looks up the few names that could be such a held-back folder.
public enum ObjectWalk {
    /// Up to `limit` objects whose keys start with `prefix` and sort after `after` (all with nil),
    /// in byte order of keys. With `foldingFolders` (ListObjects with the delimiter `/`), each
    /// folder directly in the prefix's folder that holds an object comes as one entry keyed
    /// `folder/` (which `ObjectListing` folds into a common prefix), and is not walked.
    public static func objects(
        in folders: some BucketFolders, prefix: String, after: String?, foldingFolders: Bool, limit: Int
    ) async throws -> [ObjectSummary] {
        var found: [ObjectSummary] = []
        guard limit > 0 else { return found }
        let slash = prefix.utf8.lastIndex(of: UInt8(ascii: "/"))
        let folder = slash.map { String(decoding: prefix.utf8[...$0], as: UTF8.self) } ?? ""
        let namePrefix = String(decoding: prefix.utf8[(slash.map { prefix.utf8.index(after: $0) } ?? prefix.utf8.startIndex)...], as: UTF8.self)
        let walk = Walk(folders: folders, after: after, foldingFolders: foldingFolders, limit: limit)
        try await walk.folder(folder, namesStartingWith: namePrefix, into: &found)
        return found
    }

    private struct Walk<Folders: BucketFolders> {
        let folders: Folders
        let after: String?
        let foldingFolders: Bool
        let limit: Int

        /// Adds the objects of `folder` (whose names start with `namePrefix`) after `after`.
        func folder(_ folder: String, namesStartingWith namePrefix: String, into found: inout [ObjectSummary]) async throws {
            // Where the folder's names are read from, and the names before it that may still
            // hold what sorts after `after`.
            var readAfter: String?
            var lookups: [String] = []
            var held: [(key: String, child: FolderChild)] = []
            if let after, let relative = after.removingPrefixByteWise(folder), !relative.precedesByteWise(namePrefix) {
                guard relative.hasPrefixByteWise(namePrefix) else { return }
                // A folder N sorts as N/: past `relative` when N begins it and is followed there
                // by a byte below `/`, or is all of it; or holding it, when followed by a `/`.
                let slash = relative.utf8.firstIndex(of: UInt8(ascii: "/"))
                let first = slash.map { String(decoding: relative.utf8[..<$0], as: UTF8.self) } ?? relative
                for (offset, byte) in first.utf8.enumerated() where byte < UInt8(ascii: "/") && offset > 0 {
                    lookups.append(String(decoding: first.utf8.prefix(offset), as: UTF8.self))
                }
                if slash == nil {
                    lookups.append(first)
                    readAfter = first
                } else {
                    // Resuming inside `first`: walked as a folder (nothing if it is none, and
                    // nothing when folding, as its group is behind); the names after `first`
                    // and before `first/` sort before `relative` and are not read.
                    if !foldingFolders { hold(FolderChild(name: first, object: nil), in: folder, &held) }
                    readAfter = first + "/"
                }
            } else if let after, !after.hasPrefixByteWise(folder), folder.precedesByteWise(after) {
                return  // `after` lies past every key of this folder
            } else if !namePrefix.isEmpty {
                readAfter = namePrefix
                lookups = [namePrefix]
            }
            for name in lookups where name.hasPrefixByteWise(namePrefix) {
                if let child = try await folders.child(name, of: folder) { hold(child, in: folder, &held) }
            }
            var more = true
            while more {
                let page = try await folders.children(of: folder, after: readAfter, limit: max(limit - found.count, 100))
                more = page.nextAfter != nil
                for child in page.children {
                    guard child.name.hasPrefixByteWise(namePrefix) else {
                        more = false
                        break
                    }
                    let key = folder + child.name
                    while let first = held.first, first.key.precedesByteWise(key) {
                        held.removeFirst()
                        try await add(first, into: &found)
                        if found.count >= limit { return }
                    }
                    hold(child, in: folder, &held)
                }
                readAfter = try ObjectWalk.movingOn(from: readAfter, to: page.nextAfter, in: folder)
            }
            for entry in held {
                try await add(entry, into: &found)
                if found.count >= limit { return }
            }
        }

        /// Keeps `child` among those waiting, in order of key.
        private func hold(_ child: FolderChild, in folder: String, _ held: inout [(key: String, child: FolderChild)]) {
            let key = folder + child.name + (child.object == nil ? "/" : "")
            let position = held.firstIndex { key.precedesByteWise($0.key) } ?? held.endIndex
            held.insert((key, child), at: position)
        }

        /// Adds an object past `after`, or walks a folder that may hold some.
        private func add(_ entry: (key: String, child: FolderChild), into found: inout [ObjectSummary]) async throws {
            let isPast = after.map { $0.precedesByteWise(entry.key) } ?? true
            if let object = entry.child.object {
                if isPast { found.append(object) }
            } else if foldingFolders {
                if isPast, try await holdsAnObject(entry.key) {
                    found.append(ObjectSummary(key: entry.key, sizeBytes: 0, etag: "", lastModifiedMillis: 0))
                }
            } else if isPast || after?.hasPrefixByteWise(entry.key) == true {
                try await folder(entry.key, namesStartingWith: "", into: &found)
            }
        }

        /// Whether the folder `folder` holds an object, however deep (a common prefix is only
        /// listed for one that does, as S3 has no empty folders): level by level, so an object
        /// near the top is found before a deep tree of empty folders is walked.
        private func holdsAnObject(_ folder: String) async throws -> Bool {
            var waiting = [folder]
            while !waiting.isEmpty {
                let current = waiting.removeFirst()
                var readAfter: String?
                repeat {
                    let page = try await folders.children(of: current, after: readAfter, limit: 1000)
                    if page.children.contains(where: { $0.object != nil }) { return true }
                    waiting += page.children.map { current + $0.name + "/" }
                    readAfter = try ObjectWalk.movingOn(from: readAfter, to: page.nextAfter, in: current)
                } while readAfter != nil
            }
            return false
        }
    }

    /// The cursor after a page: `next`, which must sort after `cursor` (a source answering
    /// the same page again would be read for ever).
    static func movingOn(from cursor: String?, to next: String?, in folder: String) throws -> String? {
        guard let next, let cursor, !cursor.precedesByteWise(next) else { return next }
        throw TYDFSError(.protocolViolation, "the listing of the folder '\(folder)' does not move past '\(cursor)'")
    }
}
