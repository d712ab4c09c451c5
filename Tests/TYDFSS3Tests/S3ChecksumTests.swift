import Foundation
import XCTest
@testable import TYDFSS3

// Where the expected values come from:
// - Check values: the CRC catalogue's "123456789" checks (CRC-32/ISO-HDLC 0xCBF43926, CRC-32/ISCSI
//   0xE3069283, CRC-64/NVME 0xAE8B14860A799888).
// - Base64 values: botocore 1.43.11's own checksum classes with awscrt 0.38.1 installed
//   (`from botocore.httpchecksum import Crc32Checksum, CrtCrc32Checksum, CrtCrc32cChecksum,
//   CrtCrc64NvmeChecksum, Sha1Checksum, Sha256Checksum`; `c = cls(); c.update(data);
//   c.b64digest()`), CRC32 also as `base64.b64encode(zlib.crc32(data).to_bytes(4, "big"))`; all
//   agreed with a bit-by-bit Python reference of each polynomial.
// - "sOO8/Q==": the CRC32C trailer of the AWS S3 API reference's trailing-header example
//   (66,560 bytes of 'a').

private let botocoreVectors: [(input: [UInt8], expected: [S3ChecksumAlgorithm: String])] = [
    ([], [
        .crc32: "AAAAAA==", .crc32c: "AAAAAA==", .crc64nvme: "AAAAAAAAAAA=",
        .sha1: "2jmj7l5rSw0yVb/vlWAYkK/YBwk=", .sha256: "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
    ]),
    (Array("123456789".utf8), [
        .crc32: "y/Q5Jg==", .crc32c: "4waSgw==", .crc64nvme: "rosUhgp5mIg=",
        .sha1: "98O8HYCOBHMq32eZZczDTKeuNEE=", .sha256: "FeKw08M4keuw8e9gnsQZQgwg4yDOlMZfvIwzEkSOsiU=",
    ]),
    (Array("hello".utf8), [
        .crc32: "NhCmhg==", .crc32c: "mnG7TA==", .crc64nvme: "M3eFcAZSQlc=",
        .sha1: "qvTGHdzF6KLavt4PO0gs2a6pQ00=", .sha256: "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=",
    ]),
    (Array("hello world".utf8), [
        .crc32: "DUoRhQ==", .crc32c: "yZRlqg==", .crc64nvme: "jSnVw/bqjr4=",
        .sha1: "Kq5sNclPz7QV2+lfQIuc6R7oRu0=", .sha256: "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=",
    ]),
    // bytes(range(256)) * 4
    ((0..<1024).map { UInt8(truncatingIfNeeded: $0) }, [
        .crc32: "twtMJg==", .crc32c: "LN9ujw==", .crc64nvme: "iI2NLxjQFEc=",
        .sha1: "WwBmnEgNXP+9+ovbqZVhFg8tG3c=", .sha256: "eFsHUfwsU9wUpM49gA5p75zhAJ6zJ8z0WK/gnCQsJsk=",
    ]),
]

/// The 1 MiB + 1000 bytes the aws-chunked tests upload: `bytes((i * 31 + 7) & 0xFF for i in range(...))`.
func patternPayload(_ count: Int) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
}

private func bitwiseCRC32(_ bytes: some Sequence<UInt8>) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    return ~crc
}

private func bitwiseCRC64NVME(_ bytes: some Sequence<UInt8>) -> UInt64 {
    var crc: UInt64 = 0xFFFF_FFFF_FFFF_FFFF
    for byte in bytes {
        crc ^= UInt64(byte)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0x9A6C_9329_AC4B_C9B5 : crc >> 1 }
    }
    return ~crc
}

/// The digest as one big-endian number (CRCs only).
private func numericDigest(_ algorithm: S3ChecksumAlgorithm, _ bytes: [UInt8]) -> UInt64 {
    var state = S3ChecksumState(algorithm)
    state.update(bytes)
    return state.finalizedDigest().reduce(0) { $0 << 8 | UInt64($1) }
}

final class S3ChecksumTests: XCTestCase {
    func testCheckValues() {
        let check = Array("123456789".utf8)
        XCTAssertEqual(numericDigest(.crc32, check), 0xCBF4_3926)
        XCTAssertEqual(numericDigest(.crc32c, check), 0xE306_9283)
        XCTAssertEqual(numericDigest(.crc64nvme, check), 0xAE8B_1486_0A79_9888)
        XCTAssertEqual(bitwiseCRC64NVME(check), 0xAE8B_1486_0A79_9888)
        XCTAssertEqual(bitwiseCRC32(check), 0xCBF4_3926)
    }

    func testDigestLengths() {
        for algorithm in S3ChecksumAlgorithm.allCases {
            XCTAssertEqual(S3ChecksumState(algorithm).finalizedDigest().count, algorithm.digestByteCount, "\(algorithm)")
        }
    }

    func testBase64MatchesBotocore() {
        for vector in botocoreVectors {
            XCTAssertEqual(Set(vector.expected.keys), Set(S3ChecksumAlgorithm.allCases))
            for (algorithm, expected) in vector.expected {
                XCTAssertEqual(S3ChecksumState.base64(algorithm, of: vector.input), expected, "\(algorithm) of \(vector.input.count) bytes")
            }
        }
    }

