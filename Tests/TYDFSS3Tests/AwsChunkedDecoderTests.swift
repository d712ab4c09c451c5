import Foundation
import TYDFSCore
import XCTest
@testable import TYDFSS3

// Where the bodies come from:
// - "botocore": botocore 1.43.11's `botocore.httpchecksum.AwsChunkedWrapper` (what boto3 and the
//   aws cli send as STREAMING-UNSIGNED-PAYLOAD-TRAILER over HTTPS), as
//   `AwsChunkedWrapper(io.BytesIO(data), checksum_cls=Crc32Checksum,
//   checksum_name="x-amz-checksum-crc32").read()` (CrtCrc64NvmeChecksum with awscrt 0.38.1 for
//   crc64nvme). Reading it in 8 KiB pieces gives the same bytes.
// - "AWS doc": the S3 API reference's "Signature Calculations for the Authorization Header:
//   Transferring Payload in Multiple Chunks" (seed 4f232c43…) and "… Including Trailing Headers"
//   (seed 106e2a8a…, trailer x-amz-checksum-crc32c:sOO8/Q==): 64 KiB + 1 KiB of 'a'. Every
//   signature was recomputed with Python's hmac/hashlib from the documented key, and the trailer
//   format (`name:value\n` per trailer, hashed with SHA-256) matches the AWS SDK for .NET and
//   several public server implementations.
// - "Python signer": the same hmac/hashlib chain over a 1000-byte pattern in 300-byte chunks.

private let secretKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
private let amzDate = "20130524T000000Z"
private let scope = "20130524/us-east-1/s3/aws4_request"
private let signingKey = SigV4.signingKey(secret: secretKey, date: "20130524", region: "us-east-1", service: "s3")
private let documentedSeed = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
private let documentedTrailerSeed = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"

private func ascii(_ text: String) -> [UInt8] { Array(text.utf8) }

private func sha256Hex(_ bytes: [UInt8]) -> String {
    var state = S3ChecksumState(.sha256)
    state.update(bytes)
    return Hex.encode(state.finalizedDigest())
}

private func signedMode(seed: String, withTrailer: Bool) -> AwsChunkedDecoder.Mode {
    .signed(signingKey: signingKey, seedSignature: seed, date: amzDate, scope: scope, withTrailer: withTrailer)
}

private struct Decoded: Equatable {
    var payload: [UInt8]
    var trailers: [String: String]
}

/// Decodes `wire` fed in slices of `slice` bytes, then finishes.
private func decode(
    _ wire: [UInt8], mode: AwsChunkedDecoder.Mode = .unsignedWithTrailer, declared: [String] = [],
    decodedLength: Int64? = nil, slice: Int = Int.max
) -> Result<Decoded, S3Error> {
    var decoder = AwsChunkedDecoder(mode: mode, declaredTrailers: declared, decodedLength: decodedLength)
    var payload: [UInt8] = []
    do throws(S3Error) {
        var start = 0
        while start < wire.count {
            let end = start + max(1, min(slice, wire.count - start))
            let out = try decoder.feed(wire[start..<end])
            payload.append(contentsOf: out)
            start = end
        }
        let trailers = try decoder.finish()
        return .success(Decoded(payload: payload, trailers: trailers))
    } catch {
        return .failure(error)
    }
}

private extension Result where Success == Decoded, Failure == S3Error {
    var errorCode: String? {
        if case .failure(let error) = self { return error.code }
        return nil
    }

    var decoded: Decoded? {
        if case .success(let decoded) = self { return decoded }
        return nil
    }
}

// MARK: - Bodies

private let helloWorld = ascii("hello world")
/// botocore, crc32.
private let botocoreHelloWorld = ascii("b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n")
/// botocore, crc64nvme (CRT).
private let botocoreHelloWorldCRC64 = ascii("b\r\nhello world\r\n0\r\nx-amz-checksum-crc64nvme:jSnVw/bqjr4=\r\n\r\n")
/// botocore, crc32, empty body.
private let botocoreEmpty = ascii("0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n")

