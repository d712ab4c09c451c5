import Foundation
import TYDFSCore
import XCTest
@testable import TYDFSS3

final class ObjectListingTests: XCTestCase {
    /// Objects with the given keys, sorted as the namespace hands them over (byte-wise UTF-8).
    private func objects(_ keys: [String]) -> [ObjectSummary] {
        keys.sorted { $0.precedesByteWise($1) }.enumerated().map { index, key in
            ObjectSummary(key: key, sizeBytes: Int64(index), etag: "\"etag-\(index)\"", lastModifiedMillis: 1_795_939_200_000)
        }
    }

    private func listed(_ objects: [ObjectSummary], _ parameters: ListParameters) throws -> ListPage {
        try ObjectListing.page(of: objects, parameters: parameters)
    }

    private func s3Error(_ body: () throws -> Void) -> S3Error? {
        do {
            try body()
            return nil
        } catch {
            return error as? S3Error
        }
    }

    // MARK: Version 2 paging

    func testV2PaginationVisitsEveryKeyExactlyOnce() throws {
        let keys = (0..<2500).map { "dir/file-\($0)" }
        let all = objects(keys)
        var seen: [String] = []
        var token: String?
        var pageSizes: [Int] = []
        repeat {
            let page = try listed(all, ListParameters(version: .v2, maxKeys: 1000, continuationToken: token))
            pageSizes.append(page.keyCount)
            seen += page.contents.map(\.key)
            XCTAssertEqual(page.isTruncated, page.nextContinuationToken != nil)
            XCTAssertNil(page.nextMarker)
            token = page.nextContinuationToken
        } while token != nil
        XCTAssertEqual(pageSizes, [1000, 1000, 500])
        XCTAssertEqual(seen, all.map(\.key))
        XCTAssertEqual(Set(seen).count, 2500)
    }

    func testAnExactlyFullLastPageIsNotTruncated() throws {
        let all = objects(["a", "b", "c", "d"])
        let first = try listed(all, ListParameters(version: .v2, maxKeys: 2))
        XCTAssertTrue(first.isTruncated)
        let second = try listed(all, ListParameters(version: .v2, maxKeys: 2, continuationToken: first.nextContinuationToken))
        XCTAssertEqual(second.contents.map(\.key), ["c", "d"])
        XCTAssertFalse(second.isTruncated)
        XCTAssertNil(second.nextContinuationToken)
    }

    func testPrefixFiltersWithoutDelimiter() throws {
        let all = objects(["a/1", "a/2/x", "ab", "b/1", "a"])
        let page = try listed(all, ListParameters(version: .v2, prefix: "a/"))
        XCTAssertEqual(page.contents.map(\.key), ["a/1", "a/2/x"])
        XCTAssertEqual(page.commonPrefixes, [])
        XCTAssertFalse(page.isTruncated)
    }

    func testPrefixMatchingNothingGivesAnEmptyPage() throws {
        let page = try listed(objects(["a", "b"]), ListParameters(version: .v2, prefix: "zzz"))
        XCTAssertEqual(page, ListPage())
        XCTAssertEqual(page.keyCount, 0)
    }

    // MARK: Delimiter

    func testDelimiterFoldsKeysIntoCommonPrefixes() throws {
        let all = objects(["photos/2006/jan/a.jpg", "photos/2006/feb/b.jpg", "photos/2007/c.jpg", "photos/top.jpg", "other.txt"])
        let page = try listed(all, ListParameters(version: .v2, prefix: "photos/", delimiter: "/"))
        XCTAssertEqual(page.contents.map(\.key), ["photos/top.jpg"])
        XCTAssertEqual(page.commonPrefixes, ["photos/2006/", "photos/2007/"])
        XCTAssertEqual(page.keyCount, 3)
    }

    func testEachCommonPrefixCountsOnceTowardMaxKeys() throws {
        let all = objects(["a/1", "a/2", "a/3", "b", "c/1", "c/2", "d"])
        let first = try listed(all, ListParameters(version: .v2, delimiter: "/", maxKeys: 2))
        XCTAssertEqual(first.commonPrefixes, ["a/"])
        XCTAssertEqual(first.contents.map(\.key), ["b"])
        XCTAssertEqual(first.keyCount, 2)
        XCTAssertTrue(first.isTruncated)

        let second = try listed(all, ListParameters(version: .v2, delimiter: "/", maxKeys: 2, continuationToken: first.nextContinuationToken))
        XCTAssertEqual(second.commonPrefixes, ["c/"])
        XCTAssertEqual(second.contents.map(\.key), ["d"])
        XCTAssertFalse(second.isTruncated)
    }