    func testAWSDocumentationTrailerValue() {
        XCTAssertEqual(S3ChecksumState.base64(.crc32c, of: [UInt8](repeating: UInt8(ascii: "a"), count: 66_560)), "sOO8/Q==")
    }

    /// botocore's `AwsChunkedWrapper` trailers for the 1 MiB + 1000-byte pattern (see AwsChunkedDecoderTests).
    func testPatternPayloadMatchesBotocore() {
        let payload = patternPayload(1_049_576)
        XCTAssertEqual(S3ChecksumState.base64(.crc32, of: payload), "muXA4w==")
        XCTAssertEqual(S3ChecksumState.base64(.crc32c, of: payload), "6ehm0A==")
        XCTAssertEqual(S3ChecksumState.base64(.crc64nvme, of: payload), "DWmmVSAEokQ=")
    }

    func testIncrementalEqualsOneShot() {
        let data = patternPayload(100_003)
        let splits: [[Int]] = [[0], [1], [7, 8, 9], [4096, 4097, 70_000], [99_999, 100_002], Array(stride(from: 0, to: 100_003, by: 997))]
        for algorithm in S3ChecksumAlgorithm.allCases {
            let oneShot = S3ChecksumState.base64(algorithm, of: data)
            for points in splits {
                var state = S3ChecksumState(algorithm)
                var start = 0
                for point in points + [data.count] where point >= start {
                    data[start..<point].withUnsafeBytes { state.update($0) }
                    start = point
                }
                XCTAssertEqual(state.finalizedBase64(), oneShot, "\(algorithm) split at \(points.prefix(5))")
            }
            // Byte by byte, on a shorter prefix.
            var state = S3ChecksumState(algorithm)
            for byte in data.prefix(300) { state.update([byte]) }
            XCTAssertEqual(state.finalizedBase64(), S3ChecksumState.base64(algorithm, of: data.prefix(300)), "\(algorithm) byte by byte")
        }
    }

    /// The sliced tables against the bit-by-bit definition, at every length around the 8-byte
    /// step and every misalignment.
    func testSlicingMatchesBitwise() {
        let data = patternPayload(200)
        for offset in 0..<8 {
            for length in 0..<80 {
                let slice = Array(data[offset..<(offset + length)])
                let crc32 = slice.withUnsafeBytes { CRC32IEEE.update(0, $0) }
                let crc64 = slice.withUnsafeBytes { CRC64NVME.update(0, $0) }
                XCTAssertEqual(crc32, bitwiseCRC32(slice), "crc32 offset \(offset) length \(length)")
                XCTAssertEqual(crc64, bitwiseCRC64NVME(slice), "crc64 offset \(offset) length \(length)")
            }
        }
        // Misaligned base addresses too: a slice of a buffer starting at an odd address.
        data.withUnsafeBytes { buffer in
            for start in 0..<8 {
                let part = UnsafeRawBufferPointer(rebasing: buffer[start..<(start + 150)])
                XCTAssertEqual(CRC32IEEE.update(0, part), bitwiseCRC32(part))
                XCTAssertEqual(CRC64NVME.update(0, part), bitwiseCRC64NVME(part))
            }
        }
    }

    func testUpdateAfterFinalizeGoesOn() {
        var state = S3ChecksumState(.sha256)
        state.update(Array("hello ".utf8))
        _ = state.finalizedBase64()
        state.update(Array("world".utf8))
        XCTAssertEqual(state.finalizedBase64(), "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=")
    }

    func testHeaderNames() {
        XCTAssertEqual(S3ChecksumAlgorithm.crc32.headerName, "x-amz-checksum-crc32")
        XCTAssertEqual(S3ChecksumAlgorithm.crc64nvme.headerName, "x-amz-checksum-crc64nvme")
        for algorithm in S3ChecksumAlgorithm.allCases {
            XCTAssertEqual(S3ChecksumAlgorithm(headerName: algorithm.headerName), algorithm)
            XCTAssertEqual(S3ChecksumAlgorithm(headerName: algorithm.headerName.uppercased()), algorithm)
            XCTAssertEqual(S3ChecksumAlgorithm(algorithmName: algorithm.algorithmName), algorithm)
        }
        XCTAssertEqual(S3ChecksumAlgorithm(headerName: "X-Amz-Checksum-CRC32C"), .crc32c)
        XCTAssertNil(S3ChecksumAlgorithm(headerName: "x-amz-checksum-type"))
        XCTAssertNil(S3ChecksumAlgorithm(headerName: "x-amz-checksum-algorithm"))
        XCTAssertNil(S3ChecksumAlgorithm(headerName: "x-amz-checksum-md5"))
        XCTAssertNil(S3ChecksumAlgorithm(headerName: "content-md5"))
        XCTAssertEqual(S3ChecksumAlgorithm(algorithmName: "CRC64NVME"), .crc64nvme)
        XCTAssertEqual(S3ChecksumAlgorithm(algorithmName: "SHA256"), .sha256)
        XCTAssertNil(S3ChecksumAlgorithm(algorithmName: "XXHASH64"))
    }
}
