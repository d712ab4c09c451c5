import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import TYDFSClient
import TYDFSCore
import TYDFSProtocol
import TYDFSS3

/// The S3 operations on one checked request: buckets are top-level folders, keys the paths
/// below them. Operations S3 has and TYDFS does not yet answer `NotImplemented`.
struct S3Operations {
    let request: S3Request
    let body: RequestBody
    let caller: Caller
    let responder: S3Responder

    /// XML request bodies (DeleteObjects, CreateBucket) are read whole up to this size.
    static let maxXMLBodyBytes = 2 << 20

    func run() async throws -> Response {
        guard let bucket = request.bucket else {
            guard request.method == .get else { throw S3Error.methodNotAllowed() }
            return try await listBuckets()
        }
        guard let key = request.key else { return try await bucketOperation(bucket) }
        // An object request that names a sub-resource (?acl, ?tagging, ?retention, …) is about
        // that, not the object: answered NotImplemented, never as a write or delete of the object.
        let subresources = Set(request.query.keys).subtracting(S3Operations.signingParameters)
        let understood: Set<String> = ["uploads", "uploadId", "partNumber", "versionId"]
        let unknown = subresources.filter { !understood.contains($0) && !$0.hasPrefix("response-") }
        guard unknown.isEmpty else { throw unsupported(unknown) }
        if let version = request.query["versionId"], version != "null" {
            throw S3Error(code: "NoSuchVersion", message: "TYDFS keeps no versions: only versionId=null exists", httpStatus: 404, resource: key)
        }
        if request.query["uploads"] != nil || request.query["uploadId"] != nil { return try await multipartOperation(bucket, key) }
        if request.query["partNumber"] != nil { throw unsupported(["partNumber"]) }
        switch request.method {
        case .put:
            if request.header("x-amz-copy-source") != nil { return try await copyObject(bucket, key) }
            return try await putObject(bucket, key)
        case .get: return try await getObject(bucket, key, head: false)
        case .head: return try await getObject(bucket, key, head: true)
        case .delete: return try await deleteObject(bucket, key)
        default: throw S3Error.methodNotAllowed()
        }
    }

    // MARK: - Buckets

    private func listBuckets() async throws -> Response {
        let root = try await caller.client.list(.root)
        let buckets = root.entries.filter(\.isDirectory).compactMap { entry -> BucketSummary? in
            let name = String(decoding: entry.path.utf8.dropFirst(), as: UTF8.self)
            guard (try? S3Naming.validateBucketName(name)) != nil else { return nil }
            return BucketSummary(name: name, creationDateMillis: entry.mtimeMillis)
        }
        return xml(S3XML.listAllMyBucketsResult(buckets))
    }

    private func bucketOperation(_ bucket: String) async throws -> Response {
        let subresources = Set(request.query.keys)
        switch request.method {
        case .put:
            guard subresources.isEmpty else { throw unsupported(subresources) }
            return try await createBucket(bucket)
        case .head:
            try await requireBucket(bucket)
            return Response(status: .ok, headers: [.contentLength: "0", HTTPField.Name("x-amz-bucket-region")!: responder.region])
        case .delete:
            guard subresources.isEmpty else { throw unsupported(subresources) }
            return try await deleteBucket(bucket)
        case .get:
            if subresources.contains("location") {
                try await requireBucket(bucket)
                return xml(S3XML.locationConstraint(region: responder.region))
            }
            if subresources.contains("uploads") { return try await listUploads(bucket) }
            let listing: Set<String> = ["list-type", "prefix", "delimiter", "max-keys", "continuation-token", "start-after", "encoding-type", "marker", "fetch-owner"]
            guard subresources.isSubset(of: listing) else { throw unsupported(subresources.subtracting(listing)) }
            return try await listObjects(bucket)
        case .post:
            guard subresources.contains("delete") else { throw unsupported(subresources) }
            return try await deleteObjects(bucket)
        default:
            throw S3Error.methodNotAllowed()
        }
    }

