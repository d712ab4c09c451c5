import Foundation
import TYDFSCore
import XCTest
@testable import TYDFSS3

// Every vector is signed by AWS's documentation key pair at 2013-05-24T00:00:00Z.
//
// Where the vectors come from:
// - "AWS doc": the AWS S3 API reference, "Signature Calculations for the Authorization Header:
//   Transferring Payload in a Single Chunk" (GET Object, PUT Object, GET Bucket Lifecycle, Get Bucket
//   (List Objects)), "Authenticating Requests: Using Query Parameters" (presigned GET Object) and
//   "Signature Calculations for the Authorization Header: Transferring Payload in Multiple Chunks"
//   (the streaming seed signature). The signatures and intermediate hashes were confirmed against
//   several independent public implementations' tests of those examples, and recomputed in Python.
// - "botocore": botocore 1.43.11's real S3 client (`create_client('s3', endpoint_url=
//   'http://127.0.0.1:9000', region_name=..., config=Config(signature_version='s3v4',
//   s3={'addressing_style': 'path'}))`), with `botocore.auth.get_current_datetime` patched to return
//   2013-05-24T00:00:00 and a `before-send` hook capturing the request instead of sending it; the
//   path, query and headers below are the captured ones (botocore leaves `Host: 127.0.0.1:9000` to
//   the HTTP layer), and presigned URLs come from `generate_presigned_url`.
// - "Python reference": a 60-line hashlib/hmac implementation of the rules in SigV4.swift, which
//   reproduces every AWS doc and botocore vector above.

private let accessKey = "AKIAIOSFODNN7EXAMPLE"
private let secretKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
private let awsHost = "examplebucket.s3.amazonaws.com"
private let gatewayHost = "127.0.0.1:9000"
private let amzDate = "20130524T000000Z"
/// 2013-05-24T00:00:00Z in seconds since 1970.
private let signedAt: Int64 = 1_369_353_600
private let emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
/// SHA-256 of "hello", the body of the botocore PUTs.
private let helloSHA256 = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
private let presignedCredential = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z"

final class SigV4Tests: XCTestCase {
    // MARK: - Fixtures

    private func authorization(signedHeaders: String, signature: String, region: String = "us-east-1") -> String {
        "AWS4-HMAC-SHA256 Credential=\(accessKey)/20130524/\(region)/s3/aws4_request, SignedHeaders=\(signedHeaders), Signature=\(signature)"
    }

    private func verify(_ request: SigV4Request, now: Int64 = signedAt) -> Result<SigV4Verified, SigV4Failure> {
        SigV4.verify(request, now: now) { $0 == accessKey ? secretKey : nil }
    }

