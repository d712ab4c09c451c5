import Crypto
import Foundation
import Hummingbird
import NIOCore
import TYDFSClient
import TYDFSS3

/// An upload's body as the client library reads it, checked on the way through: its length
/// against `Content-Length`, and its SHA-256 and MD5 against what the request signed or
/// declared. A mismatch is thrown at the end of the stream, before the upload is committed, so a
/// damaged or truncated body never becomes an object. Its MD5 is the object's ETag, as in S3.
///
/// Read by one task at a time (the upload's), which is what makes the unchecked Sendable safe.
final class RequestBodyStream: ByteStream, @unchecked Sendable {
    private var iterator: RequestBody.AsyncIterator
    private var pending = ByteBuffer()
    private var received: Int64 = 0
    private let expectedBytes: Int64
    private var sha256: SHA256?
    private let expectedSHA256: String?
    private var md5 = Insecure.MD5()
    private let expectedMD5: String?
    /// The body's MD5 in hex, once the stream has ended.
    private(set) var md5Hex: String?

    /// `sha256`: the hex digest the signature covers, or nil (`UNSIGNED-PAYLOAD`); `contentMD5`:
    /// the `Content-MD5` header (base64), if any.
    init(_ body: RequestBody, expectedBytes: Int64, sha256: String?, contentMD5: String?) {
        iterator = body.makeAsyncIterator()
        self.expectedBytes = expectedBytes
        expectedSHA256 = sha256?.lowercased()
        self.sha256 = sha256 == nil ? nil : SHA256()
        expectedMD5 = contentMD5
    }

    func read(upTo count: Int) async throws -> ByteBuffer {
        if pending.readableBytes == 0 {
            guard let next = try await iterator.next() else {
                try finish()
                return ByteBuffer()
            }
            pending = next
            received += Int64(next.readableBytes)
            guard received <= expectedBytes else {
                throw S3Error.invalidRequest("the body is longer than its Content-Length (\(expectedBytes) bytes)")
            }
            pending.withUnsafeReadableBytes { bytes in
                sha256?.update(bufferPointer: bytes)
                md5.update(bufferPointer: bytes)
            }
        }
        return pending.readSlice(length: min(count, pending.readableBytes))!
    }

    private func finish() throws {
        guard received == expectedBytes else {
            throw S3Error.incompleteBody("You did not provide the number of bytes specified by the Content-Length HTTP header: \(received) of \(expectedBytes) arrived")
        }
        if let expectedSHA256, let digest = sha256?.finalize() {
            let actual = digest.map { String(format: "%02x", $0) }.joined()
            guard actual == expectedSHA256 else {
                throw S3Error.contentSHA256Mismatch("The provided 'x-amz-content-sha256' header does not match what was computed: \(actual)")
            }
        }
        let digest = md5.finalize()
        if let expectedMD5, Data(digest).base64EncodedString() != expectedMD5 {
            throw S3Error.badDigest("The Content-MD5 you specified did not match what we received.")
        }
        md5Hex = digest.map { String(format: "%02x", $0) }.joined()
    }
}