/// botocore over 1 MiB + 1000 bytes of the pattern: one 1 MiB chunk (its default), one of 1000.
private func botocoreLargeBody(_ payload: [UInt8]) -> [UInt8] {
    var wire = ascii("100000\r\n")
    wire += payload[..<1_048_576]
    wire += ascii("\r\n3e8\r\n")
    wire += payload[1_048_576...]
    wire += ascii("\r\n0\r\nx-amz-checksum-crc32:muXA4w==\r\n\r\n")
    return wire
}

private let documentedChunkSignatures = [
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
]
private let documentedTrailerChunkSignatures = [
    "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
    "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
    "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
]
private let documentedTrailerSignature = "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435"
private let documentedPayload = [UInt8](repeating: UInt8(ascii: "a"), count: 66_560)

/// The AWS doc's chunks (65,536 then 1,024 bytes of 'a', then the final one) with these signatures,
/// then `trailer` (the bytes after the final chunk's line; for no trailers, the empty line).
private func documentedBody(_ signatures: [String], trailer: String = "\r\n") -> [UInt8] {
    var wire = ascii("10000;chunk-signature=\(signatures[0])\r\n")
    wire += documentedPayload[..<65_536]
    wire += ascii("\r\n400;chunk-signature=\(signatures[1])\r\n")
    wire += documentedPayload[65_536...]
    wire += ascii("\r\n0;chunk-signature=\(signatures[2])\r\n")
    wire += ascii(trailer)
    return wire
}

private let documentedTrailer = "x-amz-checksum-crc32c:sOO8/Q==\r\nx-amz-trailer-signature:\(documentedTrailerSignature)\r\n\r\n"

/// Python signer: 1000 pattern bytes in chunks of 300, 300, 300 and 100, seed 106e2a8a…, crc32 trailer.
private let oddChunkSignatures = [
    "4ff165236a43e9a0ccaa4c724f1cd8f8a2236640c522637862e5a5f6580f2565",
    "5f8b7a3f64276c40bc345d16fa327cc9577753225f3b12065e86f5d989d8d757",
    "99d4f7f4d3d9f50c384771eed0ef535ebc67353faf7d138002a2798975d040c0",
    "68b7b015a05bf6721201c49dfd78f5cc92c20756fc3669ac84f266e38cbe8cf9",
    "ff451e5e46279da0b845687e4e5990101f583c1554daa1b8cb670e41db1faa90",
]
private let oddChunkTrailerSignature = "9978e257d7eed3d84c1851a0233255f353ef728a85b88ac227a2faae6fccb6d2"

private func oddChunkBody(_ payload: [UInt8]) -> [UInt8] {
    var wire: [UInt8] = []
    for (index, start) in [0, 300, 600, 900].enumerated() {
        let chunk = payload[start..<min(start + 300, payload.count)]
        wire += ascii(String(chunk.count, radix: 16) + ";chunk-signature=" + oddChunkSignatures[index] + "\r\n")
        wire += chunk
        wire += ascii("\r\n")
    }
    wire += ascii("0;chunk-signature=\(oddChunkSignatures[4])\r\n")
    wire += ascii("x-amz-checksum-crc32:iQIWHg==\r\nx-amz-trailer-signature:\(oddChunkTrailerSignature)\r\n\r\n")
    return wire
}

private let slices = [1, 2, 3, 7, 1000, Int.max]

final class AwsChunkedDecoderTests: XCTestCase {
    // MARK: - Unsigned (botocore)