    /// AWS doc, "Example: GET Object": the first 10 bytes of test.txt.
    private var awsGetObject: SigV4Request {
        SigV4Request(method: "GET", rawPath: "/test.txt", headers: [
            ("Host", awsHost), ("Range", "bytes=0-9"), ("x-amz-content-sha256", emptySHA256), ("x-amz-date", amzDate),
            ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
                + "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
                + "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"),
        ])
    }

    /// AWS doc, "Example: Get Bucket (List Objects)".
    private var awsListObjects: SigV4Request {
        SigV4Request(method: "GET", rawPath: "/", rawQuery: "max-keys=2&prefix=J", headers: [
            ("Host", awsHost), ("x-amz-content-sha256", emptySHA256), ("x-amz-date", amzDate),
            ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
                + "SignedHeaders=host;x-amz-content-sha256;x-amz-date,"
                + "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"),
        ])
    }

    /// AWS doc, "Authenticating Requests: Using Query Parameters": test.txt presigned for 86400 s.
    private var awsPresignedGetObject: SigV4Request {
        SigV4Request(method: "GET", rawPath: "/test.txt",
                     rawQuery: presignedCredential + "&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
                         + "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
                     headers: [("Host", awsHost)])
    }

    private func replacingHeader(_ name: String, with value: String?, in request: SigV4Request) -> SigV4Request {
        var changed = request
        changed.headers.removeAll { $0.name.lowercased() == name.lowercased() }
        if let value { changed.headers.append((name: name, value: value)) }
        return changed
    }

    private func assertVerifies(
        _ request: SigV4Request, signature: String, payloadHash: String, presigned: Bool = false, region: String = "us-east-1",
        now: Int64 = signedAt, file: StaticString = #filePath, line: UInt = #line
    ) {
        switch verify(request, now: now) {
        case .success(let verified):
            XCTAssertEqual(verified, SigV4Verified(
                accessKeyID: accessKey, payloadHash: payloadHash, presigned: presigned, region: region, date: amzDate,
                seedSignature: signature, signingKey: SigV4.signingKey(secret: secretKey, date: "20130524", region: region, service: "s3")),
                file: file, line: line)
        case .failure(let failure):
            XCTFail("expected the request to verify, got \(failure): \(failure.message)", file: file, line: line)
        }
    }

    private func assertFails(
        _ request: SigV4Request, with expected: SigV4Failure, now: Int64 = signedAt, _ why: String,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertEqual(verify(request, now: now), .failure(expected), why, file: file, line: line)
    }

    private func assertMalformedAuthorization(_ request: SigV4Request, _ why: String, file: StaticString = #filePath, line: UInt = #line) {
        guard case .failure(.malformedAuthorization(let message)) = verify(request) else {
            return XCTFail("\(why): expected malformedAuthorization, got \(verify(request))", file: file, line: line)
        }
        XCTAssertFalse(message.isEmpty, why, file: file, line: line)
    }

    private func assertMalformedPresignedQuery(_ request: SigV4Request, _ why: String, file: StaticString = #filePath, line: UInt = #line) {
        guard case .failure(.malformedPresignedQuery(let message)) = verify(request) else {
            return XCTFail("\(why): expected malformedPresignedQuery, got \(verify(request))", file: file, line: line)
        }
        XCTAssertFalse(message.isEmpty, why, file: file, line: line)
    }

    // MARK: - AWS documentation examples

    func testAWSGetObjectExampleStepByStep() {
        let signedHeaders = ["host", "range", "x-amz-content-sha256", "x-amz-date"]
        let canonical = SigV4.canonicalRequest(awsGetObject, signedHeaders: signedHeaders, payloadHash: emptySHA256, presigned: false)
        XCTAssertEqual(canonical, """
            GET
            /test.txt

            host:examplebucket.s3.amazonaws.com
            range:bytes=0-9
            x-amz-content-sha256:\(emptySHA256)
            x-amz-date:20130524T000000Z

            host;range;x-amz-content-sha256;x-amz-date
            \(emptySHA256)
            """)
        let scope = SigV4.credentialScope(date: "20130524", region: "us-east-1", service: "s3")
        XCTAssertEqual(scope, "20130524/us-east-1/s3/aws4_request")
        let stringToSign = SigV4.stringToSign(date: amzDate, scope: scope, canonicalRequest: canonical)
        XCTAssertEqual(stringToSign, """
            AWS4-HMAC-SHA256
            20130524T000000Z
            20130524/us-east-1/s3/aws4_request
            7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972
            """)
        let key = SigV4.signingKey(secret: secretKey, date: "20130524", region: "us-east-1", service: "s3")
        // Python reference (hmac chain over "AWS4" + secret).
        XCTAssertEqual(Hex.encode(key), "dbb893acc010964918f1fd433add87c70e8b0db6be30c1fbeafefa5ec6ba8378")
        XCTAssertEqual(SigV4.signature(signingKey: key, stringToSign: stringToSign),
                       "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")

        assertVerifies(awsGetObject, signature: "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41", payloadHash: emptySHA256)
        if case .success(let verified) = verify(awsGetObject) {
            XCTAssertEqual(verified.scope, "20130524/us-east-1/s3/aws4_request")
        }
    }

    func testAWSPutObjectExampleEncodesTheDollarAndPrefersXAmzDateToDate() {
        // AWS doc, "Example: PUT Object": body "Welcome to Amazon S3.", both Date and x-amz-date signed.
        let bodySHA256 = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
        let signature = "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
        let signedHeaders = "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class"
        for rawPath in ["/test$file.text", "/test%24file.text"] {
            let request = SigV4Request(method: "PUT", rawPath: rawPath, headers: [
                ("Host", awsHost), ("Date", "Fri, 24 May 2013 00:00:00 GMT"), ("x-amz-date", amzDate),
                ("x-amz-storage-class", "REDUCED_REDUNDANCY"), ("x-amz-content-sha256", bodySHA256),
                ("Authorization", authorization(signedHeaders: signedHeaders, signature: signature)),
            ])
            let canonical = SigV4.canonicalRequest(
                request, signedHeaders: signedHeaders.components(separatedBy: ";"), payloadHash: bodySHA256, presigned: false)
            XCTAssertTrue(canonical.hasPrefix("PUT\n/test%24file.text\n\ndate:Fri, 24 May 2013 00:00:00 GMT\n"), canonical)
            XCTAssertTrue(SigV4.stringToSign(date: amzDate, scope: "20130524/us-east-1/s3/aws4_request", canonicalRequest: canonical)
                .hasSuffix("\n9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d"))
            assertVerifies(request, signature: signature, payloadHash: bodySHA256)
        }
    }

    func testAWSGetBucketLifecycleExampleGivesABareParameterAnEmptyValue() {
        // AWS doc, "Example: GET Bucket Lifecycle".
        let signature = "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"
        let request = SigV4Request(method: "GET", rawPath: "/", rawQuery: "lifecycle", headers: [
            ("Host", awsHost), ("x-amz-content-sha256", emptySHA256), ("x-amz-date", amzDate),
            ("Authorization", authorization(signedHeaders: "host;x-amz-content-sha256;x-amz-date", signature: signature)),
        ])
        let canonical = SigV4.canonicalRequest(
            request, signedHeaders: ["host", "x-amz-content-sha256", "x-amz-date"], payloadHash: emptySHA256, presigned: false)
        XCTAssertTrue(canonical.hasPrefix("GET\n/\nlifecycle=\n"), canonical)
        XCTAssertTrue(SigV4.stringToSign(date: amzDate, scope: "20130524/us-east-1/s3/aws4_request", canonicalRequest: canonical)
            .hasSuffix("\n9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca"))
        assertVerifies(request, signature: signature, payloadHash: emptySHA256)
    }

    func testAWSListObjectsExampleSortsTheQueryWhateverItsOrderOrEscaping() {
        let signature = "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
        for rawQuery in ["max-keys=2&prefix=J", "prefix=J&max-keys=2", "prefix=%4A&max-keys=2"] {
            var request = awsListObjects
            request.rawQuery = rawQuery
            assertVerifies(request, signature: signature, payloadHash: emptySHA256)
        }
    }

    func testAWSPresignedGetObjectExample() {
        let canonical = SigV4.canonicalRequest(awsPresignedGetObject, signedHeaders: ["host"], payloadHash: SigV4.unsignedPayload, presigned: true)
        XCTAssertEqual(canonical, """
            GET
            /test.txt
            X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host
            host:examplebucket.s3.amazonaws.com

            host
            UNSIGNED-PAYLOAD
            """)
        XCTAssertTrue(SigV4.stringToSign(date: amzDate, scope: "20130524/us-east-1/s3/aws4_request", canonicalRequest: canonical)
            .hasSuffix("\n3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf58ad04"))
        assertVerifies(awsPresignedGetObject, signature: "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
                       payloadHash: SigV4.unsignedPayload, presigned: true, now: signedAt + 60)
    }

    func testAWSStreamingUploadExampleGivesTheSeedSignatureAndSigningKey() {
        // AWS doc, "Transferring Payload in Multiple Chunks": the seed request of a 66560-byte upload.
        let seed = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
        let request = SigV4Request(method: "PUT", rawPath: "/examplebucket/chunkObject.txt", headers: [
            ("Host", "s3.amazonaws.com"), ("x-amz-date", amzDate), ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
                + "SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,"
                + "Signature=\(seed)"),
            ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"), ("Content-Encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", "66560"), ("Content-Length", "66824"),
        ])
        assertVerifies(request, signature: seed, payloadHash: SigV4.streamingSignedPayload)
    }

    // MARK: - botocore vectors (path-style, http://127.0.0.1:9000)

    /// A request botocore signed in its Authorization header verifies, and no longer does once its path changes.
    private func assertBotocoreVector(
        _ request: SigV4Request, signedHeaders: String, signature: String, payloadHash: String,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        var signed = request
        signed.headers.append((name: "Authorization", value: authorization(signedHeaders: signedHeaders, signature: signature)))
        assertVerifies(signed, signature: signature, payloadHash: payloadHash, file: file, line: line)
        signed.rawPath += "x"
        assertFails(signed, with: .signatureMismatch, "the path changed", file: file, line: line)
    }

    /// A URL botocore presigned verifies at `now`, and no longer does once a parameter is added.
    private func assertBotocorePresignedVector(
        _ request: SigV4Request, signature: String, region: String = "us-east-1", now: Int64,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        assertVerifies(request, signature: signature, payloadHash: SigV4.unsignedPayload, presigned: true, region: region, now: now,
                       file: file, line: line)
        var tampered = request
        tampered.rawQuery += "&extra=1"
        assertFails(tampered, with: .signatureMismatch, now: now, "a parameter added", file: file, line: line)
    }

    func testBotocoreKeyWithUnicodeSpacePlusEqualsAmpersandTilde() {
        // get_object(Bucket='bucket', Key='dir/ünï cödé+x=1&y~.txt')
        let signature = "2ba56c808bf60773937c5fd75b90d78b4861fe65de86c9a5ba1aa563918c2db7"
        assertBotocoreVector(
            SigV4Request(method: "GET", rawPath: "/bucket/dir/%C3%BCn%C3%AF%20c%C3%B6d%C3%A9%2Bx%3D1%26y~.txt", headers: [
                ("Host", gatewayHost), ("User-Agent", "Botocore/1.43.11"), ("X-Amz-Date", amzDate), ("X-Amz-Content-SHA256", emptySHA256),
            ]),
            signedHeaders: "host;x-amz-content-sha256;x-amz-date", signature: signature, payloadHash: emptySHA256)
        // The same key escaped differently on the wire (raw UTF-8, %2b, literal = and &, %7E) is the same
        // canonical URI, so botocore's signature still holds.
        assertBotocoreVector(
            SigV4Request(method: "GET", rawPath: "/bucket/dir/ünï%20cödé%2bx=1&y%7E.txt", headers: [
                ("Host", gatewayHost), ("X-Amz-Date", amzDate), ("X-Amz-Content-SHA256", emptySHA256),
            ]),
            signedHeaders: "host;x-amz-content-sha256;x-amz-date", signature: signature, payloadHash: emptySHA256)
    }

    func testBotocorePutWithASignedBodyHash() {
        // put_object(Bucket='bucket', Key='a b/c+d=e&f~g', Body=b'hello')
        assertBotocoreVector(
            SigV4Request(method: "PUT", rawPath: "/bucket/a%20b/c%2Bd%3De%26f~g", headers: [
                ("Host", gatewayHost), ("Expect", "100-continue"), ("X-Amz-Date", amzDate), ("X-Amz-Content-SHA256", helloSHA256),
                ("Content-Length", "5"),
            ]),
            signedHeaders: "host;x-amz-content-sha256;x-amz-date",
            signature: "5ee01792cd77b46cabe6ea99d901ca845e257c805d62f209494d670d43e96478", payloadHash: helloSHA256)
    }

    func testBotocoreListObjectsV2() {
        // list_objects_v2(Bucket='bucket', Prefix='a b', Delimiter='/', EncodingType='url', ContinuationToken='1/abc+def==')
        assertBotocoreVector(
            SigV4Request(method: "GET", rawPath: "/bucket",
                         rawQuery: "list-type=2&prefix=a%20b&delimiter=%2F&encoding-type=url&continuation-token=1%2Fabc%2Bdef%3D%3D",
                         headers: [("Host", gatewayHost), ("X-Amz-Date", amzDate), ("X-Amz-Content-SHA256", emptySHA256)]),
            signedHeaders: "host;x-amz-content-sha256;x-amz-date",
            signature: "c6b7c788271b4888c7bf4f0cfe3b5a440ffbdb173f7f8a6f71a989cf34c7b468", payloadHash: emptySHA256)
    }

    func testBotocoreMetadataValueWithRunsOfSpaces() {
        // put_object(Bucket='bucket', Key='notes.txt', Body=b'hello', ContentType='text/plain', Metadata={'note': '  a   b  c '})
        assertBotocoreVector(
            SigV4Request(method: "PUT", rawPath: "/bucket/notes.txt", headers: [
                ("Host", gatewayHost), ("Content-Type", "text/plain"), ("x-amz-meta-note", "  a   b  c "), ("Expect", "100-continue"),
                ("X-Amz-Date", amzDate), ("X-Amz-Content-SHA256", helloSHA256), ("Content-Length", "5"),
            ]),
            signedHeaders: "content-type;host;x-amz-content-sha256;x-amz-date;x-amz-meta-note",
            signature: "95b48691f4cbc4af9bac9d21518818b5f8e3e4cfd51896d8ecbac7c2f1dd9b88", payloadHash: helloSHA256)
    }

    func testBotocoreUnsignedPayload() {
        // put_object(Bucket='bucket', Key='big.bin', Body=b'hello') with Config(s3={'payload_signing_enabled': False})
        assertBotocoreVector(
            SigV4Request(method: "PUT", rawPath: "/bucket/big.bin", headers: [
                ("Host", gatewayHost), ("Expect", "100-continue"), ("X-Amz-Date", amzDate), ("X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD"),
                ("Content-Length", "5"),
            ]),
            signedHeaders: "host;x-amz-content-sha256;x-amz-date",
            signature: "54c7a743080e0dc3b8729fd6af5b627fd512ac72467d06a7590f0b2fce5454f4", payloadHash: SigV4.unsignedPayload)
    }

    func testBotocoreRequestDatedByTheDateHeaderAlone() {
        // head_object(Bucket='bucket', Key='k') with a Date header added in 'before-sign.s3': botocore then
        // rewrites Date (zone "-0000") and sends no X-Amz-Date.
        assertBotocoreVector(
            SigV4Request(method: "HEAD", rawPath: "/bucket/k", headers: [
                ("Host", gatewayHost), ("Date", "Fri, 24 May 2013 00:00:00 -0000"), ("X-Amz-Content-SHA256", emptySHA256),
            ]),
            signedHeaders: "date;host;x-amz-content-sha256",
            signature: "20e34a3cdbb6454d82ca5073b43f21d702b8a8d36f01125085dbb9e74f440a2e", payloadHash: emptySHA256)
    }

    func testBotocorePresignedGetOfATrickyKey() {
        // generate_presigned_url('get_object', Params={'Bucket': 'bucket', 'Key': 'dir/ünï cödé+x=1&y~.txt'}, ExpiresIn=3600)
        let signature = "994918ec07195fe21c9ed3849309a6910cebe28946ca501398a2ae8b12234140"
        let request = SigV4Request(
            method: "GET", rawPath: "/bucket/dir/%C3%BCn%C3%AF%20c%C3%B6d%C3%A9%2Bx%3D1%26y~.txt",
            rawQuery: presignedCredential + "&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=" + signature,
            headers: [("Host", gatewayHost)])
        assertBotocorePresignedVector(request, signature: signature, now: signedAt + 3600)
    }

    func testBotocorePresignedPutForAnotherRegionWithASignedContentType() {
        // With region_name='eu-west-1': generate_presigned_url('put_object', Params={'Bucket': 'bucket',
        // 'Key': 'up load.bin', 'ContentType': 'application/octet-stream'}, ExpiresIn=600). Content-Type is
        // signed, so the PUT must send it.
        let signature = "d0eec9fa80a1f66a84f1a61429ec3b941854b1ee4c8665b0ee9470c2eecf1e88"
        let query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Feu-west-1%2Fs3%2Faws4_request"
            + "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=600&X-Amz-SignedHeaders=content-type%3Bhost&X-Amz-Signature=" + signature
        let request = SigV4Request(method: "PUT", rawPath: "/bucket/up%20load.bin", rawQuery: query, headers: [
            ("Host", gatewayHost), ("Content-Type", "application/octet-stream"), ("Content-Length", "5"),
        ])
        assertBotocorePresignedVector(request, signature: signature, region: "eu-west-1", now: signedAt)
        assertMalformedPresignedQuery(replacingHeader("Content-Type", with: nil, in: request), "the signed Content-Type not sent")
    }

    func testBotocorePresignedListObjectsV2ValidForAWeek() {
        // generate_presigned_url('list_objects_v2', Params={'Bucket': 'bucket', 'Prefix': 'a b', 'Delimiter': '/'}, ExpiresIn=604800)
        let signature = "8eea998c905d8cabf3a8a6fcf313ef259f681f61ce7cdee137db9acdfbe16510"
        let request = SigV4Request(
            method: "GET", rawPath: "/bucket",
            rawQuery: "list-type=2&prefix=a%20b&delimiter=%2F&encoding-type=url&" + presignedCredential
                + "&X-Amz-Expires=604800&X-Amz-SignedHeaders=host&X-Amz-Signature=" + signature,
            headers: [("Host", gatewayHost)])
        assertBotocorePresignedVector(request, signature: signature, now: signedAt + 604_800)
        assertFails(request, with: .expired, now: signedAt + 604_801, "a week and a second later")
    }

    func testBuildingBlocksSignWhatVerifyAccepts() {
        // Signed here with the building blocks, as our own clients will; the signature was also computed
        // by the Python reference. A repeated header is signed as its values joined by ','.
        let date = "20260102T030405Z"
        let now: Int64 = 1_767_323_045
        let signedHeaders = ["host", "x-amz-content-sha256", "x-amz-date", "x-amz-meta-tag"]
        var request = SigV4Request(method: "PUT", rawPath: "/bucket/photos/2026/01/IMG%200001.jpg", headers: [
            ("Host", "s3.example.test"), ("x-amz-date", date), ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
            ("X-Amz-Meta-Tag", "a"), ("x-amz-meta-tag", "  b   c "),
        ])
        let canonical = SigV4.canonicalRequest(request, signedHeaders: signedHeaders, payloadHash: "UNSIGNED-PAYLOAD", presigned: false)
        XCTAssertTrue(canonical.contains("\nx-amz-meta-tag:a,b c\n"), canonical)
        let scope = SigV4.credentialScope(date: "20260102", region: "eu-central-1", service: "s3")
        let key = SigV4.signingKey(secret: secretKey, date: "20260102", region: "eu-central-1", service: "s3")
        let signature = SigV4.signature(signingKey: key, stringToSign: SigV4.stringToSign(date: date, scope: scope, canonicalRequest: canonical))
        XCTAssertEqual(signature, "7d6d546ea703790c16ade5e41aa5a9f0e3b893fd3d510a1defed77eaca898246")
        request.headers.append((name: "Authorization", value: "AWS4-HMAC-SHA256 Credential=\(accessKey)/\(scope), "
            + "SignedHeaders=\(signedHeaders.joined(separator: ";")), Signature=\(signature)"))
        XCTAssertEqual(verify(request, now: now), .success(SigV4Verified(
            accessKeyID: accessKey, payloadHash: "UNSIGNED-PAYLOAD", presigned: false, region: "eu-central-1", date: date,
            seedSignature: signature, signingKey: key)))
    }

    // MARK: - Refusals

    func testAWrongSecretIsASignatureMismatch() {
        XCTAssertEqual(SigV4.verify(awsGetObject, now: signedAt) { _ in "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEZ" }, .failure(.signatureMismatch))
        XCTAssertEqual(SigV4.verify(awsPresignedGetObject, now: signedAt) { _ in "not the secret" }, .failure(.signatureMismatch))
    }

    func testAnyChangeToWhatIsSignedIsASignatureMismatch() {
        var path = awsGetObject
        path.rawPath = "/test.txu"
        assertFails(path, with: .signatureMismatch, "path")
        var method = awsGetObject
        method.method = "DELETE"
        assertFails(method, with: .signatureMismatch, "method")
        var query = awsListObjects
        query.rawQuery = "max-keys=3&prefix=J"
        assertFails(query, with: .signatureMismatch, "query value")
        var addedParameter = awsGetObject
        addedParameter.rawQuery = "versionId=1"
        assertFails(addedParameter, with: .signatureMismatch, "query parameter added")
        assertFails(replacingHeader("Range", with: "bytes=0-10", in: awsGetObject), with: .signatureMismatch, "signed header")
        assertFails(replacingHeader("x-amz-content-sha256", with: helloSHA256, in: awsGetObject), with: .signatureMismatch, "payload hash")
        assertFails(replacingHeader("Host", with: "otherbucket.s3.amazonaws.com", in: awsGetObject), with: .signatureMismatch, "host")
        var expires = awsPresignedGetObject
        expires.rawQuery = expires.rawQuery.replacingOccurrences(of: "X-Amz-Expires=86400", with: "X-Amz-Expires=86401")
        assertFails(expires, with: .signatureMismatch, "presigned expiry lengthened")
        var presignedPath = awsPresignedGetObject
        presignedPath.rawPath = "/secret.txt"
        assertFails(presignedPath, with: .signatureMismatch, "presigned URL used for another key")
        var presignedMethod = awsPresignedGetObject
        presignedMethod.method = "PUT"
        assertFails(presignedMethod, with: .signatureMismatch, "presigned GET used to PUT")
    }

    func testUnsignedHeadersAndHeaderNameCaseDoNotMatter() {
        var request = awsGetObject
        request.headers = request.headers.map { (name: $0.name.uppercased(), value: $0.value) }
        request.headers.append((name: "User-Agent", value: "curl/8.0"))
        request.headers.append((name: "X-Forwarded-For", value: "10.0.0.1"))
        assertVerifies(replacingHeader("range", with: "  bytes=0-9 ", in: request),
                       signature: "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41", payloadHash: emptySHA256)
    }

    func testAHeaderSignedRequestMoreThan15MinutesFromTheClockIsTooSkewed() {
        let signature = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        assertVerifies(awsGetObject, signature: signature, payloadHash: emptySHA256, now: signedAt + 900)
        assertVerifies(awsGetObject, signature: signature, payloadHash: emptySHA256, now: signedAt - 900)
        assertFails(awsGetObject, with: .requestTimeTooSkewed, now: signedAt + 901, "15 min 1 s old: a replay")
        assertFails(awsGetObject, with: .requestTimeTooSkewed, now: signedAt - 901, "15 min 1 s in the future")
    }

    func testAPresignedURLExpiresAfterXAmzExpires() {
        let signature = "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
        assertVerifies(awsPresignedGetObject, signature: signature, payloadHash: SigV4.unsignedPayload, presigned: true, now: signedAt + 86_400)
        assertFails(awsPresignedGetObject, with: .expired, now: signedAt + 86_401, "one second past X-Amz-Expires")
        assertVerifies(awsPresignedGetObject, signature: signature, payloadHash: SigV4.unsignedPayload, presigned: true, now: signedAt - 900)
        assertFails(awsPresignedGetObject, with: .requestTimeTooSkewed, now: signedAt - 901, "dated more than 15 minutes ahead")
    }

    func testAnUnknownAccessKeyIsReportedByName() {
        let request = replacingHeader("Authorization", with: "AWS4-HMAC-SHA256 Credential=AKIDUNKNOWN/20130524/us-east-1/s3/aws4_request, "
            + "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
            in: awsGetObject)
        assertFails(request, with: .unknownAccessKey("AKIDUNKNOWN"), "unknown key")
        var presigned = awsPresignedGetObject
        presigned.rawQuery = presigned.rawQuery.replacingOccurrences(of: "AKIAIOSFODNN7EXAMPLE", with: "AKIDUNKNOWN")
        assertFails(presigned, with: .unknownAccessKey("AKIDUNKNOWN"), "unknown key, presigned")
    }

    func testAnUnsignedRequestIsMissingAuthentication() {
        let anonymous = SigV4Request(method: "GET", rawPath: "/bucket/key", rawQuery: "versionId=3&X-Amz-Date=20130524T000000Z",
                                     headers: [("Host", gatewayHost), ("x-amz-date", amzDate)])
        assertFails(anonymous, with: .missingAuthentication, "no Authorization header, no X-Amz-Algorithm")
    }

    func testMalformedAuthorizationHeadersSayWhatIsWrong() {
        let scope = "Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"
        let signedHeaders = "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date"
        let signature = "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        let headers: [(what: String, value: String)] = [
            ("empty", ""),
            ("algorithm alone", "AWS4-HMAC-SHA256"),
            ("Signature Version 2", "AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg="),
            ("another algorithm", "AWS4-HMAC-SHA512 \(scope), \(signedHeaders), \(signature)"),
            ("no Signature", "AWS4-HMAC-SHA256 \(scope), \(signedHeaders)"),
            ("empty Signature", "AWS4-HMAC-SHA256 \(scope), \(signedHeaders), Signature="),
            ("no SignedHeaders", "AWS4-HMAC-SHA256 \(scope), \(signature)"),
            ("no Credential", "AWS4-HMAC-SHA256 \(signedHeaders), \(signature)"),
            ("repeated component", "AWS4-HMAC-SHA256 \(scope), \(signedHeaders), \(signature), \(signature)"),
            ("unknown component", "AWS4-HMAC-SHA256 \(scope), \(signedHeaders), \(signature), Extra=1"),
            ("component without =", "AWS4-HMAC-SHA256 \(scope), \(signedHeaders), \(signature), oops"),
            ("service not s3", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/ec2/aws4_request, \(signedHeaders), \(signature)"),
            ("bad terminator", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_req, \(signedHeaders), \(signature)"),
            ("scope date not the request's", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130523/us-east-1/s3/aws4_request, \(signedHeaders), \(signature)"),
            ("scope without region", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/s3/aws4_request, \(signedHeaders), \(signature)"),
            ("empty region", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524//s3/aws4_request, \(signedHeaders), \(signature)"),
            ("empty access key", "AWS4-HMAC-SHA256 Credential=/20130524/us-east-1/s3/aws4_request, \(signedHeaders), \(signature)"),
            ("host not signed", "AWS4-HMAC-SHA256 \(scope), SignedHeaders=range;x-amz-content-sha256;x-amz-date, \(signature)"),
            ("signed header absent", "AWS4-HMAC-SHA256 \(scope), SignedHeaders=host;if-match;range;x-amz-content-sha256;x-amz-date, \(signature)"),
            ("empty signed header name", "AWS4-HMAC-SHA256 \(scope), SignedHeaders=host;;range, \(signature)"),
        ]
        for header in headers {
            assertMalformedAuthorization(replacingHeader("Authorization", with: header.value, in: awsGetObject), header.what)
        }

        let payloadHashUnsigned = replacingHeader("Authorization", with: "AWS4-HMAC-SHA256 \(scope), SignedHeaders=host;range;x-amz-date, \(signature)",
                                                  in: awsGetObject)
        assertMalformedAuthorization(replacingHeader("x-amz-content-sha256", with: nil, in: payloadHashUnsigned), "no x-amz-content-sha256")
        assertMalformedAuthorization(replacingHeader("x-amz-content-sha256", with: "abc", in: awsGetObject), "payload hash not a SHA-256")
        assertMalformedAuthorization(replacingHeader("x-amz-content-sha256", with: emptySHA256.uppercased(), in: awsGetObject),
                                     "payload hash in upper case")
        assertMalformedAuthorization(replacingHeader("x-amz-date", with: "2013-05-24T00:00:00Z", in: awsGetObject), "extended ISO 8601 date")
        assertMalformedAuthorization(replacingHeader("x-amz-date", with: "20130532T000000Z", in: awsGetObject), "no 32 May")
        assertMalformedAuthorization(replacingHeader("x-amz-date", with: nil, in: awsGetObject), "no date at all")
        var twoDates = awsGetObject
        twoDates.headers.append((name: "X-Amz-Date", value: amzDate))
        assertMalformedAuthorization(twoDates, "two x-amz-date headers")
        var twoAuthorizations = awsGetObject
        let authorizationHeader = awsGetObject.headers[4]
        twoAuthorizations.headers.append(authorizationHeader)
        assertMalformedAuthorization(twoAuthorizations, "two Authorization headers")
        var bothStyles = awsGetObject
        bothStyles.rawQuery = presignedCredential
        assertMalformedAuthorization(bothStyles, "Authorization header and X-Amz-Algorithm together")
    }

    func testMalformedPresignedQueriesSayWhatIsWrong() {
        let query = awsPresignedGetObject.rawQuery
        func replaced(_ target: String, by replacement: String) -> String {
            query.replacingOccurrences(of: target, with: replacement)
        }
        let variants: [(what: String, query: String)] = [
            ("no X-Amz-Credential", replaced("&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request", by: "")),
            ("no X-Amz-Signature", replaced("&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404", by: "")),
            ("no X-Amz-Expires", replaced("&X-Amz-Expires=86400", by: "")),
            ("another algorithm", replaced("X-Amz-Algorithm=AWS4-HMAC-SHA256", by: "X-Amz-Algorithm=AWS4-HMAC-SHA1")),
            ("expiry not a number", replaced("X-Amz-Expires=86400", by: "X-Amz-Expires=1day")),
            ("negative expiry", replaced("X-Amz-Expires=86400", by: "X-Amz-Expires=-1")),
            ("expiry beyond a week", replaced("X-Amz-Expires=86400", by: "X-Amz-Expires=604801")),
            ("bad date", replaced("X-Amz-Date=20130524T000000Z", by: "X-Amz-Date=20130524")),
            ("repeated date", replaced("&X-Amz-Expires=", by: "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=")),
            ("host not signed", replaced("X-Amz-SignedHeaders=host", by: "X-Amz-SignedHeaders=range")),
            ("scope not s3", replaced("%2Fs3%2F", by: "%2Fsqs%2F")),
            ("payload hash not a SHA-256", replaced("&X-Amz-Expires=", by: "&X-Amz-Content-Sha256=nonsense&X-Amz-Expires=")),
        ]
        for variant in variants {
            XCTAssertNotEqual(variant.query, query, variant.what)
            var request = awsPresignedGetObject
            request.rawQuery = variant.query
            assertMalformedPresignedQuery(request, variant.what)
        }
    }

    func testFailuresMapToS3ErrorCodes() {
        let expected: [(SigV4Failure, String, Int)] = [
            (.missingAuthentication, "AccessDenied", 403),
            (.malformedAuthorization("x"), "AuthorizationHeaderMalformed", 400),
            (.malformedPresignedQuery("x"), "AuthorizationQueryParametersError", 400),
            (.unknownAccessKey("AKID"), "InvalidAccessKeyId", 403),
            (.signatureMismatch, "SignatureDoesNotMatch", 403),
            (.requestTimeTooSkewed, "RequestTimeTooSkewed", 403),
            (.expired, "AccessDenied", 403),
        ]
        for (failure, code, status) in expected {
            XCTAssertEqual(failure.s3Code, code)
            XCTAssertEqual(failure.httpStatus, status)
            XCTAssertFalse(failure.message.isEmpty)
        }
        XCTAssertEqual(SigV4Failure.malformedAuthorization("what is wrong").message, "what is wrong")
        XCTAssertTrue(SigV4Failure.unknownAccessKey("AKID").message.contains("AKID"))
        XCTAssertEqual(SigV4Failure.expired.message, "Request has expired.")
    }

    // MARK: - Canonical forms

    func testCanonicalURIDecodesThenEncodesEachByteOnceWithoutNormalizing() {
        let cases: [(raw: String, canonical: String)] = [
            ("", "/"),
            ("/", "/"),
            ("/test$file.text", "/test%24file.text"),
            ("/a%20b/c%2Bd", "/a%20b/c%2Bd"),
            ("/a+b", "/a%2Bb"),  // a plus sign, not a space
            ("/%7Euser/x%2ex", "/~user/x.x"),
            ("/caf%c3%a9", "/caf%C3%A9"),
            ("/café", "/caf%C3%A9"),
            ("/a//b/../c/./d", "/a//b/../c/./d"),
            ("/100%", "/100%25"),
            ("/%zz%4", "/%25zz%254"),
            ("/a%2Fb", "/a/b"),
            ("/!'()*:@,;=&", "/%21%27%28%29%2A%3A%40%2C%3B%3D%26"),
        ]
        for (raw, canonical) in cases {
            XCTAssertEqual(SigV4.canonicalURI(rawPath: raw), canonical, raw)
        }
    }

    func testCanonicalQuerySortsByteWiseAndEncodesSlashAndPlus() {
        let cases: [(raw: String, presigned: Bool, canonical: String)] = [
            ("", false, ""),
            ("lifecycle", false, "lifecycle="),
            ("b=2&a=x+y&a=%2B&c=&d", false, "a=%2B&a=x%2By&b=2&c=&d="),
            ("prefix=a/b&delimiter=/", false, "delimiter=%2F&prefix=a%2Fb"),
            ("a=1&B=2&_=3", false, "B=2&_=3&a=1"),
            ("a&&b=1&", false, "a=&b=1"),
            ("k=v=w", false, "k=v%3Dw"),
            ("prefix=%c3%bc%7e", false, "prefix=%C3%BC~"),
            ("X-Amz-Signature=abc&a=1", true, "a=1"),
            ("X-Amz-Signature=abc&a=1", false, "X-Amz-Signature=abc&a=1"),
        ]
        for (raw, presigned, canonical) in cases {
            XCTAssertEqual(SigV4.canonicalQuery(rawQuery: raw, presigned: presigned), canonical, raw)
        }
    }

    func testCanonicalHeadersTrimCollapseAndJoinRepeatedValues() {
        let headers: [(name: String, value: String)] = [
            ("Host", "h"), ("X-Amz-Meta-A", "  one   two "), ("x-amz-meta-a", "three"), ("X-Other", "\tx\t y "), ("X-Unsigned", "z"),
        ]
        XCTAssertEqual(SigV4.canonicalHeaders(headers, signedHeaders: ["host", "x-amz-meta-a", "x-other"]),
                       "host:h\nx-amz-meta-a:one two,three\nx-other:x y\n")
    }

    func testSigningTimesParse() {
        XCTAssertEqual(SigV4.parseISODate("20130524T000000Z"), SigV4.SigningTime(iso: "20130524T000000Z", seconds: 1_369_353_600))
        XCTAssertEqual(SigV4.parseISODate("20000229T000000Z")?.seconds, 951_782_400)
        XCTAssertEqual(SigV4.parseISODate("21000301T123456Z")?.seconds, 4_107_587_696)
        XCTAssertEqual(SigV4.parseISODate("19700101T000000Z")?.seconds, 0)
        for invalid in ["21000229T000000Z", "20130524T240000Z", "20130524T006000Z", "20131324T000000Z", "20130524T000000",
                        "2013-05-24T00:00:00Z", "20130524t000000z", "2013052AT000000Z", ""] {
            XCTAssertNil(SigV4.parseISODate(invalid), invalid)
        }
        for httpDate in ["Fri, 24 May 2013 00:00:00 GMT", "Fri, 24 May 2013 00:00:00 -0000", "Fri, 24 May 2013 00:00:00 UTC"] {
            XCTAssertEqual(SigV4.parseHTTPDate(httpDate), SigV4.SigningTime(iso: "20130524T000000Z", seconds: 1_369_353_600), httpDate)
        }
        XCTAssertEqual(SigV4.parseHTTPDate("Thu, 29 Feb 2024 23:59:59 GMT")?.iso, "20240229T235959Z")
        for invalid in ["Fri, 24 May 2013 00:00:00 +0200", "24 May 2013 00:00:00 GMT", "Fri, 24 Mai 2013 00:00:00 GMT",
                        "Fri, 31 Jun 2013 00:00:00 GMT", "Fri, 24 May 2013 0:00:00 GMT", "Friday, 24-May-13 00:00:00 GMT"] {
            XCTAssertNil(SigV4.parseHTTPDate(invalid), invalid)
        }
    }
}
