import TYDFSCore

/// Which number the kernel knows each path by, while it remembers it.
///
/// FUSE's low-level API names files by inode numbers, TYDFS by paths. The kernel learns a
/// number from each lookup (or create, or mkdir) and returns it with `forget` when it drops the
/// entry from its cache; until then the number must keep naming the same file, even after a
/// rename moves it or anything above it. Numbers are never reused while the mount lives, so a
/// stale one can never reach another file. Pure: no I/O, tested without a mount.
public struct InodeTable: Sendable {
    public typealias Inode = UInt64

    /// The mount's root, `/` of the cluster (FUSE_ROOT_ID).
    public static let rootInode: Inode = 1

    private var pathOf: [Inode: String] = [rootInode: "/"]
    private var inodeOf: [PathKey: Inode] = [PathKey("/"): rootInode]
    /// How many times the kernel has been told each number (root excepted: it is never forgotten).
    private var lookupCount: [Inode: UInt64] = [:]
    private var nextInode: Inode = rootInode + 1

    public init() {}

    /// The path `inode` names now, nil when it was never given or its file is gone.
    public func path(of inode: Inode) -> String? { pathOf[inode] }

    /// The number `path` is known by, if the kernel holds one.
    public func inode(of path: String) -> Inode? { inodeOf[PathKey(path)] }

    /// The number for `path`, given to the kernel once more (a lookup, create or mkdir reply).
    public mutating func remember(_ path: String) -> Inode {
        let inode: Inode
        if let known = inodeOf[PathKey(path)] {
            inode = known
        } else {
            inode = nextInode
            nextInode += 1
            inodeOf[PathKey(path)] = inode
            pathOf[inode] = path
        }
        if inode != Self.rootInode { lookupCount[inode, default: 0] += 1 }
        return inode
    }

    /// The kernel dropped `count` of its references to `inode`; at zero the number is retired.
    public mutating func forget(_ inode: Inode, count: UInt64) {
        guard inode != Self.rootInode, let held = lookupCount[inode] else { return }
        if held > count {
            lookupCount[inode] = held - count
            return
        }
        lookupCount[inode] = nil
        if let path = pathOf.removeValue(forKey: inode), inodeOf[PathKey(path)] == inode { inodeOf[PathKey(path)] = nil }
    }

    /// `from` (a file, or a directory with everything below it) is now at `to`: every number
    /// below it follows, and a number that named `to` before names nothing any more.
    public mutating func moved(from: String, to: String) {
        removed(to)
        let prefix = from == "/" ? "/" : from + "/"
        let moving = inodeOf.filter { $0.key.path.equalsByteWise(from) || $0.key.path.hasPrefixByteWise(prefix) }
        for (key, _) in moving { inodeOf[key] = nil }
        for (key, inode) in moving {
            let newPath = to + key.path.removingPrefixByteWise(from)!
            inodeOf[PathKey(newPath)] = inode
            pathOf[inode] = newPath
        }
    }

    /// The file or empty directory at `path` is gone: its number, if any, names nothing now
    /// (an operation on it answers ENOENT), though the kernel may still forget it later.
    public mutating func removed(_ path: String) {
        guard let inode = inodeOf.removeValue(forKey: PathKey(path)) else { return }
        pathOf[inode] = nil
    }

    /// How many numbers are held (the root included): what a mount's memory grows with.
    public var count: Int { pathOf.count }

    /// A path as a key, byte for byte: Linux gives two spellings of one name (é, e and an
    /// accent) two numbers, where `String` keys would merge them.
    private struct PathKey: Hashable {
        let path: String

        init(_ path: String) { self.path = path }

        static func == (lhs: PathKey, rhs: PathKey) -> Bool { lhs.path.equalsByteWise(rhs.path) }

        func hash(into hasher: inout Hasher) { path.hashByteWise(into: &hasher) }
    }
}