    private func createBucket(_ bucket: String) async throws -> Response {
        try S3Naming.validateBucketName(bucket)
        let configuration = try await collectBody()
        _ = try S3XML.parseCreateBucketConfiguration(Data(buffer: configuration))
        do {
            try await caller.client.makeDirectory(try RemotePath("/" + bucket))
        } catch let error as TYDFSError where error.code == .alreadyExists {
            throw S3Error.bucketAlreadyOwnedByYou(resource: bucket)
        }
        responder.knownBuckets.insert(bucket)
        return Response(status: .ok, headers: [.location: "/" + bucket, .contentLength: "0"])
    }

    private func deleteBucket(_ bucket: String) async throws -> Response {
        do {
            try await caller.client.removeDirectory(try bucketPath(bucket))
        } catch let error as TYDFSError where error.code == .notFound || error.code == .invalidArgument {
            throw S3Error.noSuchBucket(resource: bucket)
        }
        responder.knownBuckets.remove(bucket)
        return Response(status: .noContent)
    }

    /// Throws `NoSuchBucket` unless `bucket` is a top-level folder. Asked as the cluster, since
    /// a key limited to a path inside the bucket may not list the bucket itself: existence is
    /// all this learns, and what the caller may do is checked by the operation that follows.
    func requireBucket(_ bucket: String) async throws {
        if responder.knownBuckets.contains(bucket) { return }
        let path = try bucketPath(bucket)
        let listing: ListResponse
        do {
            listing = try await responder.cluster.list(path, entryOnly: true)
        } catch let error as TYDFSError where error.code == .notFound {
            throw S3Error.noSuchBucket(resource: bucket)
        }
        if listing.file != nil {
            throw S3Error.noSuchBucket("\(path) is a file, not a bucket", resource: bucket)
        }
        responder.knownBuckets.insert(bucket)
    }

    private func bucketPath(_ bucket: String) throws -> RemotePath {
        do {
            return try RemotePath("/" + bucket)
        } catch {
            throw S3Error.noSuchBucket(resource: bucket)
        }
    }

    // MARK: - Listing

    private func listObjects(_ bucket: String) async throws -> Response {
        try await requireBucket(bucket)
        let version: ListVersion = request.query["list-type"] == "2" ? .v2 : .v1
        let parameters = ListParameters(
            version: version, prefix: request.query["prefix"] ?? "", delimiter: request.query["delimiter"],
            maxKeys: try ListParameters.parseMaxKeys(request.query["max-keys"]), startAfter: request.query["start-after"],
            continuationToken: request.query["continuation-token"], marker: request.query["marker"],
            encodingTypeURL: try ListParameters.parseEncodingType(request.query["encoding-type"]),
            fetchOwner: request.query["fetch-owner"] == "true")
        let objects: [ObjectSummary]
        if parameters.maxKeys == 0 {
            objects = []
        } else if parameters.delimiter == nil || parameters.delimiter == "/" {
            // What the page needs, and one more to tell whether more follow.
            objects = try await ObjectWalk.objects(
                in: MasterBucketFolders(client: caller.client, bucket: bucket), prefix: parameters.prefix,
                after: try ObjectListing.resumePoint(of: parameters), foldingFolders: parameters.delimiter == "/",
                limit: parameters.maxKeys + 1)
        } else {
            objects = try await self.objects(in: bucket, prefix: parameters.prefix)
        }
        let page = try ObjectListing.page(of: objects, parameters: parameters)
        return xml(S3XML.listBucketResult(bucket: bucket, parameters: parameters, page: page))
    }