    func testBotocoreHelloWorldInEverySlicing() {
        let expected = Decoded(payload: helloWorld, trailers: ["x-amz-checksum-crc32": "DUoRhQ=="])
        for slice in slices {
            XCTAssertEqual(decode(botocoreHelloWorld, declared: ["x-amz-checksum-crc32"], decodedLength: 11, slice: slice).decoded, expected, "slice \(slice)")
        }
        XCTAssertEqual(S3ChecksumState.base64(.crc32, of: helloWorld), "DUoRhQ==")
        // Cut in two at every byte.
        for cut in 0...botocoreHelloWorld.count {
            var decoder = AwsChunkedDecoder(mode: .unsignedWithTrailer, declaredTrailers: ["x-amz-checksum-crc32"])
            do {
                var payload = try decoder.feed(botocoreHelloWorld[..<cut])
                payload += try decoder.feed(botocoreHelloWorld[cut...])
                XCTAssertEqual(payload, helloWorld, "cut at \(cut)")
                let trailers = try decoder.finish()
                XCTAssertEqual(trailers, expected.trailers, "cut at \(cut)")
            } catch {
                XCTFail("cut at \(cut): \(error)")
            }
        }
    }

    func testBotocoreCRC64AndEmptyBodies() {
        for slice in slices {
            XCTAssertEqual(
                decode(botocoreHelloWorldCRC64, declared: ["x-amz-checksum-crc64nvme"], slice: slice).decoded,
                Decoded(payload: helloWorld, trailers: ["x-amz-checksum-crc64nvme": "jSnVw/bqjr4="]))
            XCTAssertEqual(
                decode(botocoreEmpty, declared: ["x-amz-checksum-crc32"], decodedLength: 0, slice: slice).decoded,
                Decoded(payload: [], trailers: ["x-amz-checksum-crc32": "AAAAAA=="]))
        }
        XCTAssertEqual(S3ChecksumState.base64(.crc64nvme, of: helloWorld), "jSnVw/bqjr4=")
        // No trailer at all: an unsigned aws-chunked body without x-amz-trailer.
        XCTAssertEqual(decode(ascii("b\r\nhello world\r\n0\r\n\r\n")).decoded, Decoded(payload: helloWorld, trailers: [:]))
    }

    func testBotocoreLargeBody() {
        let payload = patternPayload(1_049_576)
        let wire = botocoreLargeBody(payload)
        // The SHA-256 of botocore's own output for this payload: these are its bytes.
        XCTAssertEqual(sha256Hex(wire), "0c2aee88daafe1a37a5c90a3f5c56c9555da786b0a0a0b4c239e6f465d44e68c")
        XCTAssertEqual(wire.count, 1_049_629)
        for slice in [7, 1000, 4096, 65_536, Int.max] {
            let result = decode(wire, declared: ["x-amz-checksum-crc32"], decodedLength: 1_049_576, slice: slice)
            XCTAssertEqual(result.decoded?.trailers, ["x-amz-checksum-crc32": "muXA4w=="], "slice \(slice)")
            XCTAssertTrue(result.decoded?.payload == payload, "slice \(slice)")
        }
        XCTAssertEqual(S3ChecksumState.base64(.crc32, of: payload), "muXA4w==")
    }

    func testCallbackFeedHandsOutRunsWithoutCopying() throws {
        var decoder = AwsChunkedDecoder(mode: .unsignedWithTrailer, declaredTrailers: ["x-amz-checksum-crc32"])
        var payload: [UInt8] = []
        var runs = 0
        try botocoreHelloWorld.withUnsafeBytes { buffer in
            try decoder.feed(buffer) { run in
                runs += 1
                payload += run
            }
        }
        XCTAssertEqual(payload, helloWorld)
        XCTAssertEqual(runs, 1)
        XCTAssertTrue(decoder.isComplete)
        XCTAssertEqual(decoder.decodedByteCount, 11)
        let trailers = try decoder.finish()
        XCTAssertEqual(trailers, ["x-amz-checksum-crc32": "DUoRhQ=="])
    }

