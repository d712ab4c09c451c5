/// A validated path in the TYDFS namespace: absolute, `/`-separated, UTF-8.
///
/// Keeps true: starts with `/`; no empty, `.` or `..` segments; no NUL; at most
/// `Limits.maxPathBytes` bytes. The root `/` is valid (it names the top of the namespace
/// for `ls`) but is never a file.
public struct RemotePath: Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    public let value: String

    public init(_ text: String) throws {
        let bytes = text.utf8.count
        guard bytes > 0 else { throw TYDFSError(.invalidArgument, "the path is empty; paths are absolute, like /dir/file.txt") }
        guard bytes <= Limits.maxPathBytes else {
            throw TYDFSError(.invalidArgument, "the path is \(bytes) bytes long; the limit is \(Limits.maxPathBytes)")
        }
        guard text.hasPrefix("/") else {
            throw TYDFSError(.invalidArgument, "'\(text)' is not absolute; paths start with /, like /\(text)")
        }
        guard !text.utf8.contains(0) else { throw TYDFSError(.invalidArgument, "the path contains a NUL byte") }
        if text != "/" {
            for segment in text.dropFirst().split(separator: "/", omittingEmptySubsequences: false) {
                if segment.isEmpty {
                    throw TYDFSError(.invalidArgument, "'\(text)' has an empty segment (// or a trailing /)")
                }
                if segment == "." || segment == ".." {
                    throw TYDFSError(.invalidArgument, "'\(text)' contains '\(segment)'; write the path without . or .. segments")
                }
            }
        }
        self.value = text
    }

    public init(from decoder: Decoder) throws {
        try self.init(try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(value)
    }

    public static let root = try! RemotePath("/")

    public var isRoot: Bool { value == "/" }

    /// The last segment (`b.txt` for `/a/b.txt`); empty for the root.
    public var name: String { isRoot ? "" : String(value[value.index(after: value.lastIndex(of: "/")!)...]) }

    /// The directory holding this path (`/a` for `/a/b.txt`, `/` for `/a`); nil for the root.
    public var parent: RemotePath? {
        guard !isRoot else { return nil }
        let slash = value.lastIndex(of: "/")!
        return slash == value.startIndex ? .root : RemotePath(valid: String(value[..<slash]))
    }

    /// A prefix of a valid path, up to a `/`: valid itself.
    private init(valid: String) { value = valid }

    /// The prefix every path strictly below this one starts with (`/a/` for `/a`, `/` for `/`).
    public var childPrefix: String { isRoot ? "/" : value + "/" }

    /// The direct child of `self` that leads to `descendant` (`/a/b` for `/a` and `/a/b/c`), or nil
    /// when `descendant` is not strictly below `self`.
    public func child(leadingTo descendant: RemotePath) -> (path: String, isLeaf: Bool)? {
        guard descendant.value.hasPrefix(childPrefix), descendant != self else { return nil }
        let rest = descendant.value.dropFirst(childPrefix.count)
        if let slash = rest.firstIndex(of: "/") {
            return (childPrefix + rest[..<slash], false)
        }
        return (descendant.value, true)
    }

    public var description: String { value }
    public static func < (lhs: RemotePath, rhs: RemotePath) -> Bool { lhs.value < rhs.value }
}