    /// Every object of `bucket` whose key may start with `prefix`, sorted byte-wise: the files
    /// below the deepest folder the prefix names (for a delimiter other than `/`, which can
    /// fold keys anywhere; the others walk only what a page needs, `ObjectWalk`).
    private func objects(in bucket: String, prefix: String) async throws -> [ObjectSummary] {
        let folder = prefix.utf8.lastIndex(of: UInt8(ascii: "/")).map { "/" + bucket + "/" + String(decoding: prefix.utf8[..<$0], as: UTF8.self) } ?? "/" + bucket
        guard let start = try? RemotePath(folder) else { return [] }
        let files: [ListEntry]
        do {
            files = try await caller.client.listFiles(below: start, concurrency: 8)
        } catch let error as TYDFSError where error.code == .notFound {
            return []
        }
        let bucketPrefix = "/" + bucket + "/", uploads = bucketPrefix + MultipartUploads.folderName + "/"
        return files.compactMap { entry in
            guard !entry.isDirectory, !entry.path.hasPrefixByteWise(uploads), let key = entry.path.removingPrefixByteWise(bucketPrefix) else { return nil }
            return ObjectSummary(
                key: key, sizeBytes: entry.sizeBytes,
                etag: S3Operations.etag(checksum: entry.checksum, attributes: entry.attributes), lastModifiedMillis: entry.mtimeMillis)
        }
        .sorted { $0.key.precedesByteWise($1.key) }
    }

    // MARK: - Objects

    func objectPath(_ bucket: String, _ key: String) throws -> RemotePath {
        try S3Naming.validateObjectKey(key)
        if key.equalsByteWise(MultipartUploads.folderName) || key.hasPrefixByteWise(MultipartUploads.folderName + "/") {
            throw S3Error.invalidArgument("keys below \(MultipartUploads.folderName)/ are kept for multipart uploads under way")
        }
        return try RemotePath("/" + bucket + "/" + key)
    }

    private func putObject(_ bucket: String, _ key: String) async throws -> Response {
        try await requireBucket(bucket)
        // A key ending in "/" with no data is a folder marker (what consoles make): a folder.
        if key.utf8.last == UInt8(ascii: "/"), key.utf8.count > 1, request.header("content-length") == "0" {
            try await caller.client.makeDirectory(try objectPath(bucket, String(decoding: key.utf8.dropLast(), as: UTF8.self)), parents: true)
            return Response(status: .ok, headers: [.eTag: S3Operations.emptyETag, .contentLength: "0"])
        }
        // Conditional writes: If-None-Match: * creates only; If-Match replaces only that version.
        let createOnly = request.header("if-none-match")?.trimmingCharacters(in: .whitespaces) == "*"
        if let wanted = request.header("if-match") {
            let current = try? await caller.client.stat(try objectPath(bucket, key), inspecting: true)
            guard let current, S3Operations.etags(wanted, contain: S3Operations.etag(of: current)) else {
                throw S3Error.preconditionFailed()
            }
        }
        let path = try objectPath(bucket, key)
        let stream = try uploadStream()
        let metadata = try objectMetadata()
        let stored: PutResult
        do {
            stored = try await caller.client.put(stream: stream, to: path, overwrite: !createOnly) {
                var attributes = metadata
            attributes[S3Operations.etagAttribute] = stream.md5Hex
                if let checksum = stream.verifiedChecksum { attributes[checksum.name] = checksum.value }
                return attributes
            }
        } catch let error as TYDFSError where createOnly && error.code == .alreadyExists {
            throw S3Error.preconditionFailed("At least one of the pre-conditions you specified did not hold: the key exists (If-None-Match: *)")
        }
        return Response(status: .ok, headers: [.eTag: S3Operations.etag(of: stored.file), .contentLength: "0"])
    }

