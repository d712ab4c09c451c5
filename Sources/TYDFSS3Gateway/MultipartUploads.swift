import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import TYDFSClient
import TYDFSCore
import TYDFSProtocol
import TYDFSS3

/// S3 multipart uploads on the namespace, so that any gateway can carry on an upload another
/// began: an upload is the folder `/BUCKET/.tydfs-multipart/ID/`, holding the empty file
/// `target` (whose attributes are the key the object will have, `s3-key`, and its metadata) and
/// one file per part (`part-00001`, …, each with its MD5 as `s3-etag`). Completing it joins
/// the parts' chunks into the object without copying a byte when the parts allow (one chunk
/// each, all of one size but the last, as awscli and boto3 send them); otherwise the parts are
/// copied into the object. Listings never show the folder.
enum MultipartUploads {
    static let folderName = ".tydfs-multipart"
    /// S3's smallest part, but for the last.
    static let minimumPartBytes: Int64 = 5 << 20
    static let maxPartNumber = 10_000
    /// The attribute of an upload's `target` file that names the object's key.
    static let keyAttribute = "s3-key"

    /// A multipart object's ETag as S3 makes it: the MD5 of the parts' MD5s, then `-` and the count.
    static func etag(partMD5s: [String]) -> String {
        let bytes = partMD5s.flatMap { Hex.decode($0) ?? [] }
        return Hex.encode(Insecure.MD5.hash(data: bytes)) + "-\(partMD5s.count)"
    }

    static func folder(_ bucket: String, _ uploadID: String) throws -> RemotePath {
        guard uploadID.utf8.count == 32, uploadID.allSatisfy(\.isHexDigit) else { throw S3Error.noSuchUpload(resource: uploadID) }
        return try RemotePath("/\(bucket)/\(folderName)/\(uploadID)")
    }

    static func partPath(_ bucket: String, _ uploadID: String, _ number: Int) throws -> RemotePath {
        let digits = String(number)
        return try RemotePath(try folder(bucket, uploadID).value + "/part-" + String(repeating: "0", count: max(0, 5 - digits.count)) + digits)
    }

    static func partNumber(_ text: String?) throws -> Int {
        guard let text, let number = Int(text), (1...maxPartNumber).contains(number) else {
            throw S3Error.invalidArgument("Part number must be an integer between 1 and \(maxPartNumber), inclusive")
        }
        return number
    }
}

extension S3Operations {
    /// Routes a request on an object that names an upload (`?uploads`, `?uploadId=`).
    func multipartOperation(_ bucket: String, _ key: String) async throws -> Response {
        if request.query["uploads"] != nil {
            guard request.method == .post else { throw S3Error.methodNotAllowed() }
            return try await createUpload(bucket, key)
        }
        let uploadID = request.query["uploadId"] ?? ""
        let (target, metadata) = try await uploadTarget(bucket, uploadID, key)
        switch request.method {
        case .put: return try await uploadPart(bucket, uploadID)
        case .get: return try await listParts(bucket, key, uploadID)
        case .post: return try await completeUpload(bucket, key, uploadID, into: target, metadata: metadata)
        case .delete:
            try await removeUpload(bucket, uploadID)
            return Response(status: .noContent)
        default: throw S3Error.methodNotAllowed()
        }
    }

    private func createUpload(_ bucket: String, _ key: String) async throws -> Response {
        _ = try objectPath(bucket, key)
        try await requireBucket(bucket)
        let uploadID = hex64(UInt64.random(in: .min ... .max)) + hex64(UInt64.random(in: .min ... .max))
        let marker = try RemotePath(try MultipartUploads.folder(bucket, uploadID).value + "/target")
        let attributes = try objectMetadata().merging([MultipartUploads.keyAttribute: key]) { _, key in key }
        _ = try await caller.client.put(bytes: ByteBuffer(), to: marker, overwrite: false, attributes: attributes)
        return xml(S3XML.initiateMultipartUploadResult(bucket: bucket, key: key, uploadID: uploadID))
    }

    /// The object path the upload will become and the metadata it was created with;
    /// `NoSuchUpload` unless the upload exists for `key`.
    private func uploadTarget(_ bucket: String, _ uploadID: String, _ key: String) async throws -> (RemotePath, [String: String]) {
        let marker = try RemotePath(try MultipartUploads.folder(bucket, uploadID).value + "/target")
        var attributes: [String: String]
        do {
            attributes = try await caller.client.stat(marker, inspecting: true).attributes ?? [:]
        } catch let error as TYDFSError where error.code == .notFound {
            throw S3Error.noSuchUpload(resource: uploadID)
        }
        guard attributes.removeValue(forKey: MultipartUploads.keyAttribute)?.equalsByteWise(key) == true else {
            throw S3Error.noSuchUpload("The upload \(uploadID) is not for this key", resource: uploadID)
        }
        return (try objectPath(bucket, key), attributes)
    }