    func testAPageEndingOnACommonPrefixResumesAfterTheWholeGroup() throws {
        let all = objects(["a/1", "a/2", "a/3", "b"])
        let first = try listed(all, ListParameters(version: .v2, delimiter: "/", maxKeys: 1))
        XCTAssertEqual(first.commonPrefixes, ["a/"])
        XCTAssertTrue(first.isTruncated)
        XCTAssertEqual(try ObjectListing.entry(fromContinuationToken: XCTUnwrap(first.nextContinuationToken)), "a/")

        let second = try listed(all, ListParameters(version: .v2, delimiter: "/", maxKeys: 1, continuationToken: first.nextContinuationToken))
        XCTAssertEqual(second.commonPrefixes, [])
        XCTAssertEqual(second.contents.map(\.key), ["b"])
        XCTAssertFalse(second.isTruncated)
    }

    func testTruncationIsOnlyReportedWhenAnotherEntryFollows() throws {
        // The last entry folds three keys: once it is on the page nothing follows.
        let all = objects(["a", "z/1", "z/2", "z/3"])
        let page = try listed(all, ListParameters(version: .v2, delimiter: "/", maxKeys: 2))
        XCTAssertEqual(page.contents.map(\.key), ["a"])
        XCTAssertEqual(page.commonPrefixes, ["z/"])
        XCTAssertFalse(page.isTruncated)
        XCTAssertNil(page.nextContinuationToken)
    }

    func testPrefixEndingInTheDelimiterListsItsDirectChildren() throws {
        let all = objects(["boo/bar", "boo/baz/xyzzy", "boo/baz/plugh", "cquux/thud"])
        let page = try listed(all, ListParameters(version: .v2, prefix: "boo/", delimiter: "/"))
        XCTAssertEqual(page.contents.map(\.key), ["boo/bar"])
        XCTAssertEqual(page.commonPrefixes, ["boo/baz/"])
    }

    func testMultiCharacterAndNonSlashDelimiters() throws {
        let all = objects(["a--b--c", "a--d", "ab", "x-y"])
        let dashes = try listed(all, ListParameters(version: .v2, delimiter: "--"))
        XCTAssertEqual(dashes.commonPrefixes, ["a--"])
        XCTAssertEqual(dashes.contents.map(\.key), ["ab", "x-y"])

        // s3-tests' test_bucket_list_delimiter_alt: delimiter 'a'.
        let alt = objects(["bar", "baz", "cab", "foo"])
        let page = try listed(alt, ListParameters(version: .v2, delimiter: "a"))
        XCTAssertEqual(page.contents.map(\.key), ["foo"])
        XCTAssertEqual(page.commonPrefixes, ["ba", "ca"])
    }

    func testEmptyDelimiterMeansNone() throws {
        let parameters = ListParameters(version: .v2, delimiter: "")
        XCTAssertNil(parameters.delimiter)
        let page = try listed(objects(["a/1", "b/2"]), parameters)
        XCTAssertEqual(page.contents.map(\.key), ["a/1", "b/2"])
        XCTAssertEqual(page.commonPrefixes, [])
    }

    // MARK: Start-after and continuation tokens

    func testStartAfterIsExclusiveAndNeedNotBeAKey() throws {
        let all = objects(["bar", "baz", "foo", "quxx"])
        XCTAssertEqual(try listed(all, ListParameters(version: .v2, startAfter: "baz")).contents.map(\.key), ["foo", "quxx"])
        XCTAssertEqual(try listed(all, ListParameters(version: .v2, startAfter: "blah")).contents.map(\.key), ["foo", "quxx"])
        XCTAssertEqual(try listed(all, ListParameters(version: .v2, startAfter: "zzz")).contents, [])
        XCTAssertEqual(try listed(all, ListParameters(version: .v2, startAfter: "")).contents.count, 4)
    }

    func testContinuationTokenAndStartAfterTakeTheLaterPoint() throws {
        let all = objects(["a", "b", "c", "d", "e"])
        let afterB = ObjectListing.continuationToken(resumingAfter: "b")
        let tokenLater = try listed(all, ListParameters(version: .v2, startAfter: "a", continuationToken: afterB))
        XCTAssertEqual(tokenLater.contents.map(\.key), ["c", "d", "e"])
        let startAfterLater = try listed(all, ListParameters(version: .v2, startAfter: "c", continuationToken: afterB))
        XCTAssertEqual(startAfterLater.contents.map(\.key), ["d", "e"])
    }

