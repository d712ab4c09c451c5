import Logging
import ServiceLifecycle
import TYDFSClient
import TYDFSCore
import TYDFSProtocol

/// Removes multipart uploads no part has reached for `expirySeconds` (clients that died or gave
/// up), as S3's lifecycle rule AbortIncompleteMultipartUpload and MinIO's stale-upload cleanup
/// do. Runs in every gateway; removals are idempotent, so gateways side by side do not conflict.
struct AbandonedUploadSweeper: Service {
    let cluster: TYDFSClient
    let expirySeconds: Double
    let intervalSeconds: Double
    let logger: Logger
    let nowMillis: @Sendable () -> Int64

    func run() async throws {
        // The first round after one interval: a gateway starts beside its master, which may not
        // be answering yet.
        while (try? await cancelWhenGracefulShutdown({ try await Task.sleep(nanoseconds: UInt64(intervalSeconds * 1e9)) })) != nil {
            do {
                try await sweep()
            } catch {
                logger.warning("sweeping abandoned multipart uploads failed; next round later", metadata: ["error": "\(error)"])
            }
        }
    }

    /// One pass over every bucket's uploads.
    func sweep() async throws {
        let cutoff = nowMillis() - Int64(expirySeconds * 1000)
        for bucket in try await cluster.list(.root).entries where bucket.isDirectory {
            let folder = try RemotePath(bucket.path + "/" + MultipartUploads.folderName)
            let uploads: [ListEntry]
            do {
                uploads = try await cluster.list(folder).entries
            } catch let error as TYDFSError where error.code == .notFound {
                continue
            }
            for upload in uploads where upload.isDirectory && upload.mtimeMillis < cutoff {
                for file in try await cluster.listFiles(below: try RemotePath(upload.path), concurrency: 4) {
                    _ = try? await cluster.remove(try RemotePath(file.path))
                }
                logger.notice("abandoned multipart upload removed", metadata: ["upload": "\(upload.path)"])
            }
        }
    }
}