    func testLenientWhereClientsDiffer() {
        // Upper-case hex, unsigned chunk extensions, a trailer name in any case, spaces around
        // the ':' (S3 accepts them), a declared list given as one comma-separated header.
        let wire = ascii("B;foo=bar\r\nhello world\r\n0\r\nX-Amz-Checksum-CRC32 : DUoRhQ== \r\n\r\n")
        XCTAssertEqual(
            decode(wire, declared: ["X-Amz-Checksum-Crc32, x-amz-meta-unused"], slice: 1).errorCode,
            "MalformedTrailerError", "a declared trailer that does not come is refused")
        XCTAssertEqual(
            decode(wire, declared: ["X-Amz-Checksum-Crc32"], slice: 1).decoded,
            Decoded(payload: helloWorld, trailers: ["x-amz-checksum-crc32": "DUoRhQ=="]))
        // Leading zeros in a size.
        XCTAssertEqual(decode(ascii("000b\r\nhello world\r\n00\r\n\r\n")).decoded?.payload, helloWorld)
    }

    // MARK: - Signed (AWS doc and Python signer)

    func testChunkSignatureChainMatchesAWSDocumentation() {
        var previous = documentedSeed
        for (index, data) in [documentedPayload[..<65_536], documentedPayload[65_536...], []].enumerated() {
            previous = AwsChunkedDecoder.chunkSignature(
                signingKey: signingKey, date: amzDate, scope: scope, previousSignature: previous,
                chunkSHA256: sha256Hex(Array(data)))
            XCTAssertEqual(previous, documentedChunkSignatures[index])
        }
        XCTAssertEqual(
            AwsChunkedDecoder.trailerSignature(
                signingKey: signingKey, date: amzDate, scope: scope, previousSignature: documentedTrailerChunkSignatures[2],
                canonicalTrailers: AwsChunkedDecoder.canonicalTrailers([(name: "x-amz-checksum-crc32c", value: "sOO8/Q==")])),
            documentedTrailerSignature)
        XCTAssertEqual(sha256Hex(ascii("x-amz-checksum-crc32c:sOO8/Q==\n")),
                       "1e376db7e1a34a8ef1c4bcee131a2d60a1cb62503747488624e10995f448d774")
    }

    func testAWSDocumentedSignedBody() {
        let wire = documentedBody(documentedChunkSignatures)
        for slice in slices + [65_536, 65_600] {
            XCTAssertEqual(
                decode(wire, mode: signedMode(seed: documentedSeed, withTrailer: false), decodedLength: 66_560, slice: slice).decoded,
                Decoded(payload: documentedPayload, trailers: [:]), "slice \(slice)")
        }
    }

    func testAWSDocumentedSignedTrailerBody() {
        let wire = documentedBody(documentedTrailerChunkSignatures, trailer: documentedTrailer)
        for slice in slices {
            XCTAssertEqual(
                decode(wire, mode: signedMode(seed: documentedTrailerSeed, withTrailer: true),
                       declared: ["x-amz-checksum-crc32c"], decodedLength: 66_560, slice: slice).decoded,
                Decoded(payload: documentedPayload, trailers: ["x-amz-checksum-crc32c": "sOO8/Q=="]), "slice \(slice)")
        }
    }

    func testPythonSignedOddChunks() {
        let payload = patternPayload(1000)
        XCTAssertEqual(S3ChecksumState.base64(.crc32, of: payload), "iQIWHg==")
        let wire = oddChunkBody(payload)
        for slice in slices {
            XCTAssertEqual(
                decode(wire, mode: signedMode(seed: documentedTrailerSeed, withTrailer: true),
                       declared: ["x-amz-checksum-crc32"], decodedLength: 1000, slice: slice).decoded,
                Decoded(payload: payload, trailers: ["x-amz-checksum-crc32": "iQIWHg=="]), "slice \(slice)")
        }
    }