    private func getObject(_ bucket: String, _ key: String, head: Bool) async throws -> Response {
        let path = try objectPath(bucket, key)
        let info: FileInfo
        do {
            info = try await caller.client.stat(path, inspecting: head)
        } catch let error as TYDFSError where error.code == .notFound {
            try await requireBucket(bucket)
            throw S3Error.noSuchKey(resource: key)
        }
        let etag = S3Operations.etag(of: info)
        var headers: HTTPFields = [
            .eTag: etag, .lastModified: S3XML.httpDate(millis: info.mtimeMillis), .acceptRanges: "bytes",
            .contentType: "binary/octet-stream",
        ]
        // Checksums only when asked for (x-amz-checksum-mode: ENABLED), and only of the whole object.
        let checksums = request.header("x-amz-checksum-mode")?.uppercased() == "ENABLED" && request.header("range") == nil
        for (name, value) in info.attributes ?? [:] {
            // Only what the gateway keeps: a file's attributes may also have been set through the
            // master's own API, and must not become arbitrary response headers.
            let checksum = S3ChecksumAlgorithm(headerName: name) != nil
            guard S3Operations.representationHeaders.contains(name) || name.hasPrefix("x-amz-meta-") || (checksum && checksums),
                  let field = HTTPField.Name(name)
            else { continue }
            headers[field] = value
        }
        if let unmet = precondition(etag: etag, mtimeMillis: info.mtimeMillis) { return unmet }
        let range = try ByteRange.resolve(request.header("range"), sizeBytes: info.sizeBytes)
        let sending = range ?? 0..<info.sizeBytes
        headers[.contentLength] = String(sending.count)
        if let range { headers[.contentRange] = ByteRange.contentRange(range, sizeBytes: info.sizeBytes) }
        let status: HTTPResponse.Status = range == nil ? .ok : .partialContent
        guard !head else { return Response(status: status, headers: headers) }
        let client = caller.client
        let body = ResponseBody(contentLength: Int(sending.count)) { writer in
            try await client.read(info, range: sending) { try await writer.write(contentsOf: $0) }
            try await writer.finish(nil)
        }
        return Response(status: status, headers: headers, body: body)
    }

    /// The answer to `If-Match`, `If-None-Match`, `If-Modified-Since` and `If-Unmodified-Since`
    /// when one of them is not met (412 or 304), else nil.
    private func precondition(etag: String, mtimeMillis: Int64) -> Response? {
        if let wanted = request.header("if-match"), !S3Operations.etags(wanted, contain: etag) {
            return S3Responder.errorResponse(.preconditionFailed(), requestID: "", head: request.method == .head)
        }
        if let unwanted = request.header("if-none-match"), S3Operations.etags(unwanted, contain: etag) {
            return Response(status: .notModified, headers: [.eTag: etag])
        }
        // Seconds rounded down, as `Last-Modified` writes them (`S3XML.httpDate`).
        let (quotient, remainder) = mtimeMillis.quotientAndRemainder(dividingBy: 1000)
        let modified = remainder < 0 ? quotient - 1 : quotient
        if request.header("if-match") == nil, let since = request.header("if-unmodified-since").flatMap(S3Operations.parseHTTPDate), modified > since {
            return S3Responder.errorResponse(.preconditionFailed(), requestID: "", head: request.method == .head)
        }
        if request.header("if-none-match") == nil, let since = request.header("if-modified-since").flatMap(S3Operations.parseHTTPDate), modified <= since {
            return Response(status: .notModified, headers: [.eTag: etag])
        }
        return nil
    }

    private func deleteObject(_ bucket: String, _ key: String) async throws -> Response {
        let path = try objectPath(bucket, key)
        do {
            try await caller.client.remove(path)
        } catch let error as TYDFSError where error.code == .notFound {
            // S3 deletes idempotently: a missing key is fine, a missing bucket is not.
            try await requireBucket(bucket)
        }
        return Response(status: .noContent)
    }

    private func deleteObjects(_ bucket: String) async throws -> Response {
        try await requireBucket(bucket)
        let body = try await collectBody()
        let wanted = try S3XML.parseDeleteObjects(Data(buffer: body))
        var outcomes: [DeleteOutcome] = []
        for object in wanted.objects {
            do {
                try await caller.client.remove(try objectPath(bucket, object.key))
                outcomes.append(.deleted(key: object.key))
            } catch let error as TYDFSError where error.code == .notFound {
                outcomes.append(.deleted(key: object.key))
            } catch {
                outcomes.append(.failed(key: object.key, error: S3Responder.s3Error(error, resource: object.key)))
            }
        }
        return xml(S3XML.deleteResult(outcomes, quiet: wanted.quiet))
    }

