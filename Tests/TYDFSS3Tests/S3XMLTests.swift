import Foundation
import XCTest
@testable import TYDFSS3

private let header = #"<?xml version="1.0" encoding="UTF-8"?>"#
private let namespace = "http://s3.amazonaws.com/doc/2006-03-01/"
/// 2026-11-29T08:00:00.000Z
private let lastModified: Int64 = 1_795_939_200_000

private func s3Error(_ body: () throws -> Void) -> S3Error? {
    do {
        try body()
        return nil
    } catch {
        return error as? S3Error
    }
}

private func object(_ key: String, size: Int64 = 5, etag: String = "\"abc\"") -> ObjectSummary {
    ObjectSummary(key: key, sizeBytes: size, etag: etag, lastModifiedMillis: lastModified)
}

/// Reads a rendered document back, proving it well-formed.
private func reparsed(_ xml: String, root: String) throws -> ParsedElement {
    try ParsedElement.parse(Data(xml.utf8), root: root)
}

private func texts(of name: String, in element: ParsedElement) -> [String] {
    element.children.filter { $0.name == name }.map(\.text)
}

final class S3XMLRenderingTests: XCTestCase {
    // MARK: Text

    func testEscapingCoversMarkupAndControlCharacters() {
        XCTAssertEqual(S3XML.escaped(#"a&b<c>"d'e"#), "a&amp;b&lt;c&gt;&quot;d&apos;e")
        XCTAssertEqual(S3XML.escaped("tab\tlf\ncr\rbell\u{7}nul\u{0}"), "tab&#x9;lf&#xA;cr&#xD;bell&#x7;nul&#x0;")
        XCTAssertEqual(S3XML.escaped("한글 🙂 é"), "한글 🙂 é")
        XCTAssertEqual(S3XML.escaped(""), "")
    }

    func testEscapedTextSurvivesAParser() throws {
        let key = "a&b<c>\"d'e \t line\nbreak\r\n한글 🙂"
        let xml = S3XML.initiateMultipartUploadResult(bucket: "b", key: key, uploadID: "u")
        let root = try reparsed(xml, root: "InitiateMultipartUploadResult")
        XCTAssertEqual(root.child(named: "Key").map { Array($0.text.utf8) }, Array(key.utf8))
    }

    func testURLEncodingKeepsUnreservedCharactersAndSlash() {
        XCTAssertEqual(S3XML.urlEncoded("a b+c%d&e<f>/g"), "a%20b%2Bc%25d%26e%3Cf%3E/g")
        XCTAssertEqual(S3XML.urlEncoded("AZaz09-_.~/"), "AZaz09-_.~/")
        XCTAssertEqual(S3XML.urlEncoded("한/é"), "%ED%95%9C/%C3%A9")
        XCTAssertEqual(S3XML.urlEncoded("=?#:@!*'()"), "%3D%3F%23%3A%40%21%2A%27%28%29")
        XCTAssertEqual(S3XML.urlEncoded("\n\u{0}"), "%0A%00")
    }

    func testISO8601WithMilliseconds() {
        XCTAssertEqual(S3XML.iso8601(millis: 0), "1970-01-01T00:00:00.000Z")
        XCTAssertEqual(S3XML.iso8601(millis: lastModified), "2026-11-29T08:00:00.000Z")
        XCTAssertEqual(S3XML.iso8601(millis: 1_709_251_199_999), "2024-02-29T23:59:59.999Z")
        XCTAssertEqual(S3XML.iso8601(millis: 951_868_800_000), "2000-03-01T00:00:00.000Z")
        XCTAssertEqual(S3XML.iso8601(millis: 946_684_799_123), "1999-12-31T23:59:59.123Z")
        XCTAssertEqual(S3XML.iso8601(millis: -1), "1969-12-31T23:59:59.999Z")
        XCTAssertEqual(S3XML.httpDate(millis: 1_795_939_200_000), "Sun, 29 Nov 2026 08:00:00 GMT")
        XCTAssertEqual(S3XML.httpDate(millis: -1), "Wed, 31 Dec 1969 23:59:59 GMT")
        // The ends of an Int64 (a stored time from before masters refused them) print, not trap.
        XCTAssertTrue(S3XML.iso8601(millis: .min).hasSuffix("Z"))
        XCTAssertTrue(S3XML.httpDate(millis: .min).hasSuffix("GMT"))
        XCTAssertTrue(S3XML.iso8601(millis: .max).hasSuffix("Z"))
        XCTAssertTrue(S3XML.httpDate(millis: .max).hasSuffix("GMT"))
    }

    // MARK: Listings

    func testListObjectsV2Document() {
        let parameters = ListParameters(version: .v2, delimiter: "/")
        let page = ListPage(contents: [object("a&b.txt")], commonPrefixes: ["dir/"])
        let expected = header
            + #"<ListBucketResult xmlns="\#(namespace)"><Name>photos</Name><Prefix></Prefix><Delimiter>/</Delimiter>"#
            + "<MaxKeys>1000</MaxKeys><KeyCount>2</KeyCount><IsTruncated>false</IsTruncated>"
            + "<Contents><Key>a&amp;b.txt</Key><LastModified>2026-11-29T08:00:00.000Z</LastModified>"
            + "<ETag>&quot;abc&quot;</ETag><Size>5</Size><StorageClass>STANDARD</StorageClass></Contents>"
            + "<CommonPrefixes><Prefix>dir/</Prefix></CommonPrefixes></ListBucketResult>"
        XCTAssertEqual(S3XML.listBucketResult(bucket: "photos", parameters: parameters, page: page), expected)
    }

    func testListObjectsV2PagingElementsAndOwner() throws {
        let token = ObjectListing.continuationToken(resumingAfter: "b")
        let parameters = ListParameters(version: .v2, prefix: "p/", maxKeys: 1, startAfter: "p/a", continuationToken: token, fetchOwner: true)
        let page = ListPage(contents: [object("p/c")], isTruncated: true, nextContinuationToken: "next")
        let root = try reparsed(S3XML.listBucketResult(bucket: "bkt", parameters: parameters, page: page), root: "ListBucketResult")
        XCTAssertEqual(root.child(named: "Prefix")?.text, "p/")
        XCTAssertNil(root.child(named: "Delimiter"))
        XCTAssertEqual(root.child(named: "MaxKeys")?.text, "1")
        XCTAssertEqual(root.child(named: "KeyCount")?.text, "1")
        XCTAssertEqual(root.child(named: "IsTruncated")?.text, "true")
        XCTAssertEqual(root.child(named: "ContinuationToken")?.text, token)
        XCTAssertEqual(root.child(named: "NextContinuationToken")?.text, "next")
        XCTAssertEqual(root.child(named: "StartAfter")?.text, "p/a")
        XCTAssertNil(root.child(named: "EncodingType"))
        XCTAssertNil(root.child(named: "Marker"))
        let owner = root.child(named: "Contents")?.child(named: "Owner")
        XCTAssertEqual(owner?.child(named: "ID")?.text, "tydfs")
        XCTAssertEqual(owner?.child(named: "DisplayName")?.text, "tydfs")

        let withoutOwner = S3XML.listBucketResult(bucket: "bkt", parameters: ListParameters(version: .v2), page: page)
        XCTAssertFalse(withoutOwner.contains("<Owner>"))
    }

    func testListObjectsV1Document() throws {
        let parameters = ListParameters(version: .v1, delimiter: "/", maxKeys: 2, marker: "a")
        let page = ListPage(contents: [object("b")], commonPrefixes: ["c/"], isTruncated: true, nextMarker: "c/")
        let xml = S3XML.listBucketResult(bucket: "bkt", parameters: parameters, page: page)
        let root = try reparsed(xml, root: "ListBucketResult")
        XCTAssertEqual(root.children.map(\.name), [
            "Name", "Prefix", "Marker", "NextMarker", "MaxKeys", "Delimiter", "IsTruncated", "Contents", "CommonPrefixes",
        ])
        XCTAssertEqual(root.child(named: "Marker")?.text, "a")
        XCTAssertEqual(root.child(named: "NextMarker")?.text, "c/")
        XCTAssertEqual(root.child(named: "Contents")?.child(named: "Owner")?.child(named: "ID")?.text, "tydfs")
        XCTAssertFalse(xml.contains("KeyCount"))
        XCTAssertFalse(xml.contains("ContinuationToken"))

        let first = S3XML.listBucketResult(bucket: "bkt", parameters: ListParameters(version: .v1), page: ListPage())
        XCTAssertTrue(first.contains("<Marker></Marker>"))
        XCTAssertFalse(first.contains("NextMarker"))
        XCTAssertFalse(first.contains("Delimiter"))
    }

    func testEncodingTypeURLEncodesKeysAndPrefixes() throws {
        // s3-tests' test_bucket_listv2_encoding_basic, plus the characters that need care.
        let keys = ["asdf+b", "a b&c<d>%e.txt", "한글.txt"]
        let parameters = ListParameters(version: .v2, prefix: "", delimiter: "/", startAfter: "0 0", encodingTypeURL: true)
        let page = ListPage(contents: keys.map { object($0) }, commonPrefixes: ["foo+1/", "foo/", "quux ab/"])
        let xml = S3XML.listBucketResult(bucket: "bkt", parameters: parameters, page: page)
        let root = try reparsed(xml, root: "ListBucketResult")
        XCTAssertEqual(root.child(named: "EncodingType")?.text, "url")
        XCTAssertEqual(root.child(named: "StartAfter")?.text, "0%200")
        XCTAssertEqual(root.child(named: "Delimiter")?.text, "/")
        XCTAssertEqual(root.children.filter { $0.name == "Contents" }.compactMap { $0.child(named: "Key")?.text }, [
            "asdf%2Bb", "a%20b%26c%3Cd%3E%25e.txt", "%ED%95%9C%EA%B8%80.txt",
        ])
        XCTAssertEqual(root.children.filter { $0.name == "CommonPrefixes" }.compactMap { $0.child(named: "Prefix")?.text }, [
            "foo%2B1/", "foo/", "quux%20ab/",
        ])
        // Nothing is left for XML to escape once a key is URL-encoded.
        XCTAssertFalse(xml.contains("&amp;"))
    }

    func testEncodingTypeURLInVersion1EncodesMarkersAndPrefix() throws {
        let parameters = ListParameters(version: .v1, prefix: "a b/", delimiter: "+", marker: "a b/c d", encodingTypeURL: true)
        let page = ListPage(contents: [object("a b/x y")], isTruncated: true, nextMarker: "a b/x y")
        let root = try reparsed(S3XML.listBucketResult(bucket: "bkt", parameters: parameters, page: page), root: "ListBucketResult")
        XCTAssertEqual(root.child(named: "Prefix")?.text, "a%20b/")
        XCTAssertEqual(root.child(named: "Marker")?.text, "a%20b/c%20d")
        XCTAssertEqual(root.child(named: "NextMarker")?.text, "a%20b/x%20y")
        XCTAssertEqual(root.child(named: "Delimiter")?.text, "%2B")
        XCTAssertEqual(root.child(named: "Contents")?.child(named: "Key")?.text, "a%20b/x%20y")
    }

    func testListingRenderedFromARealPageRoundTrips() throws {
        let all = ["x/1", "x/2", "y & z", "é"].map { object($0) }
        let parameters = ListParameters(version: .v2, delimiter: "/")
        let page = try ObjectListing.page(of: all, parameters: parameters)
        let root = try reparsed(S3XML.listBucketResult(bucket: "b", parameters: parameters, page: page), root: "ListBucketResult")
        XCTAssertEqual(root.child(named: "KeyCount")?.text, "3")
        XCTAssertEqual(root.children.filter { $0.name == "Contents" }.compactMap { $0.child(named: "Key")?.text }, ["y & z", "é"])
    }

    func testListAllMyBuckets() throws {
        let xml = S3XML.listAllMyBucketsResult([
            BucketSummary(name: "alpha", creationDateMillis: lastModified),
            BucketSummary(name: "beta", creationDateMillis: 0),
        ])
        XCTAssertTrue(xml.hasPrefix(header + #"<ListAllMyBucketsResult xmlns="\#(namespace)">"#))
        let root = try reparsed(xml, root: "ListAllMyBucketsResult")
        XCTAssertEqual(root.child(named: "Owner")?.child(named: "ID")?.text, "tydfs")
        XCTAssertEqual(root.child(named: "Owner")?.child(named: "DisplayName")?.text, "tydfs")
        let buckets = root.child(named: "Buckets")?.children ?? []
        XCTAssertEqual(buckets.compactMap { $0.child(named: "Name")?.text }, ["alpha", "beta"])
        XCTAssertEqual(buckets.compactMap { $0.child(named: "CreationDate")?.text }, ["2026-11-29T08:00:00.000Z", "1970-01-01T00:00:00.000Z"])

        let empty = try reparsed(S3XML.listAllMyBucketsResult([]), root: "ListAllMyBucketsResult")
        XCTAssertEqual(empty.child(named: "Buckets")?.children.count, 0)
    }

    // MARK: Other responses

    func testLocationConstraint() {
        XCTAssertEqual(S3XML.locationConstraint(region: "us-east-1"), header + #"<LocationConstraint xmlns="\#(namespace)"/>"#)
        XCTAssertEqual(
            S3XML.locationConstraint(region: "eu-west-1"),
            header + #"<LocationConstraint xmlns="\#(namespace)">eu-west-1</LocationConstraint>"#
        )
    }

    func testCopyResults() {
        XCTAssertEqual(
            S3XML.copyObjectResult(etag: "\"e1\"", lastModifiedMillis: lastModified),
            header + #"<CopyObjectResult xmlns="\#(namespace)"><LastModified>2026-11-29T08:00:00.000Z</LastModified>"#
                + "<ETag>&quot;e1&quot;</ETag></CopyObjectResult>"
        )
        XCTAssertEqual(
            S3XML.copyPartResult(etag: "\"e2\"", lastModifiedMillis: 0),
            header + #"<CopyPartResult xmlns="\#(namespace)"><LastModified>1970-01-01T00:00:00.000Z</LastModified>"#
                + "<ETag>&quot;e2&quot;</ETag></CopyPartResult>"
        )
    }

    func testMultipartUploadResults() throws {
        XCTAssertEqual(
            S3XML.initiateMultipartUploadResult(bucket: "b", key: "k<1>", uploadID: "u-1"),
            header + #"<InitiateMultipartUploadResult xmlns="\#(namespace)"><Bucket>b</Bucket><Key>k&lt;1&gt;</Key>"#
                + "<UploadId>u-1</UploadId></InitiateMultipartUploadResult>"
        )
        XCTAssertEqual(
            S3XML.completeMultipartUploadResult(location: "http://h:1/b/k", bucket: "b", key: "k", etag: "\"abc-2\""),
            header + #"<CompleteMultipartUploadResult xmlns="\#(namespace)"><Location>http://h:1/b/k</Location>"#
                + "<Bucket>b</Bucket><Key>k</Key><ETag>&quot;abc-2&quot;</ETag></CompleteMultipartUploadResult>"
        )
    }

    func testListPartsResult() throws {
        let listing = PartListing(
            bucket: "b", key: "k", uploadID: "u", partNumberMarker: 1, nextPartNumberMarker: 3, maxParts: 2, isTruncated: true,
            parts: [
                PartSummary(partNumber: 2, etag: "\"p2\"", sizeBytes: 5_242_880, lastModifiedMillis: lastModified),
                PartSummary(partNumber: 3, etag: "\"p3\"", sizeBytes: 7, lastModifiedMillis: 0),
            ]
        )
        let root = try reparsed(S3XML.listPartsResult(listing), root: "ListPartsResult")
        XCTAssertEqual(root.child(named: "UploadId")?.text, "u")
        XCTAssertEqual(root.child(named: "PartNumberMarker")?.text, "1")
        XCTAssertEqual(root.child(named: "NextPartNumberMarker")?.text, "3")
        XCTAssertEqual(root.child(named: "MaxParts")?.text, "2")
        XCTAssertEqual(root.child(named: "IsTruncated")?.text, "true")
        let parts = root.children.filter { $0.name == "Part" }
        XCTAssertEqual(parts.compactMap { $0.child(named: "PartNumber")?.text }, ["2", "3"])
        XCTAssertEqual(parts.compactMap { $0.child(named: "ETag")?.text }, ["\"p2\"", "\"p3\""])
        XCTAssertEqual(parts.compactMap { $0.child(named: "Size")?.text }, ["5242880", "7"])
        XCTAssertEqual(parts.first?.child(named: "LastModified")?.text, "2026-11-29T08:00:00.000Z")
    }

    func testListMultipartUploadsResult() throws {
        let listing = UploadListing(
            bucket: "b", keyMarker: "a", uploadIDMarker: "u0", nextKeyMarker: "k2", nextUploadIDMarker: "u2", maxUploads: 2,
            isTruncated: true,
            uploads: [
                UploadSummary(key: "k1", uploadID: "u1", initiatedMillis: lastModified),
                UploadSummary(key: "k2", uploadID: "u2", initiatedMillis: 0),
            ]
        )
        let root = try reparsed(S3XML.listMultipartUploadsResult(listing), root: "ListMultipartUploadsResult")
        XCTAssertEqual(root.child(named: "Bucket")?.text, "b")
        XCTAssertEqual(root.child(named: "KeyMarker")?.text, "a")
        XCTAssertEqual(root.child(named: "UploadIdMarker")?.text, "u0")
        XCTAssertEqual(root.child(named: "NextKeyMarker")?.text, "k2")
        XCTAssertEqual(root.child(named: "NextUploadIdMarker")?.text, "u2")
        XCTAssertEqual(root.child(named: "MaxUploads")?.text, "2")
        XCTAssertEqual(root.child(named: "IsTruncated")?.text, "true")
        let uploads = root.children.filter { $0.name == "Upload" }
        XCTAssertEqual(uploads.compactMap { $0.child(named: "Key")?.text }, ["k1", "k2"])
        XCTAssertEqual(uploads.compactMap { $0.child(named: "UploadId")?.text }, ["u1", "u2"])
        XCTAssertEqual(uploads.compactMap { $0.child(named: "Initiated")?.text }, ["2026-11-29T08:00:00.000Z", "1970-01-01T00:00:00.000Z"])
    }

    func testDeleteResultListsDeletionsUnlessQuiet() throws {
        let outcomes: [DeleteOutcome] = [
            .deleted(key: "a&b"),
            .failed(key: "c", error: .accessDenied()),
            .deleted(key: "d"),
        ]
        let loud = try reparsed(S3XML.deleteResult(outcomes, quiet: false), root: "DeleteResult")
        XCTAssertEqual(loud.children.map(\.name), ["Deleted", "Error", "Deleted"])
        XCTAssertEqual(loud.children.compactMap { $0.child(named: "Key")?.text }, ["a&b", "c", "d"])
        let error = loud.child(named: "Error")
        XCTAssertEqual(error?.child(named: "Code")?.text, "AccessDenied")
        XCTAssertEqual(error?.child(named: "Message")?.text, "Access Denied")

        let quiet = S3XML.deleteResult(outcomes, quiet: true)
        XCTAssertEqual(
            quiet,
            header + #"<DeleteResult xmlns="\#(namespace)"><Error><Key>c</Key><Code>AccessDenied</Code>"#
                + "<Message>Access Denied</Message></Error></DeleteResult>"
        )
        XCTAssertEqual(S3XML.deleteResult([.deleted(key: "x")], quiet: true), header + #"<DeleteResult xmlns="\#(namespace)"></DeleteResult>"#)
    }
}

final class S3XMLParsingTests: XCTestCase {
    private func deleteRequest(_ xml: String) throws -> DeleteObjectsRequest {
        try S3XML.parseDeleteObjects(Data(xml.utf8))
    }

    private func completedParts(_ xml: String) throws -> [CompletedPart] {
        try S3XML.parseCompleteMultipartUpload(Data(xml.utf8))
    }

    // MARK: DeleteObjects

    func testDeleteObjectsWithNamespaceQuietAndVersions() throws {
        let request = try deleteRequest("""
            <?xml version="1.0" encoding="UTF-8"?>
            <Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
              <Quiet>true</Quiet>
              <Object><Key> spaced key </Key></Object>
              <Object><Key>a &amp; b &lt;c&gt; &quot;d&quot;</Key><VersionId>v1</VersionId></Object>
              <Object><Key><![CDATA[x<y]]></Key></Object>
            </Delete>
            """)
        XCTAssertTrue(request.quiet)
        XCTAssertEqual(request.objects, [
            ObjectToDelete(key: " spaced key "),
            ObjectToDelete(key: "a & b <c> \"d\"", versionID: "v1"),
            ObjectToDelete(key: "x<y"),
        ])
    }

    func testDeleteObjectsWithoutNamespaceOrWithAPrefix() throws {
        let plain = try deleteRequest("<Delete><Object><Key>k</Key></Object></Delete>")
        XCTAssertEqual(plain, DeleteObjectsRequest(quiet: false, objects: [ObjectToDelete(key: "k")]))

        let prefixed = try deleteRequest(
            #"<s3:Delete xmlns:s3="http://s3.amazonaws.com/doc/2006-03-01/"><s3:Quiet>False</s3:Quiet>"#
                + "<s3:Object><s3:Key>k/2</s3:Key></s3:Object></s3:Delete>"
        )
        XCTAssertEqual(prefixed, DeleteObjectsRequest(quiet: false, objects: [ObjectToDelete(key: "k/2")]))
    }

    func testDeleteObjectsAcceptsAThousandObjectsAndNoMore() throws {
        func body(_ count: Int) -> String {
            "<Delete>" + (0..<count).map { "<Object><Key>k\($0)</Key></Object>" }.joined() + "</Delete>"
        }
        XCTAssertEqual(try deleteRequest(body(1000)).objects.count, 1000)
        XCTAssertEqual(s3Error { _ = try self.deleteRequest(body(1001)) }?.code, "MalformedXML")
    }

    func testMalformedDeleteObjectsBodies() {
        let bodies = [
            "",
            "not xml",
            "<Delete><Object><Key>k</Key></Object>",
            "<Delete><Object><Key>k</Key></Object></Delete><Delete/>",
            "<Delete><Object><Key>k</Key></Object></Delet>",
            "<Remove><Object><Key>k</Key></Object></Remove>",
            "<Delete></Delete>",
            "<Delete><Quiet>true</Quiet></Delete>",
            "<Delete><Object><VersionId>1</VersionId></Object></Delete>",
            "<Delete><Quiet>maybe</Quiet><Object><Key>k</Key></Object></Delete>",
            "<Delete><Object><Key>a & b</Key></Object></Delete>",
            #"<!DOCTYPE Delete [<!ENTITY x "boom">]><Delete><Object><Key>&x;</Key></Object></Delete>"#,
        ]
        for body in bodies {
            let error = s3Error { _ = try self.deleteRequest(body) }
            XCTAssertEqual(error?.code, "MalformedXML", body)
            XCTAssertEqual(error?.httpStatus, 400, body)
        }
    }

    // MARK: CompleteMultipartUpload

    func testCompleteMultipartUploadNormalisesETagsAndIgnoresChecksums() throws {
        let parts = try completedParts("""
            <CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
              <Part><PartNumber>1</PartNumber><ETag>"aaa"</ETag><ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part>
              <Part><ETag>&quot;bbb&quot;</ETag><PartNumber> 2 </PartNumber></Part>
              <Part><PartNumber>5</PartNumber><ETag>ccc</ETag><ChecksumSHA256>x</ChecksumSHA256></Part>
            </CompleteMultipartUpload>
            """)
        XCTAssertEqual(parts, [
            CompletedPart(partNumber: 1, etag: "\"aaa\""),
            CompletedPart(partNumber: 2, etag: "\"bbb\""),
            CompletedPart(partNumber: 5, etag: "\"ccc\""),
        ])
    }

    func testCompleteMultipartUploadRefusals() {
        func part(_ number: String, _ etag: String = "\"e\"") -> String {
            "<Part><PartNumber>\(number)</PartNumber><ETag>\(etag)</ETag></Part>"
        }
        func body(_ parts: String...) -> String {
            "<CompleteMultipartUpload>" + parts.joined() + "</CompleteMultipartUpload>"
        }
        let cases: [(String, String)] = [
            (body(part("2"), part("1")), "InvalidPartOrder"),
            (body(part("1"), part("1")), "InvalidPartOrder"),
            (body(part("x")), "MalformedXML"),
            (body(part("")), "MalformedXML"),
            (body(part("0")), "InvalidArgument"),
            (body(part("10001")), "InvalidArgument"),
            (body(), "MalformedXML"),
            (body("<Part><PartNumber>1</PartNumber></Part>"), "MalformedXML"),
            (body("<Part><ETag>e</ETag></Part>"), "MalformedXML"),
            ("<CompleteMultipartUpload><Part>", "MalformedXML"),
            ("<Delete><Object><Key>k</Key></Object></Delete>", "MalformedXML"),
            ("", "MalformedXML"),
        ]
        for (xml, code) in cases {
            XCTAssertEqual(s3Error { _ = try self.completedParts(xml) }?.code, code, xml)
        }
        XCTAssertEqual(try completedParts(body(part("10000"))).map(\.partNumber), [10000])
    }

    // MARK: CreateBucketConfiguration

    func testCreateBucketConfiguration() throws {
        XCTAssertNil(try S3XML.parseCreateBucketConfiguration(Data()))
        XCTAssertNil(try S3XML.parseCreateBucketConfiguration(Data(" \r\n\t".utf8)))
        XCTAssertEqual(
            try S3XML.parseCreateBucketConfiguration(Data("""
                <CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
                  <LocationConstraint> eu-west-1 </LocationConstraint>
                </CreateBucketConfiguration>
                """.utf8)),
            "eu-west-1"
        )
        XCTAssertNil(try S3XML.parseCreateBucketConfiguration(Data("<CreateBucketConfiguration><LocationConstraint/></CreateBucketConfiguration>".utf8)))
        XCTAssertNil(try S3XML.parseCreateBucketConfiguration(Data("<CreateBucketConfiguration/>".utf8)))
        for body in ["<Bucket><LocationConstraint>x</LocationConstraint></Bucket>", "<CreateBucketConfiguration>", "us-east-1"] {
            XCTAssertEqual(s3Error { _ = try S3XML.parseCreateBucketConfiguration(Data(body.utf8)) }?.code, "MalformedXML", body)
        }
    }
}

final class S3ErrorTests: XCTestCase {
    func testErrorDocument() {
        XCTAssertEqual(
            S3Error.noSuchKey(resource: "/b/k&1").xml(requestID: "req-1"),
            header + "<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message>"
                + "<Resource>/b/k&amp;1</Resource><RequestId>req-1</RequestId></Error>"
        )
        XCTAssertEqual(
            S3Error.invalidRequest("bad <thing>").xml(requestID: "r"),
            header + "<Error><Code>InvalidRequest</Code><Message>bad &lt;thing&gt;</Message><RequestId>r</RequestId></Error>"
        )
    }

    func testCodesAndStatuses() {
        let cases: [(S3Error, String, Int)] = [
            (.noSuchBucket(), "NoSuchBucket", 404),
            (.noSuchKey(), "NoSuchKey", 404),
            (.bucketNotEmpty(), "BucketNotEmpty", 409),
            (.bucketAlreadyOwnedByYou(), "BucketAlreadyOwnedByYou", 409),
            (.invalidBucketName(), "InvalidBucketName", 400),
            (.keyTooLong(), "KeyTooLongError", 400),
            (.invalidArgument("x"), "InvalidArgument", 400),
            (.invalidRange(), "InvalidRange", 416),
            (.malformedXML(), "MalformedXML", 400),
            (.invalidPart(), "InvalidPart", 400),
            (.invalidPartOrder(), "InvalidPartOrder", 400),
            (.noSuchUpload(), "NoSuchUpload", 404),
            (.entityTooSmall(), "EntityTooSmall", 400),
            (.signatureDoesNotMatch(), "SignatureDoesNotMatch", 403),
            (.invalidAccessKeyId(), "InvalidAccessKeyId", 403),
            (.accessDenied(), "AccessDenied", 403),
            (.requestTimeTooSkewed(), "RequestTimeTooSkewed", 403),
            (.authorizationHeaderMalformed("x"), "AuthorizationHeaderMalformed", 400),
            (.missingContentLength(), "MissingContentLength", 411),
            (.badDigest(), "BadDigest", 400),
            (.invalidDigest(), "InvalidDigest", 400),
            (.incompleteBody(), "IncompleteBody", 400),
            (.notImplemented(), "NotImplemented", 501),
            (.methodNotAllowed(), "MethodNotAllowed", 405),
            (.internalError(), "InternalError", 500),
            (.invalidRequest("x"), "InvalidRequest", 400),
            (.preconditionFailed(), "PreconditionFailed", 412),
            (.contentSHA256Mismatch(), "XAmzContentSHA256Mismatch", 400),
        ]
        for (error, code, status) in cases {
            XCTAssertEqual(error.code, code)
            XCTAssertEqual(error.httpStatus, status, code)
            XCTAssertFalse(error.message.isEmpty, code)
            XCTAssertNil(error.resource, code)
        }
    }
}

final class S3NamingTests: XCTestCase {
    func testValidBucketNames() {
        for name in ["abc", "my-bucket.2026", "1bucket", "a.b-c", String(repeating: "a", count: 63), "192.168.5"] {
            XCTAssertNil(s3Error { try S3Naming.validateBucketName(name) }, name)
        }
    }

    func testInvalidBucketNamesSayWhy() {
        let cases: [(String, String)] = [
            ("ab", "3 to 63"),
            (String(repeating: "a", count: 64), "3 to 63"),
            ("My-Bucket", "lower-case"),
            ("bucket_1", "lower-case"),
            ("buc ket", "lower-case"),
            ("bück", "lower-case"),
            ("-abc", "start and end"),
            ("abc-", "start and end"),
            (".abc", "start and end"),
            ("abc.", "start and end"),
            ("a..b", "adjacent periods"),
            ("192.168.5.4", "IP address"),
            ("xn--abc", "'xn--'"),
            ("sthree-abc", "'sthree-'"),
            ("abc-s3alias", "'-s3alias'"),
            ("abc--ol-s3", "'--ol-s3'"),
        ]
        for (name, reason) in cases {
            let error = s3Error { try S3Naming.validateBucketName(name) }
            XCTAssertEqual(error?.code, "InvalidBucketName", name)
            XCTAssertEqual(error?.httpStatus, 400, name)
            XCTAssertEqual(error?.resource, name)
            XCTAssertTrue(error?.message.contains(reason) == true, "\(name): \(error?.message ?? "no error")")
        }
    }

    func testValidKeys() {
        let keys = [
            "a", "dir/file.txt", "a b+c%&<>'\"", "한글/파일.txt", ".hidden", "a/.b", "..a", "a/b..", "e\u{301}/x",
            String(repeating: "k", count: 1024), String(repeating: "한", count: 341) + "a",
        ]
        for key in keys {
            XCTAssertNil(s3Error { try S3Naming.validateObjectKey(key) }, key)
        }
    }

    func testInvalidKeysSayWhy() {
        let cases: [(String, String, String)] = [
            ("", "InvalidArgument", "empty"),
            (String(repeating: "k", count: 1025), "KeyTooLongError", "1025 bytes"),
            (String(repeating: "한", count: 342), "KeyTooLongError", "1026 bytes"),
            ("a//b", "InvalidArgument", "empty path segment"),
            ("/a", "InvalidArgument", "empty path segment"),
            ("a/", "InvalidArgument", "directory markers"),
            ("a/b/", "InvalidArgument", "directory markers"),
            (".", "InvalidArgument", "'..'"),
            ("./a", "InvalidArgument", "'.'"),
            ("a/./b", "InvalidArgument", "'.'"),
            ("a/../b", "InvalidArgument", "'..'"),
            ("..", "InvalidArgument", "'..'"),
            ("a\u{0}b", "InvalidArgument", "NUL"),
        ]
        for (key, code, reason) in cases {
            let error = s3Error { try S3Naming.validateObjectKey(key) }
            XCTAssertEqual(error?.code, code, key)
            XCTAssertEqual(error?.httpStatus, 400, key)
            XCTAssertTrue(error?.message.contains(reason) == true, "\(key): \(error?.message ?? "no error")")
        }
    }
}