    func testModeFromVerifiedRequest() {
        var verified = SigV4Verified(
            accessKeyID: "AKIAIOSFODNN7EXAMPLE", payloadHash: SigV4.streamingSignedPayloadTrailer, presigned: false,
            region: "us-east-1", date: amzDate, seedSignature: documentedTrailerSeed, signingKey: signingKey)
        XCTAssertEqual(AwsChunkedDecoder.mode(for: verified), signedMode(seed: documentedTrailerSeed, withTrailer: true))
        verified.payloadHash = SigV4.streamingSignedPayload
        XCTAssertEqual(AwsChunkedDecoder.mode(for: verified), signedMode(seed: documentedTrailerSeed, withTrailer: false))
        verified.payloadHash = SigV4.streamingUnsignedPayloadTrailer
        XCTAssertEqual(AwsChunkedDecoder.mode(for: verified), .unsignedWithTrailer)
        verified.payloadHash = SigV4.unsignedPayload
        XCTAssertNil(AwsChunkedDecoder.mode(for: verified))
    }

    // MARK: - Signatures that do not match

    func testTamperedSignedBodiesAreRefused() {
        let mode = signedMode(seed: documentedSeed, withTrailer: false)
        var signatures = documentedChunkSignatures
        signatures[0] = "bd" + String(signatures[0].dropFirst(2))
        XCTAssertEqual(decode(documentedBody(signatures), mode: mode, slice: 1000).errorCode, "SignatureDoesNotMatch")
        signatures = documentedChunkSignatures
        signatures[2] = String(signatures[2].dropLast()) + "0"
        XCTAssertEqual(decode(documentedBody(signatures), mode: mode).errorCode, "SignatureDoesNotMatch", "final chunk")

        // A wrong seed (the request's signature) breaks the first chunk.
        XCTAssertEqual(
            decode(documentedBody(documentedChunkSignatures), mode: signedMode(seed: documentedTrailerSeed, withTrailer: false)).errorCode,
            "SignatureDoesNotMatch")

        // One altered data byte.
        var wire = documentedBody(documentedChunkSignatures)
        wire[wire.count - 200] = UInt8(ascii: "b")
        XCTAssertEqual(decode(wire, mode: mode, slice: 7).errorCode, "SignatureDoesNotMatch")

        // A chunk without its signature, or with a short one.
        XCTAssertEqual(decode(ascii("5\r\nhello\r\n0\r\n\r\n"), mode: mode).errorCode, "SignatureDoesNotMatch")
        XCTAssertEqual(decode(ascii("5;chunk-signature=abc\r\nhello\r\n"), mode: mode).errorCode, "SignatureDoesNotMatch")

        // Upper-case hex signatures are the same signature.
        XCTAssertEqual(
            decode(documentedBody(documentedChunkSignatures.map { $0.uppercased() }), mode: mode).decoded?.payload,
            documentedPayload)
    }

    func testTamperedTrailersAreRefused() {
        let mode = signedMode(seed: documentedTrailerSeed, withTrailer: true)
        let declared = ["x-amz-checksum-crc32c"]
        func body(_ trailer: String) -> [UInt8] { documentedBody(documentedTrailerChunkSignatures, trailer: trailer) }

        let alteredValue = documentedTrailer.replacingOccurrences(of: "sOO8/Q==", with: "AAAAAA==")
        XCTAssertEqual(decode(body(alteredValue), mode: mode, declared: declared).errorCode, "SignatureDoesNotMatch")
        let alteredSignature = documentedTrailer.replacingOccurrences(of: "d81f82fc", with: "d81f82fd")
        XCTAssertEqual(decode(body(alteredSignature), mode: mode, declared: declared).errorCode, "SignatureDoesNotMatch")
        let unsigned = "x-amz-checksum-crc32c:sOO8/Q==\r\n\r\n"
        XCTAssertEqual(decode(body(unsigned), mode: mode, declared: declared).errorCode, "SignatureDoesNotMatch")
        let signatureFirst = "x-amz-trailer-signature:\(documentedTrailerSignature)\r\nx-amz-checksum-crc32c:sOO8/Q==\r\n\r\n"
        XCTAssertEqual(decode(body(signatureFirst), mode: mode, declared: declared).errorCode, "MalformedTrailerError")
        // Trailers after a STREAMING-AWS4-HMAC-SHA256-PAYLOAD (no trailer) body.
        XCTAssertEqual(
            decode(documentedBody(documentedChunkSignatures, trailer: "x-amz-checksum-crc32c:sOO8/Q==\r\n\r\n"),
                   mode: signedMode(seed: documentedSeed, withTrailer: false), declared: declared).errorCode,
            "MalformedTrailerError")
    }

