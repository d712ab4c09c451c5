import Foundation
import TYDFSCore

/// One object as a listing reports it: what ListObjects needs of a file, and no more.
public struct ObjectSummary: Sendable, Equatable {
    /// The key: the file's path below its bucket, without a leading '/'.
    public var key: String
    public var sizeBytes: Int64
    /// The entity tag in its quoted form, like `"9b2cf535f27731c974343645a3985328"`.
    public var etag: String
    public var lastModifiedMillis: Int64

    public init(key: String, sizeBytes: Int64, etag: String, lastModifiedMillis: Int64) {
        self.key = key
        self.sizeBytes = sizeBytes
        self.etag = etag
        self.lastModifiedMillis = lastModifiedMillis
    }
}

/// The two ListObjects APIs. They page differently: version 1 by a marker the client picks (a
/// key, or the `NextMarker` of the previous page), version 2 by an opaque continuation token.
public enum ListVersion: Sendable, Equatable {
    case v1
    case v2
}

/// What a ListObjects request asks for, once its query string has been read.
///
/// Normalises as S3 does: an empty delimiter, start-after or marker means none, and max-keys is
/// clamped to 0...1000 (S3 never returns more than 1000 entries a page).
public struct ListParameters: Sendable, Equatable {
    /// Max-keys when the request gives none, and the most a page ever holds.
    public static let defaultMaxKeys = 1000

    public let version: ListVersion
    public let prefix: String
    public let delimiter: String?
    public let maxKeys: Int
    /// Version 2: list keys strictly after this one.
    public let startAfter: String?
    /// Version 2: the `NextContinuationToken` of the previous page, exactly as it was returned.
    public let continuationToken: String?
    /// Version 1: list entries strictly after this key or common prefix.
    public let marker: String?
    /// `encoding-type=url`: keys and prefixes in the response are percent-encoded.
    public let encodingTypeURL: Bool
    /// Version 2 `fetch-owner=true`: each entry carries its owner (version 1 always does).
    public let fetchOwner: Bool

    public init(
        version: ListVersion,
        prefix: String = "",
        delimiter: String? = nil,
        maxKeys: Int = ListParameters.defaultMaxKeys,
        startAfter: String? = nil,
        continuationToken: String? = nil,
        marker: String? = nil,
        encodingTypeURL: Bool = false,
        fetchOwner: Bool = false
    ) {
        self.version = version
        self.prefix = prefix
        self.delimiter = Self.nonEmpty(delimiter)
        self.maxKeys = min(max(maxKeys, 0), Self.defaultMaxKeys)
        self.startAfter = Self.nonEmpty(startAfter)
        self.continuationToken = continuationToken
        self.marker = Self.nonEmpty(marker)
        self.encodingTypeURL = encodingTypeURL
        self.fetchOwner = fetchOwner
    }

    /// The `max-keys` query value: `defaultMaxKeys` when absent; `InvalidArgument` when it is not
    /// an integer in 0...2147483647, as S3 answers; above 1000 it means 1000.
    public static func parseMaxKeys(_ text: String?) throws(S3Error) -> Int {
        guard let text else { return defaultMaxKeys }
        guard let value = Int32(text), value >= 0 else {
            throw .invalidArgument("Provided max-keys not an integer or within integer range", resource: text)
        }
        return min(Int(value), defaultMaxKeys)
    }

    /// The `encoding-type` query value: true for `url`, false when absent; S3 accepts no other.
    public static func parseEncodingType(_ text: String?) throws(S3Error) -> Bool {
        guard let text else { return false }
        guard text.lowercased() == "url" else { throw .invalidArgument("Invalid Encoding Method specified in Request", resource: text) }
        return true
    }

    private static func nonEmpty(_ text: String?) -> String? {
        guard let text, !text.isEmpty else { return nil }
        return text
    }
}

