import TYDFSClient
import TYDFSCore
import TYDFSProtocol
import TYDFSS3

/// A bucket's folders as the master lists them, one page at a time (`TYDFSClient.listPage`),
/// for `ObjectWalk`: a ListObjects page reads about what it lists. The bucket's multipart
/// uploads folder is left out, as it is of every listing.
struct MasterBucketFolders: BucketFolders {
    let client: TYDFSClient
    let bucket: String

    func children(of folder: String, after: String?, limit: Int) async throws -> (children: [FolderChild], nextAfter: String?) {
        guard let path = path(of: folder) else { return ([], nil) }
        let page: ListResponse
        do {
            page = try await client.listPage(path, after: after, limit: limit)
        } catch let error as TYDFSError where error.code == .notFound {
            return ([], nil)
        }
        guard page.file == nil else { return ([], nil) }  // an object where the folder would be
        let children = page.entries.compactMap { entry in
            entry.path.removingPrefixByteWise(path.childPrefix).flatMap { child(named: $0, in: folder, entry) }
        }
        return (children, page.nextAfter)
    }

    /// Read as a page of one: a folder's own entry would cost the master a count of its
    /// subfolders, a walk of every entry in it.
    func child(_ name: String, of folder: String) async throws -> FolderChild? {
        guard let folderPath = path(of: folder), let path = try? RemotePath(folderPath.childPrefix + name) else { return nil }
        let page: ListResponse
        do {
            page = try await client.listPage(path, after: nil, limit: 1)
        } catch let error as TYDFSError where error.code == .notFound {
            return nil
        }
        if let file = page.file { return child(named: name, in: folder, file) }
        if folder.isEmpty, name.equalsByteWise(MultipartUploads.folderName) { return nil }
        return FolderChild(name: name, object: nil)
    }

    /// The folder whose keys start with `folder` (`""`, or ending in `/`): `/BUCKET/...`; nil
    /// when no path can name it (an empty name, say), or it is the multipart uploads' folder or
    /// below it, so that nothing is in it.
    private func path(of folder: String) -> RemotePath? {
        guard !folder.hasPrefixByteWise(MultipartUploads.folderName + "/") else { return nil }
        return try? RemotePath("/" + bucket + (folder.isEmpty ? "" : "/" + String(decoding: folder.utf8.dropLast(), as: UTF8.self)))
    }

    private func child(named name: String, in folder: String, _ entry: ListEntry) -> FolderChild? {
        if folder.isEmpty, entry.isDirectory, name.equalsByteWise(MultipartUploads.folderName) { return nil }
        guard !entry.isDirectory else { return FolderChild(name: name, object: nil) }
        return FolderChild(name: name, object: ObjectSummary(
            key: folder + name, sizeBytes: entry.sizeBytes,
            etag: S3Operations.etag(checksum: entry.checksum, attributes: entry.attributes), lastModifiedMillis: entry.mtimeMillis))
    }
}