    func testFailureIsSticky() {
        var decoder = AwsChunkedDecoder(mode: .unsignedWithTrailer)
        XCTAssertThrowsError(try decoder.feed(ascii("zz\r\n")))
        XCTAssertThrowsError(try decoder.feed(ascii("5\r\nhello\r\n0\r\n\r\n")))
        XCTAssertThrowsError(try decoder.finish()) { error in
            XCTAssertEqual((error as? S3Error)?.code, "InvalidRequest")
        }
    }

    // MARK: - Malformed framing

    func testMalformedFramingIsRefused() {
        let cases: [(wire: String, why: String)] = [
            ("5\r\nhelloX\r\n0\r\n\r\n", "data longer than its size"),
            ("5\r\nhello\rX0\r\n\r\n", "CR without LF after data"),
            ("5\nhello\r\n0\r\n\r\n", "bare LF after the size"),
            ("5\r\nhello\r\n0\n\r\n", "bare LF after the final chunk"),
            ("5\r\nhello\r\n0\r\n\n", "bare LF ending the body"),
            ("5\r\r\nhello\r\n0\r\n\r\n", "stray CR in a line"),
            ("zz\r\nhello\r\n0\r\n\r\n", "non-hex size"),
            ("-5\r\nhello\r\n0\r\n\r\n", "signed size"),
            (" 5\r\nhello\r\n0\r\n\r\n", "space before the size"),
            ("0x5\r\nhello\r\n0\r\n\r\n", "0x prefix"),
            ("\r\nhello\r\n0\r\n\r\n", "empty size line"),
            (";a=b\r\nhello\r\n0\r\n\r\n", "extension without a size"),
            ("1000001\r\n", "chunk over 16 MiB"),
            ("ffffffffffffffffffffffff\r\n", "size that overflows"),
            ("5\r\nhello\r\n0\r\n\r\nX", "a byte after the end"),
            ("5\r\nhello\r\n0\r\n\r\n\r\n", "a CRLF after the end"),
        ]
        for (wire, why) in cases {
            for slice in [1, 3, Int.max] {
                XCTAssertEqual(decode(ascii(wire), slice: slice).errorCode, "InvalidRequest", "\(why), slice \(slice)")
            }
        }
        // A line that never ends is refused once it passes the limit, not buffered for ever.
        var decoder = AwsChunkedDecoder(mode: .unsignedWithTrailer)
        XCTAssertNoThrow(try decoder.feed([UInt8](repeating: UInt8(ascii: "0"), count: AwsChunkedDecoder.maximumLineLength)))
        XCTAssertThrowsError(try decoder.feed([UInt8](repeating: UInt8(ascii: "0"), count: 2)))
        let longTrailer = "0\r\nx-amz-checksum-crc32:" + String(repeating: "A", count: 5000) + "\r\n\r\n"
        XCTAssertEqual(decode(ascii(longTrailer), declared: ["x-amz-checksum-crc32"]).errorCode, "MalformedTrailerError")
    }