/// One page of a listing: the objects and common prefixes to report, and where the next page
/// starts.
public struct ListPage: Sendable, Equatable {
    public var contents: [ObjectSummary]
    public var commonPrefixes: [String]
    public var isTruncated: Bool
    /// Version 2, when truncated: what the client sends as `continuation-token` for the next page.
    public var nextContinuationToken: String?
    /// Version 1, when truncated and a delimiter was given (as S3 does): the last key or common
    /// prefix of this page. Without a delimiter clients use the last key as the next marker.
    public var nextMarker: String?

    public init(
        contents: [ObjectSummary] = [],
        commonPrefixes: [String] = [],
        isTruncated: Bool = false,
        nextContinuationToken: String? = nil,
        nextMarker: String? = nil
    ) {
        self.contents = contents
        self.commonPrefixes = commonPrefixes
        self.isTruncated = isTruncated
        self.nextContinuationToken = nextContinuationToken
        self.nextMarker = nextMarker
    }

    /// Entries on the page: objects plus common prefixes, each prefix once.
    public var keyCount: Int { contents.count + commonPrefixes.count }
}

/// ListObjects (versions 1 and 2) over the keys of one bucket, as S3 answers it.
///
/// A listing is one ordered run of entries: every key under the prefix, except that with a
/// delimiter all keys sharing `prefix + … + delimiter` fold into one entry, that common prefix,
/// which sorts where its first key would. A page is up to max-keys entries strictly after the
/// resume point: the start-after key or continuation token (version 2, whichever is later) or the
/// marker (version 1). A common prefix at or before the resume point is skipped with all its keys,
/// so resuming after a common prefix never reports it twice, and a resume point inside a folded
/// group skips the rest of that group (as Ceph RGW and MinIO do).
///
/// Keys are compared as UTF-8 bytes, S3's order, not by `String`'s Unicode-aware `<` and
/// `hasPrefix`, which treat canonically equivalent spellings as equal.
public enum ObjectListing {
    /// The page `parameters` ask for. `objects` must be sorted by key in byte-wise UTF-8 order
    /// (`precedesByteWise`) with no key twice; the start is found by binary search and only the
    /// entries of the page, and the one after it, are visited (a folded group is skipped by
    /// binary search too), so a page costs O(max-keys · log n) whatever the bucket's size.
    public static func page<Objects: RandomAccessCollection>(
        of objects: Objects,
        parameters: ListParameters
    ) throws(S3Error) -> ListPage where Objects.Element == ObjectSummary {
        let resumeAfter = try resumePoint(of: parameters)
        // S3 answers max-keys=0 with an empty, untruncated page (Ceph's s3-tests
        // test_bucket_list_maxkeys_zero checks IsTruncated is false).
        guard parameters.maxKeys > 0 else { return ListPage() }
        let prefix = parameters.prefix
        var page = ListPage()
        var lastEntry: String?
        var index = firstCandidate(in: objects, prefix: prefix, resumeAfter: resumeAfter)
        while index < objects.endIndex {
            let object = objects[index]
            guard object.key.utf8.starts(with: prefix.utf8) else { break }
            let folded = parameters.delimiter.flatMap { commonPrefix(of: object.key, below: prefix, delimiter: $0) }
            if let folded, let resumeAfter, !resumeAfter.precedesByteWise(folded) {
                index = endOfGroup(sharing: folded, in: objects, from: index)
                continue
            }
            if page.keyCount == parameters.maxKeys {
                page.isTruncated = true
                break
            }
            if let folded {
                page.commonPrefixes.append(folded)
                index = endOfGroup(sharing: folded, in: objects, from: index)
            } else {
                page.contents.append(object)
                index = objects.index(after: index)
            }
            lastEntry = folded ?? object.key
        }
        if page.isTruncated, let lastEntry {
            switch parameters.version {
            case .v2: page.nextContinuationToken = continuationToken(resumingAfter: lastEntry)
            case .v1: page.nextMarker = parameters.delimiter == nil ? nil : lastEntry
            }
        }
        return page
    }

