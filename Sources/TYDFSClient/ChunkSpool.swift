import Foundation
import NIOCore
import TYDFSCore
import TYDFSFileIO

/// A temporary file holding one chunk at a time, for the streams that cannot be re-read or
/// rewound, without holding a chunk (up to 4 GiB) in memory: standard input on put (so a chunk
/// can be retried elsewhere) and standard output on get for a chunk larger than
/// `Limits.readPieceBytes` (so it is verified, or read from another replica, before any of it
/// is written out). It is unlinked at once and lives only as long as its descriptors.
final class ChunkSpool: Sendable {
    let file: LocalFile
    let writer: LocalFile

    private init(file: LocalFile, writer: LocalFile) {
        self.file = file
        self.writer = writer
    }

    static func create() async throws -> ChunkSpool {
        let folder = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
        let path = "\(folder)/tydfs-spool-\(hex64(UInt64.random(in: .min ... .max)))"
        let writer = try await LocalFile.create(path)
        let reader = try await LocalFile.openForReading(path)
        _ = try? await LocalFileSystem.remove(path)
        return ChunkSpool(file: reader, writer: writer)
    }

    /// Replaces the spool's content with up to `limit` bytes of `source`; returns how many.
    func fill(from source: some ByteStream, upTo limit: Int64) async throws -> Int64 {
        try await writer.truncate(to: 0)
        var total: Int64 = 0
        while total < limit {
            let piece = try await source.read(upTo: Int(min(Int64(Limits.ioBufferBytes), limit - total)))
            if piece.readableBytes == 0 { break }
            try await writer.write(piece, at: total)
            total += Int64(piece.readableBytes)
        }
        return total
    }

    /// Writes the spool's first `bytes` bytes to `output` at its current position.
    func copy(bytes: Int64, to output: LocalFile) async throws {
        var offset: Int64 = 0
        while offset < bytes {
            let piece = try await file.read(count: Int(min(Int64(Limits.ioBufferBytes), bytes - offset)), at: offset)
            guard piece.readableBytes > 0 else { throw TYDFSError(.io, "the download spool file is shorter than expected") }
            try await output.write(piece, at: nil)
            offset += Int64(piece.readableBytes)
        }
    }

    func discard() {
        try? file.close()
        try? writer.close()
    }
}