    private func uploadPart(_ bucket: String, _ uploadID: String) async throws -> Response {
        let number = try MultipartUploads.partNumber(request.query["partNumber"])
        let path = try MultipartUploads.partPath(bucket, uploadID, number)
        if let source = request.header("x-amz-copy-source") {
            let (file, range) = try await copySource(source, rangeHeader: request.header("x-amz-copy-source-range"))
            let copied = FileContentStream(client: caller.client, file: file, range: range)
            let stored = try await caller.client.put(stream: copied, to: path, overwrite: true) {
                [S3Operations.etagAttribute: copied.md5Hex ?? ""]
            }
            return xml(S3XML.copyPartResult(etag: S3Operations.etag(of: stored.file), lastModifiedMillis: stored.file.mtimeMillis))
        }
        let stream = try uploadStream()
        let stored = try await caller.client.put(stream: stream, to: path, overwrite: true) {
            [S3Operations.etagAttribute: stream.md5Hex ?? ""]
        }
        return Response(status: .ok, headers: [.eTag: S3Operations.etag(of: stored.file), .contentLength: "0"])
    }

    /// Every part of an upload, by number.
    private func parts(_ bucket: String, _ uploadID: String) async throws -> [Int: ListEntry] {
        let listing = try await caller.client.list(try MultipartUploads.folder(bucket, uploadID))
        var parts: [Int: ListEntry] = [:]
        for entry in listing.entries where !entry.isDirectory {
            guard let name = entry.path.split(separator: "/").last, name.hasPrefix("part-"), let number = Int(name.dropFirst(5)) else { continue }
            parts[number] = entry
        }
        return parts
    }

    private func listParts(_ bucket: String, _ key: String, _ uploadID: String) async throws -> Response {
        let marker = Int(request.query["part-number-marker"] ?? "0") ?? 0
        let maxParts = min(max(Int(request.query["max-parts"] ?? "1000") ?? 1000, 0), 1000)
        let all = try await parts(bucket, uploadID).sorted { $0.key < $1.key }.filter { $0.key > marker }
        let page = all.prefix(maxParts)
        let summaries = page.map { number, entry in
            PartSummary(
                partNumber: number, etag: S3Operations.etag(checksum: entry.checksum, attributes: entry.attributes), sizeBytes: entry.sizeBytes,
                lastModifiedMillis: entry.mtimeMillis)
        }
        return xml(S3XML.listPartsResult(PartListing(
            bucket: bucket, key: key, uploadID: uploadID, partNumberMarker: marker, nextPartNumberMarker: summaries.last?.partNumber ?? marker,
            maxParts: maxParts, isTruncated: all.count > page.count, parts: summaries)))
    }

    private func completeUpload(
        _ bucket: String, _ key: String, _ uploadID: String, into target: RemotePath, metadata: [String: String]
    ) async throws -> Response {
        let wanted = try S3XML.parseCompleteMultipartUpload(Data(buffer: try await collectBody()))
        let stored = try await parts(bucket, uploadID)
        var paths: [RemotePath] = []
        var md5s: [String] = []
        for (position, part) in wanted.enumerated() {
            guard let entry = stored[part.partNumber], S3Operations.etag(checksum: entry.checksum, attributes: entry.attributes) == part.etag else {
                throw S3Error.invalidPart(resource: String(part.partNumber))
            }
            if position < wanted.count - 1, entry.sizeBytes < MultipartUploads.minimumPartBytes {
                throw S3Error.entityTooSmall(resource: String(part.partNumber))
            }
            paths.append(try RemotePath(entry.path))
            md5s.append(entry.attributes?[S3Operations.etagAttribute] ?? "")
        }
        let attributes = metadata.merging([S3Operations.etagAttribute: MultipartUploads.etag(partMD5s: md5s)]) { _, etag in etag }
        let object: FileInfo
        do {
            object = try await caller.client.concatenate(paths, into: target, overwrite: true, attributes: attributes)
        } catch let error as TYDFSError where error.code == .invalidArgument {
            // Parts of several chunks or of different sizes: copied into the object instead.
            let files = try await paths.asyncMap { try await caller.client.stat($0) }
            object = try await caller.client.put(
                stream: FileContentStream(client: caller.client, files: files), to: target, overwrite: true, attributes: { attributes }).file
        }
        try await removeUpload(bucket, uploadID)
        return xml(S3XML.completeMultipartUploadResult(location: "/\(bucket)/\(key)", bucket: bucket, key: key, etag: S3Operations.etag(of: object)))
    }