    /// The continuation token for a page that ends with `entry`: the entry as base64url without
    /// padding. Opaque to clients, and safe in a query string and in XML as it is.
    public static func continuationToken(resumingAfter entry: String) -> String {
        Data(entry.utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// The entry a continuation token resumes after; `InvalidArgument` for any text that
    /// `continuationToken(resumingAfter:)` cannot have produced (empty, not base64url, not UTF-8).
    public static func entry(fromContinuationToken token: String) throws(S3Error) -> String {
        let invalid = S3Error.invalidArgument("The continuation token provided is incorrect", resource: token)
        guard !token.isEmpty, token.utf8.allSatisfy(isBase64URLDigit), token.utf8.count % 4 != 1 else { throw invalid }
        let padding = String(repeating: "=", count: (4 - token.utf8.count % 4) % 4)
        let standard = token.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/") + padding
        guard let bytes = Data(base64Encoded: standard) else { throw invalid }
        let entry = String(decoding: bytes, as: UTF8.self)
        guard entry.utf8.elementsEqual(bytes) else { throw invalid }
        return entry
    }

    private static func isBase64URLDigit(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "-"), UInt8(ascii: "_"):
            return true
        default:
            return false
        }
    }

    /// The point a page starts strictly after, or nil to start at the beginning.
    public static func resumePoint(of parameters: ListParameters) throws(S3Error) -> String? {
        switch parameters.version {
        case .v1:
            return parameters.marker
        case .v2:
            guard let token = parameters.continuationToken else { return parameters.startAfter }
            let tokenEntry = try entry(fromContinuationToken: token)
            guard let startAfter = parameters.startAfter else { return tokenEntry }
            return tokenEntry.precedesByteWise(startAfter) ? startAfter : tokenEntry
        }
    }

    /// The common prefix `key` folds into: `prefix` plus the rest of `key` up to and including
    /// the first `delimiter` after `prefix`; nil when no delimiter follows. `key` must start with
    /// `prefix`.
    static func commonPrefix(of key: String, below prefix: String, delimiter: String) -> String? {
        let bytes = key.utf8
        let remainder = bytes[bytes.index(bytes.startIndex, offsetBy: prefix.utf8.count)...]
        guard let match = remainder.firstRange(of: delimiter.utf8) else { return nil }
        return String(decoding: bytes[..<match.upperBound], as: UTF8.self)
    }

    /// The first object that can be on the page: at or after `prefix`, and after `resumeAfter`.
    private static func firstCandidate<Objects: RandomAccessCollection>(
        in objects: Objects,
        prefix: String,
        resumeAfter: String?
    ) -> Objects.Index where Objects.Element == ObjectSummary {
        let atPrefix = partitionPoint(in: objects, from: objects.startIndex) { $0.key.precedesByteWise(prefix) }
        guard let resumeAfter else { return atPrefix }
        return partitionPoint(in: objects, from: atPrefix) { !resumeAfter.precedesByteWise($0.key) }
    }

    /// The first object from `start` on whose key does not start with `commonPrefix`. Keys sharing
    /// a prefix are contiguous in sorted order, and the object at `start` shares it.
    private static func endOfGroup<Objects: RandomAccessCollection>(
        sharing commonPrefix: String,
        in objects: Objects,
        from start: Objects.Index
    ) -> Objects.Index where Objects.Element == ObjectSummary {
        partitionPoint(in: objects, from: start) { $0.key.utf8.starts(with: commonPrefix.utf8) }
    }

    /// Binary search: the first index from `start` whose object is not `isBefore`, for a
    /// predicate that holds for a leading run of the objects from `start` and not after it.
    private static func partitionPoint<Objects: RandomAccessCollection>(
        in objects: Objects,
        from start: Objects.Index,
        where isBefore: (ObjectSummary) -> Bool
    ) -> Objects.Index where Objects.Element == ObjectSummary {
        var low = start
        var remaining = objects.distance(from: start, to: objects.endIndex)
        while remaining > 0 {
            let half = remaining / 2
            let middle = objects.index(low, offsetBy: half)
            if isBefore(objects[middle]) {
                low = objects.index(after: middle)
                remaining -= half + 1
            } else {
                remaining = half
            }
        }
        return low
    }
}