    func testStartAfterInsideAFoldedGroupSkipsTheRestOfIt() throws {
        let all = objects(["a/1", "a/5", "a/9", "b"])
        let page = try listed(all, ListParameters(version: .v2, delimiter: "/", startAfter: "a/4"))
        XCTAssertEqual(page.commonPrefixes, [])
        XCTAssertEqual(page.contents.map(\.key), ["b"])
    }

    func testStartAfterBeforeThePrefixStartsAtThePrefix() throws {
        let all = objects(["a", "m/1", "m/2", "z"])
        let page = try listed(all, ListParameters(version: .v2, prefix: "m/", startAfter: "b"))
        XCTAssertEqual(page.contents.map(\.key), ["m/1", "m/2"])
    }

    func testContinuationTokenRoundTripsAnyKey() throws {
        for key in ["a", "dir/file name+1 %.txt", "한글/파일", "e\u{301}", "🙂/x", String(repeating: "k", count: 1024)] {
            let token = ObjectListing.continuationToken(resumingAfter: key)
            XCTAssertFalse(token.contains("="))
            XCTAssertFalse(token.contains("+"))
            XCTAssertFalse(token.contains("/"))
            XCTAssertEqual(try ObjectListing.entry(fromContinuationToken: token), key)
        }
    }

    func testAContinuationTokenThatDoesNotDecodeIsRefused() {
        let all = objects(["a"])
        for token in ["", "not a token!", "%%%", "A", "abc=", "_w"] {
            let error = s3Error { _ = try self.listed(all, ListParameters(version: .v2, continuationToken: token)) }
            XCTAssertEqual(error?.code, "InvalidArgument", "token \(token)")
            XCTAssertEqual(error?.httpStatus, 400)
            XCTAssertEqual(error?.message, "The continuation token provided is incorrect")
        }
    }

    func testVersion1IgnoresVersion2Parameters() throws {
        let all = objects(["a", "b", "c"])
        let page = try listed(all, ListParameters(version: .v1, startAfter: "b", continuationToken: "garbage!"))
        XCTAssertEqual(page.contents.map(\.key), ["a", "b", "c"])
    }

    // MARK: Version 1 markers

    func testV1MarkerAndNextMarkerFollowS3Tests() throws {
        // s3-tests' test_bucket_list_delimiter_prefix, page by page with max-keys 1.
        let all = objects(["asdf", "boo/bar", "boo/baz/xyzzy", "cquux/thud", "cquux/bla"])
        func page(after marker: String?) throws -> ListPage {
            try listed(all, ListParameters(version: .v1, delimiter: "/", maxKeys: 1, marker: marker))
        }
        let first = try page(after: nil)
        XCTAssertEqual(first.contents.map(\.key), ["asdf"])
        XCTAssertTrue(first.isTruncated)
        XCTAssertEqual(first.nextMarker, "asdf")
        XCTAssertNil(first.nextContinuationToken)

        let second = try page(after: first.nextMarker)
        XCTAssertEqual(second.commonPrefixes, ["boo/"])
        XCTAssertTrue(second.isTruncated)
        XCTAssertEqual(second.nextMarker, "boo/")

        let third = try page(after: second.nextMarker)
        XCTAssertEqual(third.commonPrefixes, ["cquux/"])
        XCTAssertFalse(third.isTruncated)
        XCTAssertNil(third.nextMarker)
    }

    func testV1HasNoNextMarkerWithoutADelimiter() throws {
        let all = objects(["bar", "baz", "foo", "quxx"])
        let first = try listed(all, ListParameters(version: .v1, maxKeys: 2))
        XCTAssertEqual(first.contents.map(\.key), ["bar", "baz"])
        XCTAssertTrue(first.isTruncated)
        XCTAssertNil(first.nextMarker)
        // The client resumes from the last key it saw.
        let second = try listed(all, ListParameters(version: .v1, maxKeys: 2, marker: "baz"))
        XCTAssertEqual(second.contents.map(\.key), ["foo", "quxx"])
        XCTAssertFalse(second.isTruncated)
    }

    func testV1MarkerNotInTheListAndAfterIt() throws {
        let all = objects(["bar", "baz", "foo", "quxx"])
        XCTAssertEqual(try listed(all, ListParameters(version: .v1, marker: "blah")).contents.map(\.key), ["foo", "quxx"])
        let after = try listed(all, ListParameters(version: .v1, marker: "zzz"))
        XCTAssertEqual(after.contents, [])
        XCTAssertFalse(after.isTruncated)
        XCTAssertEqual(try listed(all, ListParameters(version: .v1, marker: "")).contents.count, 4)
    }

    // MARK: Max-keys