    /// Removes what is left of an upload: its parts, then its target marker.
    private func removeUpload(_ bucket: String, _ uploadID: String) async throws {
        for entry in try await parts(bucket, uploadID).values {
            _ = try? await caller.client.remove(try RemotePath(entry.path))
        }
        _ = try? await caller.client.remove(try RemotePath(try MultipartUploads.folder(bucket, uploadID).value + "/target"))
    }

    /// ListMultipartUploads: the uploads under way in `bucket`, by key then id.
    func listUploads(_ bucket: String) async throws -> Response {
        try await requireBucket(bucket)
        let prefix = request.query["prefix"] ?? ""
        var uploads: [UploadSummary] = []
        let folder = try RemotePath("/\(bucket)/\(MultipartUploads.folderName)")
        let listing: [ListEntry]
        do {
            listing = try await caller.client.list(folder).entries.filter(\.isDirectory)
        } catch let error as TYDFSError where error.code == .notFound {
            listing = []
        }
        for entry in listing {
            let uploadID = (try? RemotePath(entry.path))?.name ?? ""
            guard let marker = try? RemotePath(entry.path + "/target"),
                  let name = try? await caller.client.stat(marker, inspecting: true).attributes?[MultipartUploads.keyAttribute]
            else { continue }
            if name.hasPrefixByteWise(prefix) { uploads.append(UploadSummary(key: name, uploadID: uploadID, initiatedMillis: entry.mtimeMillis)) }
        }
        // S3's order: keys byte-wise, then upload ids (ASCII).
        uploads.sort { $0.key.equalsByteWise($1.key) ? $0.uploadID < $1.uploadID : $0.key.precedesByteWise($1.key) }
        let maxUploads = min(max(Int(request.query["max-uploads"] ?? "1000") ?? 1000, 0), 1000)
        return xml(S3XML.listMultipartUploadsResult(UploadListing(
            bucket: bucket, prefix: prefix, maxUploads: maxUploads, isTruncated: uploads.count > maxUploads, uploads: Array(uploads.prefix(maxUploads)))))
    }

    /// The file and byte range an `x-amz-copy-source` (and `x-amz-copy-source-range`) names.
    func copySource(_ header: String, rangeHeader: String?) async throws -> (FileInfo, Range<Int64>) {
        let text = header.utf8.split(separator: UInt8(ascii: "?"), maxSplits: 1).first.map { String(decoding: $0, as: UTF8.self) } ?? ""
        guard let decoded = S3Request.percentDecoded(Substring(text)) else {
            throw S3Error.invalidArgument("x-amz-copy-source \(header.prefix(200)) is not valid percent-encoding")
        }
        // Split at bytes: a key may begin with a combining accent, which Swift joins to the `/`.
        let trimmed = decoded.utf8.first == UInt8(ascii: "/") ? decoded.utf8.dropFirst() : decoded.utf8[...]
        guard let slash = trimmed.firstIndex(of: UInt8(ascii: "/")) else {
            throw S3Error.invalidArgument("x-amz-copy-source must be bucket/key, not \(header.prefix(200))")
        }
        let bucket = String(decoding: trimmed[..<slash], as: UTF8.self)
        let key = String(decoding: trimmed[trimmed.index(after: slash)...], as: UTF8.self)
        let file: FileInfo
        do {
            file = try await caller.client.stat(try objectPath(bucket, key))
        } catch let error as TYDFSError where error.code == .notFound {
            throw S3Error.noSuchKey(resource: bucket + "/" + key)
        }
        guard let rangeHeader else { return (file, 0..<file.sizeBytes) }
        // Unlike a GET's Range, a copy range is never cut to the source: past its end is an error.
        let bounds = rangeHeader.dropFirst("bytes=".count).split(separator: "-", omittingEmptySubsequences: false)
        guard rangeHeader.hasPrefix("bytes="), bounds.count == 2, let first = Int64(bounds[0]), let last = Int64(bounds[1]), first <= last else {
            throw S3Error.invalidArgument("x-amz-copy-source-range must be bytes=FIRST-LAST, not \(rangeHeader.prefix(100))")
        }
        guard last < file.sizeBytes else {
            throw S3Error.invalidRange("The x-amz-copy-source-range \(rangeHeader.prefix(100)) is past the end of the source, \(file.sizeBytes) bytes")
        }
        return (file, first..<(last + 1))
    }
}

extension Array {
    /// `transform` of each element, one after another.
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        result.reserveCapacity(count)
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