    func testMalformedTrailersAreRefused() {
        let declared = ["x-amz-checksum-crc32"]
        XCTAssertEqual(decode(botocoreHelloWorld).errorCode, "MalformedTrailerError", "undeclared trailer")
        XCTAssertEqual(decode(ascii("b\r\nhello world\r\n0\r\n\r\n"), declared: declared).errorCode, "MalformedTrailerError", "declared, missing")
        XCTAssertEqual(decode(ascii("0\r\nx-amz-checksum-crc32 AAAAAA==\r\n\r\n"), declared: declared).errorCode, "MalformedTrailerError", "no colon")
        XCTAssertEqual(decode(ascii("0\r\n:AAAAAA==\r\n\r\n"), declared: declared).errorCode, "MalformedTrailerError", "no name")
        XCTAssertEqual(
            decode(ascii("0\r\nx-amz-checksum-crc32:AAAAAA==\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n"), declared: declared).errorCode,
            "MalformedTrailerError", "twice")
        XCTAssertEqual(
            decode(ascii("0\r\nx-amz-checksum-crc32:AAAAAA==\r\nx-amz-trailer-signature:\(documentedTrailerSignature)\r\n\r\n"), declared: declared).errorCode,
            "MalformedTrailerError", "a trailer signature on an unsigned body")
        XCTAssertEqual(decode(ascii("0\r\nx-amz-checksum-crc32:AA\u{7F}A==\r\n\r\n"), declared: declared).errorCode, "MalformedTrailerError", "control byte")
    }

    /// A chunk that says it is longer than what follows: the body ends inside it.
    func testSizeLargerThanWhatFollows() {
        XCTAssertEqual(decode(ascii("10\r\nhello\r\n0\r\n\r\n")).errorCode, "IncompleteBody")
    }

    func testTruncatedBodiesAreIncomplete() {
        func checkTruncations(_ wire: [UInt8], mode: AwsChunkedDecoder.Mode, declared: [String], at cuts: [Int], _ label: String) {
            for cut in cuts {
                var decoder = AwsChunkedDecoder(mode: mode, declaredTrailers: declared)
                XCTAssertNoThrow(try decoder.feed(wire[..<cut]), "\(label) cut at \(cut)")
                XCTAssertFalse(decoder.isComplete)
                XCTAssertThrowsError(try decoder.finish(), "\(label) cut at \(cut)") { error in
                    XCTAssertEqual((error as? S3Error)?.code, "IncompleteBody", "\(label) cut at \(cut)")
                }
            }
        }
        checkTruncations(botocoreHelloWorld, mode: .unsignedWithTrailer, declared: ["x-amz-checksum-crc32"],
                         at: Array(0..<botocoreHelloWorld.count), "botocore")
        let signed = documentedBody(documentedTrailerChunkSignatures, trailer: documentedTrailer)
        let firstLine = 88 // "10000;chunk-signature=<64>\r\n"
        checkTruncations(signed, mode: signedMode(seed: documentedTrailerSeed, withTrailer: true), declared: ["x-amz-checksum-crc32c"],
                         at: [0, 1, 5, 6, 30, firstLine - 1, firstLine, firstLine + 1, firstLine + 65_536, firstLine + 65_537,
                              firstLine + 65_538, firstLine + 65_539, signed.count - 200, signed.count - 100, signed.count - 3,
                              signed.count - 2, signed.count - 1], "AWS doc")
    }

    func testDecodedLengthMustMatch() {
        let declared = ["x-amz-checksum-crc32"]
        XCTAssertNotNil(decode(botocoreHelloWorld, declared: declared, decodedLength: 11).decoded)
        XCTAssertEqual(decode(botocoreHelloWorld, declared: declared, decodedLength: 10).errorCode, "InvalidRequest", "longer than declared")
        XCTAssertEqual(decode(botocoreHelloWorld, declared: declared, decodedLength: 12).errorCode, "IncompleteBody", "shorter than declared")
        XCTAssertEqual(decode(botocoreEmpty, declared: declared, decodedLength: 1).errorCode, "IncompleteBody")
        XCTAssertEqual(
            decode(documentedBody(documentedChunkSignatures), mode: signedMode(seed: documentedSeed, withTrailer: false),
                   decodedLength: 66_559, slice: 4096).errorCode,
            "InvalidRequest")
    }
}
