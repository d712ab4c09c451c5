#if canImport(Glibc)
import Glibc
#endif
import TYDFSCore

/// A file open for writing through the mount: its bytes live in a local file until close,
/// `fsync` or a rename sends them to the cluster as one put.
///
/// TYDFS files are written once, so a write through the mount is staged on local disk (never in
/// memory, whatever its size) and put whole, with the cluster's usual guarantees: when `close`
/// returns, every replica holds the bytes durably. Opening an existing file without `O_TRUNC`
/// copies it here first (copy-on-write of the whole file), so random writes into it work.
final class StagedFile: Sendable {
    let localPath: String
    let descriptor: Int32

    /// Creates an empty staging file in `folder`.
    static func create(in folder: String) throws -> StagedFile {
        let path = "\(folder)/staged-\(hex64(UInt64.random(in: .min ... .max)))"
        return try StagedFile(opening: path, flags: O_RDWR | O_CREAT | O_EXCL)
    }

    /// Takes over the local file at `path` (a downloaded copy of the remote file).
    static func adopt(_ path: String) throws -> StagedFile {
        try StagedFile(opening: path, flags: O_RDWR)
    }

    private init(opening path: String, flags: Int32) throws {
        let descriptor = open(path, flags | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw MountError(errno, "cannot open the staging file \(path): \(String(cString: strerror(errno)))")
        }
        self.localPath = path
        self.descriptor = descriptor
    }

    func write(_ bytes: UnsafeRawBufferPointer, at offset: Int64) throws {
        var done = 0
        while done < bytes.count {
            let written = pwrite(descriptor, bytes.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done))
            if written < 0 {
                if errno == EINTR { continue }
                throw MountError(errno, "cannot write the staging file \(localPath): \(String(cString: strerror(errno)))")
            }
            done += written
        }
    }

    /// Up to `count` bytes at `offset`; fewer at the end of the file.
    func read(count: Int, at offset: Int64) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let read = bytes.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress! + done, count - done, off_t(offset) + off_t(done)) }
            if read < 0 {
                if errno == EINTR { continue }
                throw MountError(errno, "cannot read the staging file \(localPath): \(String(cString: strerror(errno)))")
            }
            if read == 0 { break }
            done += read
        }
        bytes.removeLast(count - done)
        return bytes
    }

    func truncate(to size: Int64) throws {
        guard ftruncate(descriptor, off_t(size)) == 0 else {
            throw MountError(errno, "cannot truncate the staging file \(localPath): \(String(cString: strerror(errno)))")
        }
    }

    var sizeBytes: Int64 {
        var status = stat()
        return fstat(descriptor, &status) == 0 ? Int64(status.st_size) : 0
    }

    /// Closes and removes the staging file.
    func discard() {
        close(descriptor)
        unlink(localPath)
    }
}