    func testMaxKeysZeroGivesAnEmptyUntruncatedPage() throws {
        let all = objects(["bar", "baz", "foo", "quxx"])
        for version in [ListVersion.v1, .v2] {
            let page = try listed(all, ListParameters(version: version, delimiter: "/", maxKeys: 0))
            XCTAssertEqual(page, ListPage())
        }
    }

    func testMaxKeysIsClampedAndParsedAsS3Does() throws {
        XCTAssertEqual(ListParameters(version: .v2, maxKeys: 5000).maxKeys, 1000)
        XCTAssertEqual(ListParameters(version: .v2, maxKeys: -3).maxKeys, 0)
        XCTAssertEqual(try ListParameters.parseMaxKeys(nil), 1000)
        XCTAssertEqual(try ListParameters.parseMaxKeys("0"), 0)
        XCTAssertEqual(try ListParameters.parseMaxKeys("7"), 7)
        XCTAssertEqual(try ListParameters.parseMaxKeys("2147483647"), 1000)
        for bad in ["", "blah", "-1", "1.5", "2147483648"] {
            XCTAssertEqual(s3Error { _ = try ListParameters.parseMaxKeys(bad) }?.code, "InvalidArgument", bad)
        }
    }

    func testEncodingTypeParameter() throws {
        XCTAssertFalse(try ListParameters.parseEncodingType(nil))
        XCTAssertTrue(try ListParameters.parseEncodingType("url"))
        XCTAssertEqual(s3Error { _ = try ListParameters.parseEncodingType("base64") }?.code, "InvalidArgument")
    }

    // MARK: Byte-wise order

    func testKeysCompareAsUTF8Bytes() throws {
        // Decomposed "e\u{301}" and precomposed "é" are equal as Strings but not as bytes;
        // "e\u{301}x" starts with "e" as bytes though not as Characters.
        let decomposed = "e\u{301}x"
        let precomposed = "\u{E9}x"
        XCTAssertTrue(decomposed.precedesByteWise(precomposed))
        XCTAssertTrue("z".precedesByteWise(precomposed))
        // Compared as bytes: String's == would call the two spellings equal.
        let all = objects([precomposed, decomposed, "e", "f"])
        XCTAssertEqual(all.map { Array($0.key.utf8) }, ["e", decomposed, "f", precomposed].map { Array($0.utf8) })
        let page = try listed(all, ListParameters(version: .v2, prefix: "e"))
        XCTAssertEqual(page.contents.map { Array($0.key.utf8) }, ["e", decomposed].map { Array($0.utf8) })
    }

    func testUnicodeDelimiterAndPrefix() throws {
        let all = objects(["사진/2024/a.jpg", "사진/2025/b.jpg", "사진/메모.txt", "문서"])
        let page = try listed(all, ListParameters(version: .v2, prefix: "사진/", delimiter: "/"))
        XCTAssertEqual(page.commonPrefixes, ["사진/2024/", "사진/2025/"])
        XCTAssertEqual(page.contents.map(\.key), ["사진/메모.txt"])
    }

    // MARK: Scale

    func testHundredThousandKeysWithFoldedGroups() throws {
        // 100 folders of 1,000 files: a delimited listing folds each folder into one entry.
        var keys: [String] = []
        keys.reserveCapacity(100_000)
        for folder in 0..<100 {
            for file in 0..<1000 { keys.append("f\(1000 + folder)/k\(100_000 + file)") }
        }
        let all = objects(keys)
        let folders = try listed(all, ListParameters(version: .v2, delimiter: "/"))
        XCTAssertEqual(folders.commonPrefixes.count, 100)
        XCTAssertEqual(folders.commonPrefixes.first, "f1000/")
        XCTAssertEqual(folders.commonPrefixes.last, "f1099/")
        XCTAssertFalse(folders.isTruncated)

        let tail = try listed(all, ListParameters(version: .v2, prefix: "f1099/", startAfter: "f1099/k100997"))
        XCTAssertEqual(tail.contents.map(\.key), ["f1099/k100998", "f1099/k100999"])

        var pages = 0
        var count = 0
        var token: String?
        repeat {
            let page = try listed(all, ListParameters(version: .v2, continuationToken: token))
            pages += 1
            count += page.keyCount
            token = page.nextContinuationToken
        } while token != nil
        XCTAssertEqual(pages, 100)
        XCTAssertEqual(count, 100_000)
    }

    func testListingTakesAnyRandomAccessCollection() throws {
        let all = objects(["a", "b", "c", "d"])
        let slice = all[1...]
        let page = try ObjectListing.page(of: slice, parameters: ListParameters(version: .v2, maxKeys: 2))
        XCTAssertEqual(page.contents.map(\.key), ["b", "c"])
        XCTAssertTrue(page.isTruncated)
    }
}
