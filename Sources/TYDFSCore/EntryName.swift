/// One name in a directory (a segment of a path), equal, hashed and ordered by its UTF-8 bytes.
///
/// Swift's `String` compares canonically: é written as one character and é written as e and a
/// combining accent are one string to `==`, `hash` and `<`. Linux file systems, HDFS, S3 and the
/// metadata store (SQLite, PostgreSQL's deterministic collations) all keep them apart, as two
/// names. A namespace keyed by `String` merged them, so a put under one spelling replaced the file
/// stored under the other in memory but not in the store, and the old row came back at the next
/// start. Keyed by `EntryName`, the namespace sees the names the store sees.
public struct EntryName: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let text: String

    @inlinable public init(_ text: String) { self.text = text }

    @inlinable public init(_ text: Substring) { self.text = String(text) }

    @inlinable public static func == (lhs: EntryName, rhs: EntryName) -> Bool { lhs.text.equalsByteWise(rhs.text) }

    @inlinable public func hash(into hasher: inout Hasher) { text.hashByteWise(into: &hasher) }

    @inlinable public static func < (lhs: EntryName, rhs: EntryName) -> Bool { lhs.text.precedesByteWise(rhs.text) }

    public var description: String { text }
}

extension StringProtocol {
    /// Whether the two hold the same UTF-8 bytes (`==` also calls two spellings of é equal).
    @inlinable public func equalsByteWise(_ other: some StringProtocol) -> Bool {
        let (lhs, rhs) = (utf8, other.utf8)
        guard lhs.count == rhs.count else { return false }
        return lhs.withContiguousStorageIfAvailable { lhsBytes in
            rhs.withContiguousStorageIfAvailable { rhsBytes in lhsBytes.elementsEqual(rhsBytes) }
        }.flatMap { $0 } ?? lhs.elementsEqual(rhs)
    }

    /// Byte-wise order of UTF-8: the order of the metadata store's indexes, of S3's listings
    /// and of SigV4's sorting (`<` orders canonically, as if normalized).
    @inlinable public func precedesByteWise(_ other: some StringProtocol) -> Bool {
        let (lhs, rhs) = (utf8, other.utf8)
        // Over the stored bytes when both have them (a native string does): a namespace sorts
        // its names with this.
        return lhs.withContiguousStorageIfAvailable { lhsBytes in
            rhs.withContiguousStorageIfAvailable { rhsBytes in lhsBytes.lexicographicallyPrecedes(rhsBytes) }
        }.flatMap { $0 } ?? lhs.lexicographicallyPrecedes(rhs)
    }

    /// Whether the UTF-8 bytes begin with `prefix`'s (`hasPrefix` compares whole characters,
    /// canonically: `/a/` is no prefix of `/a/` followed by a combining accent).
    @inlinable public func hasPrefixByteWise(_ prefix: some StringProtocol) -> Bool {
        utf8.starts(with: prefix.utf8)
    }

    /// What follows `prefix` when the UTF-8 bytes begin with its; nil when they do not
    /// (`dropFirst(prefix.count)` counts characters, and a combining character after a `/`
    /// makes one character of the two).
    @inlinable public func removingPrefixByteWise(_ prefix: some StringProtocol) -> String? {
        guard hasPrefixByteWise(prefix) else { return nil }
        return String(decoding: utf8.dropFirst(prefix.utf8.count), as: UTF8.self)
    }

    /// Feeds the UTF-8 bytes to `hasher`, to agree with `equalsByteWise`.
    @inlinable public func hashByteWise(into hasher: inout Hasher) {
        let hashed: Void? = utf8.withContiguousStorageIfAvailable { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        if hashed == nil { Array(utf8).withUnsafeBytes { hasher.combine(bytes: $0) } }
    }
}
