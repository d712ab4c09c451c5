/// A validated path in the TYDFS namespace: absolute, `/`-separated, UTF-8.
///
/// Keeps true: starts with `/`; no empty, `.` or `..` segments; no NUL; at most
/// `Limits.maxPathBytes` bytes. The root `/` is valid (it names the top of the namespace
/// for `ls`) but is never a file.
///
/// Paths are equal, hashed, ordered and split by their bytes, as a Linux file system and the
/// metadata store take them (see `EntryName`): two spellings of one text are two paths, and a
/// `/` is a separator even where a combining character follows it.
public struct RemotePath: Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    public let value: String

    public init(_ text: String) throws {
        let bytes = text.utf8.count
        guard bytes > 0 else { throw TYDFSError(.invalidArgument, "the path is empty; paths are absolute, like /dir/file.txt") }
        guard bytes <= Limits.maxPathBytes else {
            throw TYDFSError(.invalidArgument, "the path is \(bytes) bytes long; the limit is \(Limits.maxPathBytes)")
        }
        guard text.utf8.first == Self.separator else {
            throw TYDFSError(.invalidArgument, "'\(text)' is not absolute; paths start with /, like /\(text)")
        }
        guard !text.utf8.contains(0) else { throw TYDFSError(.invalidArgument, "the path contains a NUL byte") }
        if text != "/" {
            for segment in text.utf8.dropFirst().split(separator: Self.separator, omittingEmptySubsequences: false) {
                if segment.isEmpty {
                    throw TYDFSError(.invalidArgument, "'\(text)' has an empty segment (// or a trailing /)")
                }
                if segment.elementsEqual(".".utf8) || segment.elementsEqual("..".utf8) {
                    throw TYDFSError(.invalidArgument, "'\(text)' contains '\(String(decoding: segment, as: UTF8.self))'; write the path without . or .. segments")
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

    private static let separator = UInt8(ascii: "/")

    public var isRoot: Bool { value == "/" }

    /// The names along the path, from the top (`a`, `b.txt` for `/a/b.txt`); none for the root.
    public var names: [EntryName] {
        value.utf8.split(separator: Self.separator).map { EntryName(String(decoding: $0, as: UTF8.self)) }
    }

    /// The last segment (`b.txt` for `/a/b.txt`); empty for the root.
    public var name: String { isRoot ? "" : String(decoding: value.utf8[value.utf8.index(after: lastSeparator)...], as: UTF8.self) }

    /// The directory holding this path (`/a` for `/a/b.txt`, `/` for `/a`); nil for the root.
    public var parent: RemotePath? {
        guard !isRoot else { return nil }
        let slash = lastSeparator
        return slash == value.utf8.startIndex ? .root : RemotePath(valid: String(decoding: value.utf8[..<slash], as: UTF8.self))
    }

    private var lastSeparator: String.Index { value.utf8.lastIndex(of: Self.separator)! }

    /// A prefix of a valid path, up to a `/`: valid itself.
    private init(valid: String) { value = valid }

    /// The prefix every path strictly below this one starts with (`/a/` for `/a`, `/` for `/`).
    public var childPrefix: String { isRoot ? "/" : value + "/" }

    /// Whether this path lies strictly below `ancestor` (`/a/b` below `/a` and `/`).
    public func isBelow(_ ancestor: RemotePath) -> Bool {
        value.hasPrefixByteWise(ancestor.childPrefix) && self != ancestor
    }

    /// The path that `self`, at or below `source`, has once `source` is renamed to `target`.
    public func moved(from source: RemotePath, to target: RemotePath) throws -> RemotePath {
        precondition(self == source || isBelow(source), "\(self) is not at or below \(source)")
        return try RemotePath(target.value + value.removingPrefixByteWise(source.value)!)
    }

    public var description: String { value }

    @inlinable public static func == (lhs: RemotePath, rhs: RemotePath) -> Bool { lhs.value.equalsByteWise(rhs.value) }

    @inlinable public func hash(into hasher: inout Hasher) { value.hashByteWise(into: &hasher) }

    @inlinable public static func < (lhs: RemotePath, rhs: RemotePath) -> Bool { lhs.value.precedesByteWise(rhs.value) }
}