    private func copyObject(_ bucket: String, _ key: String) async throws -> Response {
        let target = try objectPath(bucket, key)
        try await requireBucket(bucket)
        let (info, range) = try await copySource(request.header("x-amz-copy-source") ?? "", rangeHeader: nil)
        // COPY (the default) keeps the source's metadata; REPLACE takes the request's.
        let metadata = request.header("x-amz-metadata-directive")?.uppercased() == "REPLACE"
            ? try objectMetadata() : (info.attributes ?? [:]).filter { $0.key != S3Operations.etagAttribute }
        let source = FileContentStream(client: caller.client, file: info, range: range)
        let stored = try await caller.client.put(stream: source, to: target, overwrite: true) {
            metadata.merging([S3Operations.etagAttribute: source.md5Hex ?? ""]) { _, etag in etag }
        }
        return xml(S3XML.copyObjectResult(etag: S3Operations.etag(of: stored.file), lastModifiedMillis: stored.file.mtimeMillis))
    }

    // MARK: - Helpers

    /// The headers an object keeps and returns: its content type and other representation
    /// headers, and user metadata (`x-amz-meta-*`, names lower-cased).
    func objectMetadata() throws -> [String: String] {
        var metadata: [String: String] = [:]
        for field in request.headers {
            let name = field.name.canonicalName
            if S3Operations.representationHeaders.contains(name) || name.hasPrefix("x-amz-meta-") { metadata[name] = field.value }
        }
        // aws-chunked is how the body travelled, not what the object is.
        if let encoding = metadata["content-encoding"] {
            let kept = encoding.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { $0.lowercased() != "aws-chunked" && !$0.isEmpty }
            metadata["content-encoding"] = kept.isEmpty ? nil : kept.joined(separator: ",")
        }
        let userBytes = metadata.filter { $0.key.hasPrefix("x-amz-meta-") }.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count }
        guard userBytes <= 2048 else {
            throw S3Error(code: "MetadataTooLarge", message: "Your metadata headers exceed the maximum allowed metadata size: \(userBytes) of 2048 bytes", httpStatus: 400)
        }
        return metadata
    }

    /// The upload's body, as the request frames it (plain or aws-chunked) and with the checks
    /// it asks for (see `RequestBodyStream`).
    func uploadStream() throws -> RequestBodyStream {
        let framing: RequestBodyStream.Framing
        let trailer = request.header("x-amz-trailer").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        if let mode = caller.streaming {
            guard let decoded = request.header("x-amz-decoded-content-length").flatMap({ Int64($0) }), decoded >= 0 else {
                throw S3Error.missingContentLength("an aws-chunked upload gives its size in x-amz-decoded-content-length")
            }
            let declared = trailer.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } } ?? []
            framing = .awsChunked(AwsChunkedDecoder(mode: mode, declaredTrailers: declared, decodedLength: decoded), decodedLength: decoded)
        } else {
            framing = .plain(length: try contentLength())
        }
        var checksum: (algorithm: S3ChecksumAlgorithm, expected: String?)?
        for field in request.headers {
            if let algorithm = S3ChecksumAlgorithm(headerName: field.name.canonicalName) { checksum = (algorithm, field.value) }
        }
        if checksum == nil, let trailer, let algorithm = S3ChecksumAlgorithm(headerName: trailer) { checksum = (algorithm, nil) }
        return RequestBodyStream(
            body, framing: framing, sha256: caller.payloadSHA256, contentMD5: request.header("content-md5"), checksum: checksum)
    }

    func contentLength() throws -> Int64 {
        guard let text = request.header("content-length") else {
            throw S3Error.missingContentLength()
        }
        guard let length = Int64(text), length >= 0 else { throw S3Error.invalidArgument("Content-Length \(text.prefix(40)) is not a size") }
        return length
    }

    /// A small request body (XML), checked against the signed SHA-256.
    func collectBody() async throws -> ByteBuffer {
        var collected = ByteBuffer()
        if caller.streaming != nil {
            // An aws-chunked XML body: unframed and checked as an upload's is.
            let stream = try uploadStream()
            while true {
                let piece = try await stream.read(upTo: 1 << 20)
                if piece.readableBytes == 0 { return collected }
                guard collected.readableBytes + piece.readableBytes <= S3Operations.maxXMLBodyBytes else {
                    throw S3Error.invalidRequest("the request body is larger than \(S3Operations.maxXMLBodyBytes) bytes")
                }
                collected.writeImmutableBuffer(piece)
            }
        }
        for try await piece in body {
            guard collected.readableBytes + piece.readableBytes <= S3Operations.maxXMLBodyBytes else {
                throw S3Error.invalidRequest("the request body is larger than \(S3Operations.maxXMLBodyBytes) bytes")
            }
            collected.writeImmutableBuffer(piece)
        }
        if let expected = caller.payloadSHA256 {
            let actual = Hex.encode(SHA256.hash(data: collected.readableBytesView))
            guard actual == expected.lowercased() else { throw S3Error.contentSHA256Mismatch() }
        }
        return collected
    }

    private func unsupported(_ subresources: Set<String>) -> S3Error {
        .notImplemented("the S3 gateway does not support ?\(subresources.sorted().joined(separator: "&")) yet")
    }

    func xml(_ document: String) -> Response {
        let body = ByteBuffer(string: document)
        return Response(status: .ok, headers: [.contentType: "application/xml"], body: ResponseBody(byteBuffer: body))
    }

    /// Query items that carry a presigned URL's signature (and the operation name some SDKs
    /// add), not a sub-resource.
    static let signingParameters: Set<String> = [
        "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature",
        "X-Amz-Security-Token", "x-id",
    ]

    /// The headers an object keeps beside `x-amz-meta-*`, as S3 does.
    static let representationHeaders: Set<String> = [
        "content-type", "content-encoding", "content-disposition", "content-language", "cache-control", "expires",
    ]

    /// The attribute that holds an object's S3 ETag: the MD5 of its bytes, or for a multipart
    /// upload the MD5 of its parts' MD5s and `-N`, as S3 makes them.
    static let etagAttribute = "s3-etag"

    /// The ETag of a stored file: the one the gateway kept, quoted; for a file put otherwise
    /// (`tydfs put`), its CRC32C, which clients treat as opaque (it is not 32 hex digits).
    static func etag(checksum: String?, attributes: [String: String]?) -> String {
        if let kept = attributes?[etagAttribute], !kept.isEmpty { return "\"" + kept + "\"" }
        return "\"" + (checksum.map { String($0.split(separator: ":").last ?? "") } ?? "") + "\""
    }

    static func etag(of file: FileInfo) -> String { etag(checksum: file.checksum, attributes: file.attributes) }

    /// The ETag of an empty object (the MD5 of nothing).
    static let emptyETag = "\"d41d8cd98f00b204e9800998ecf8427e\""

    static func etags(_ header: String, contain etag: String) -> Bool {
        header.split(separator: ",").contains { candidate in
            let trimmed = candidate.trimmingCharacters(in: .whitespaces)
            return trimmed == "*" || trimmed == etag || "\"" + trimmed + "\"" == etag
        }
    }

    /// Seconds since 1970 of an HTTP date, or nil.
    static func parseHTTPDate(_ text: String) -> Int64? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter.date(from: text).map { Int64($0.timeIntervalSince1970) }
    }
}

