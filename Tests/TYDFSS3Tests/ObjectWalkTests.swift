import TYDFSCore
import XCTest

@testable import TYDFSS3

/// `ObjectWalk` against a bucket in memory: every page it leads to is the page `ObjectListing`
/// makes from the whole bucket, for every prefix, resume point, delimiter and page size tried.
final class ObjectWalkTests: XCTestCase {
    /// A bucket in memory, listed one folder at a time as the master lists them (answering at
    /// most `pageCap` names a call, as a master may answer fewer than asked), counting calls
    /// and names read.
    final class MemoryBucket: BucketFolders, @unchecked Sendable {
        let keys: [String]
        /// Folders with no object below them (`e/`), as a made directory is.
        let emptyFolders: [String]
        let pageCap: Int
        private(set) var calls = 0
        private(set) var namesRead = 0

        init(keys: [String], emptyFolders: [String] = [], pageCap: Int = .max) {
            self.keys = keys
            self.emptyFolders = emptyFolders
            self.pageCap = pageCap
        }

        private func all(in folder: String) -> [FolderChild] {
            var children: [EntryName: FolderChild] = [:]
            for key in keys + emptyFolders {
                guard let rest = key.removingPrefixByteWise(folder), !rest.isEmpty else { continue }
                if let slash = rest.utf8.firstIndex(of: UInt8(ascii: "/")) {
                    let name = String(decoding: rest.utf8[..<slash], as: UTF8.self)
                    children[EntryName(name)] = FolderChild(name: name, object: nil)
                } else {
                    children[EntryName(rest)] = FolderChild(name: rest, object: ObjectSummary(key: key, sizeBytes: 1, etag: "\"e\"", lastModifiedMillis: 1))
                }
            }
            return children.values.sorted { $0.name.precedesByteWise($1.name) }
        }

        func children(of folder: String, after: String?, limit: Int) async throws -> (children: [FolderChild], nextAfter: String?) {
            calls += 1
            let rest = all(in: folder).filter { child in after.map { $0.precedesByteWise(child.name) } ?? true }
            let page = Array(rest.prefix(min(limit, pageCap)))
            namesRead += page.count
            return (page, rest.count > page.count ? page.last?.name : nil)
        }

        func child(_ name: String, of folder: String) async throws -> FolderChild? {
            calls += 1
            return all(in: folder).first { $0.name.equalsByteWise(name) }
        }
    }

    /// Names around `/` in byte order (`-` and `.` below it, `0` above), two spellings of é, a
    /// name that begins with an accent, and deep folders; as in TYDFS, no name is both an
    /// object and a folder.
    static let keys = [
        "a-", "a-b/c", "a.txt", "a/x-y/z", "a/x.y", "a/x/1", "a/x/2", "a/x0", "a0", "ab/c/d/e",
        "b", "caf\u{E9}", "cafe\u{301}/x", "\u{301}first", "d/e/f", "d/e-g", "x/1", "x-/2", "x--/3", "x--4", "z",
    ]
    /// Folders with no object: alone, and holding only another.
    static let emptyFolders = ["e/", "d/empty/", "f/g/h/"]

    func testEveryPageIsThePageOfTheWholeBucket() async throws {
        let bucket = MemoryBucket(keys: Self.keys, emptyFolders: Self.emptyFolders, pageCap: 2)
        let everything = Self.keys.sorted { $0.precedesByteWise($1) }.map {
            ObjectSummary(key: $0, sizeBytes: 1, etag: "\"e\"", lastModifiedMillis: 1)
        }
        var prefixes: Set<String> = [""]
        var resumes: Set<String> = []
        for key in Self.keys {
            let bytes = Array(key.utf8)
            for length in 0...bytes.count {
                if let text = String(validating: bytes[..<length], as: UTF8.self) {
                    prefixes.insert(text)
                    resumes.insert(text)
                }
            }
            resumes.insert(key + "/")
        }
        // Prefixes and resume points that name no key: through an object, past the end, inside
        // a folder's range, an empty folder.
        prefixes.formUnion(["b/x", "e/", "f/", "zz", "a/x/15"])
        resumes.formUnion(["a/x/15", "zz", "a/x/", "e/", "f/g/", "x-/", "\u{FFFF}"])
        var pages = 0
        for prefix in prefixes {
            for delimiter in [nil, "/"] as [String?] {
                for resume in [nil] + resumes.map(Optional.some) {
                    for maxKeys in [1, 2, 5, 1000] {
                        let parameters = ListParameters(version: .v2, prefix: prefix, delimiter: delimiter, maxKeys: maxKeys, startAfter: resume)
                        let walked = try await ObjectWalk.objects(
                            in: bucket, prefix: prefix, after: resume, foldingFolders: delimiter == "/", limit: maxKeys + 1)
                        let expected = try ObjectListing.page(of: everything, parameters: parameters)
                        let page = try ObjectListing.page(of: walked, parameters: parameters)
                        XCTAssertEqual(page, expected, "prefix \(Array(prefix.utf8)) after \(resume.map { Array($0.utf8) } ?? []) delimiter \(delimiter ?? "none") max-keys \(maxKeys)")
                        pages += 1
                    }
                }
            }
        }
        XCTAssertGreaterThan(pages, 10_000)
    }

    /// Listing a big folder a page at a time reads about a page's worth each time, not the
    /// folder, nor the names beside it that sort before it (`big-…` sorts before `big/`).
    func testAPageReadsAboutAPage() async throws {
        let keys = (0..<5_000).map { "big/" + String(format: "%05d", $0) } + (0..<5_000).map { "big-" + String(format: "%05d", $0) }
        let bucket = MemoryBucket(keys: keys)
        let walked = try await ObjectWalk.objects(in: bucket, prefix: "", after: "big/03000", foldingFolders: false, limit: 11)
        XCTAssertEqual(walked.map(\.key), (3001...3011).map { "big/" + String(format: "%05d", $0) })
        XCTAssertLessThanOrEqual(bucket.calls, 4, "a page of the folder, and one of the bucket after it")
        XCTAssertLessThanOrEqual(bucket.namesRead, 200)
        let prefixed = MemoryBucket(keys: keys)
        let first = try await ObjectWalk.objects(in: prefixed, prefix: "big", after: "big/04990", foldingFolders: true, limit: 11)
        XCTAssertEqual(first.map(\.key), [], "big/ is behind the resume point, and nothing after it starts with big")
        XCTAssertLessThanOrEqual(prefixed.namesRead, 200)
    }

    /// A source that answers the same page again (a faulty master) ends the walk with an
    /// error, where the walk would read it for ever.
    func testAListingThatDoesNotMoveOnIsAnError() async throws {
        struct Stuck: BucketFolders {
            func children(of folder: String, after: String?, limit: Int) async throws -> (children: [FolderChild], nextAfter: String?) {
                ([FolderChild(name: "f", object: nil)], "f")
            }
            func child(_ name: String, of folder: String) async throws -> FolderChild? { nil }
        }
        for folding in [false, true] {
            do {
                _ = try await ObjectWalk.objects(in: Stuck(), prefix: "", after: nil, foldingFolders: folding, limit: 10)
                XCTFail("a listing that does not move on was read")
            } catch let error as TYDFSError {
                XCTAssertEqual(error.code, .protocolViolation)
            }
        }
    }
}
