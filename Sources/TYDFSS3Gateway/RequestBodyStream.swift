import Crypto
import Foundation
import TYDFSCore
import Hummingbird
import NIOCore
import TYDFSClient
import TYDFSS3

/// An upload's body as the client library reads it, checked on the way through: its length
/// against `Content-Length` (or `x-amz-decoded-content-length`), its SHA-256 against what the
/// request signed, its `Content-MD5`, and a flexible checksum (`x-amz-checksum-*`, in a header
/// or an aws-chunked trailer). An `aws-chunked` body (what botocore sends over HTTPS, and signed
/// streaming uploads) is unframed here, each chunk signature checked. A mismatch is thrown at
/// the end of the stream, before the upload is committed, so a damaged or truncated body never
/// becomes an object. Its MD5 is the object's ETag, as in S3.
///
/// Read by one task at a time (the upload's), which is what makes the unchecked Sendable safe.
final class RequestBodyStream: ByteStream, @unchecked Sendable {
    /// How the payload travels in the body.
    enum Framing {
        /// The body is the payload, `length` bytes.
        case plain(length: Int64)
        /// `Content-Encoding: aws-chunked`: the payload, `decodedLength` bytes, in chunks.
        case awsChunked(AwsChunkedDecoder, decodedLength: Int64)
    }

    private var iterator: RequestBody.AsyncIterator
    private var framing: Framing
    private var pending = ByteBuffer()
    private var payloadBytes: Int64 = 0
    private var sha256: SHA256?
    private let expectedSHA256: String?
    private var md5 = Insecure.MD5()
    private let expectedMD5: String?
    private var checksum: S3ChecksumState?
    /// The checksum's expected value when a header gave it; nil when a trailer will.
    private let expectedChecksum: String?
    /// The body's MD5 in hex, once the stream has ended.
    private(set) var md5Hex: String?
    /// The flexible checksum the body was checked against, once the stream has ended: its
    /// header name and base64 value, kept with the object.
    private(set) var verifiedChecksum: (name: String, value: String)?

    /// `sha256`: the hex digest the signature covers, or nil (unsigned or streaming payloads);
    /// `contentMD5`: the `Content-MD5` header (base64); `checksum`: the algorithm of an
    /// `x-amz-checksum-*` header or trailer and the header's value (nil for a trailer).
    init(
        _ body: RequestBody, framing: Framing, sha256: String?, contentMD5: String?,
        checksum: (algorithm: S3ChecksumAlgorithm, expected: String?)?
    ) {
        iterator = body.makeAsyncIterator()
        self.framing = framing
        expectedSHA256 = sha256?.lowercased()
        self.sha256 = sha256 == nil ? nil : SHA256()
        expectedMD5 = contentMD5
        self.checksum = checksum.map { S3ChecksumState($0.algorithm) }
        expectedChecksum = checksum?.expected
    }

    private var expectedBytes: Int64 {
        switch framing {
        case .plain(let length): length
        case .awsChunked(_, let decodedLength): decodedLength
        }
    }

    func read(upTo count: Int) async throws -> ByteBuffer {
        while pending.readableBytes == 0 {
            let next: ByteBuffer?
            do {
                next = try await iterator.next()
            } catch {
                // The connection closed or broke before the body was whole.
                throw S3Error.incompleteBody("The request body ended after \(payloadBytes) of \(expectedBytes) bytes: \(error)")
            }
            guard let wire = next else {
                try finish()
                return ByteBuffer()
            }
            switch framing {
            case .plain:
                pending = wire
            case .awsChunked(var decoder, let decodedLength):
                var payload = ByteBuffer()
                try wire.withUnsafeReadableBytes { bytes in
                    try decoder.feed(bytes) { payload.writeBytes($0) }
                }
                framing = .awsChunked(decoder, decodedLength: decodedLength)
                pending = payload
            }
            payloadBytes += Int64(pending.readableBytes)
            guard payloadBytes <= expectedBytes else {
                throw S3Error.invalidRequest("the body holds more than its declared \(expectedBytes) bytes")
            }
            pending.withUnsafeReadableBytes { bytes in
                sha256?.update(bufferPointer: bytes)
                md5.update(bufferPointer: bytes)
                checksum?.update(bytes)
            }
        }
        return pending.readSlice(length: min(count, pending.readableBytes))!
    }

    private func finish() throws {
        var trailers: [String: String] = [:]
        if case .awsChunked(var decoder, let decodedLength) = framing {
            trailers = try decoder.finish()
            framing = .awsChunked(decoder, decodedLength: decodedLength)
        }
        guard payloadBytes == expectedBytes else {
            throw S3Error.incompleteBody("You did not provide the number of bytes specified by the Content-Length HTTP header: \(payloadBytes) of \(expectedBytes) arrived")
        }
        if let expectedSHA256, let digest = sha256?.finalize() {
            let actual = Hex.encode(digest)
            guard actual == expectedSHA256 else {
                throw S3Error.contentSHA256Mismatch("The provided 'x-amz-content-sha256' header does not match what was computed: \(actual)")
            }
        }
        let digest = md5.finalize()
        if let expectedMD5, Data(digest).base64EncodedString() != expectedMD5 {
            throw S3Error.badDigest("The Content-MD5 you specified did not match what we received.")
        }
        md5Hex = Hex.encode(digest)
        if let checksum {
            let name = checksum.algorithm.headerName
            guard let expected = expectedChecksum ?? trailers[name] else {
                throw S3Error.invalidRequest("the body's \(name) trailer is missing")
            }
            let actual = checksum.finalizedBase64()
            guard actual == expected else {
                throw S3Error.badDigest("The \(checksum.algorithm.algorithmName) you specified did not match the calculated checksum: \(actual)")
            }
            verifiedChecksum = (name, actual)
        }
    }
}