/// Stored files' bytes as one stream, read a piece at a time (each verified): the source of a
/// copy, of a copied part, or of parts copied into an object. A piece is at most a chunk and
/// at most `pieceBytes` (`Limits.readPieceBytes`), kept as the buffers it arrived in, so a
/// copy holds one piece in memory whatever the chunk size. A chunk read whole in one piece is
/// checked against the checksum the file names by the client's read; one read whole in several
/// is checked here, before its last piece is handed out, so a copy of it that does not match
/// fails and commits nothing. Its MD5 (the copy's ETag) is known once it has ended.
///
/// Read by one task at a time (the upload's), which is what makes the unchecked Sendable safe.
final class FileContentStream: ByteStream, @unchecked Sendable {
    private let client: TYDFSClient
    private let pieceBytes: Int64
    /// What is left to read: each file with the bytes of it still to come.
    private var segments: [(file: FileInfo, range: Range<Int64>)]
    /// The current piece's buffers, handed out from `next` on.
    private var pending: [ByteBuffer] = []
    private var next = 0
    /// The CRC32C of a chunk read in several pieces from its start, so far.
    private var chunkCRC: CRC32C?
    /// The first error: every later read throws it again (the bytes are spent by then).
    private var failure: (any Error)?
    private var md5 = Insecure.MD5()
    /// The bytes' MD5 in hex, once the stream has ended.
    private(set) var md5Hex: String?

    init(client: TYDFSClient, file: FileInfo, range: Range<Int64>, pieceBytes: Int64 = Limits.readPieceBytes) {
        self.client = client
        self.pieceBytes = pieceBytes
        segments = [(file, range)]
    }

    init(client: TYDFSClient, files: [FileInfo], pieceBytes: Int64 = Limits.readPieceBytes) {
        self.client = client
        self.pieceBytes = pieceBytes
        segments = files.map { ($0, 0..<$0.sizeBytes) }
    }

    /// The piece of `range` read next: from its start up to the end of the chunk it starts in
    /// (chunks are `chunkSizeBytes` long), and at most `maxBytes`.
    static func nextPiece(of range: Range<Int64>, chunkSizeBytes: Int64, maxBytes: Int64) -> Range<Int64> {
        let chunkEnd = (range.lowerBound / chunkSizeBytes + 1) * chunkSizeBytes
        return range.lowerBound..<min(range.upperBound, chunkEnd, range.lowerBound + maxBytes)
    }

    func read(upTo count: Int) async throws -> ByteBuffer {
        if let failure { throw failure }
        while next < pending.count, pending[next].readableBytes == 0 { next += 1 }
        if next == pending.count {
            // Let go of the last piece before the next one arrives.
            pending = []
            next = 0
            let piece: [ByteBuffer]?
            do {
                piece = try await readPiece()
            } catch {
                failure = error
                throw error
            }
            guard let piece else {
                if md5Hex == nil { md5Hex = Hex.encode(md5.finalize()) }
                return ByteBuffer()
            }
            pending = piece
        }
        let taken = pending[next].readSlice(length: min(count, pending[next].readableBytes))!
        if pending[next].readableBytes == 0 { next += 1 }
        return taken
    }

    /// The next piece's buffers (none of them empty), or nil at the end of the stream.
    private func readPiece() async throws -> [ByteBuffer]? {
        while let (file, range) = segments.first {
            if range.isEmpty {
                segments.removeFirst()
                chunkCRC = nil
                continue
            }
            let piece = Self.nextPiece(of: range, chunkSizeBytes: file.chunkSizeBytes, maxBytes: pieceBytes)
            let index = Int(piece.lowerBound / file.chunkSizeBytes)
            guard file.chunks.indices.contains(index), file.chunks[index].index == index else {
                throw TYDFSError(.internal, "\(file.path) lists no chunk \(index) in its place")
            }
            let chunk = file.chunks[index]
            let chunkStart = Int64(index) * file.chunkSizeBytes
            let chunkEnd = chunkStart + chunk.sizeBytes
            // A chunk read whole in several pieces: checked here, as the read checks one in one.
            if piece.lowerBound == chunkStart { chunkCRC = piece.upperBound < chunkEnd && range.upperBound >= chunkEnd ? CRC32C() : nil }
            var received: [ByteBuffer] = []
            try await client.read(file, range: piece) { received += $0.filter { $0.readableBytes > 0 } }
            for buffer in received {
                buffer.withUnsafeReadableBytes { bytes in
                    md5.update(bufferPointer: bytes)
                    chunkCRC?.update(bytes)
                }
            }
            if piece.upperBound == chunkEnd, let crc = chunkCRC?.value {
                chunkCRC = nil
                guard hex32(crc) == chunk.crc32c else {
                    throw TYDFSError(.checksumMismatch, "chunk \(chunk.index) of \(file.path), read in pieces, has crc32c \(hex32(crc)) where the file says \(chunk.crc32c)")
                }
            }
            segments[0].range = piece.upperBound..<range.upperBound
            if !received.isEmpty { return received }
        }
        return nil
    }
}
