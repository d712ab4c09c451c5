import AsyncHTTPClient
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import TYDFSCore
import TYDFSFileIO
import TYDFSProtocol

extension TYDFSClient {
    /// Downloads `remote` to `localPath` (or standard output for `-`).
    ///
    /// To a file: up to `Limits.parallelChunkDownloads` chunks at once, each from the replica the
    /// master ranks first (so one file is read from several datakeepers), written at its offset
    /// into a temporary file that is renamed into place only when every chunk is verified — an
    /// interrupted get never leaves a partial file under the target name. A replica that fails
    /// or sends bytes that do not match the checksum is skipped for the next one.
    /// To standard output: chunk after chunk, in order, each verified in a spool file first.
    @discardableResult
    public func get(_ remote: RemotePath, to localPath: String) async throws -> FileInfo {
        let info = try await stat(remote)
        let failed = FailedDataKeepers()
        if localPath == "-" {
            let output = LocalFile.standardStream(1, name: "standard output")
            let spool = try await ChunkSpool.create()
            defer { spool.discard() }
            for chunk in info.chunks {
                try await fetch(chunk, into: spool.writer, at: 0, failed: failed)
                try await spool.copy(bytes: chunk.sizeBytes, to: output)
            }
            return info
        }
        let folder = localPath.lastIndex(of: "/").map { String(localPath[..<$0]) } ?? "."
        let name = localPath.lastIndex(of: "/").map { String(localPath[localPath.index(after: $0)...]) } ?? localPath
        let temporaryPath = "\(folder.isEmpty ? "/" : folder)/.\(name).tydfs-\(hex64(UInt64.random(in: .min ... .max)))"
        let output: LocalFile
        do {
            output = try await LocalFile.create(temporaryPath)
        } catch let error as TYDFSError {
            throw TYDFSError(error.code, "cannot write to \(localPath): \(error.message)")
        }
        do {
            try await output.truncate(to: info.sizeBytes)
            try await fetchAll(info, into: output, failed: failed)
            try output.close()
            try await LocalFileSystem.renameDurably(temporaryPath, to: localPath)
        } catch {
            try? output.close()
            _ = try? await LocalFileSystem.remove(temporaryPath)
            throw error
        }
        return info
    }

    /// Reads the whole file `remote` (at most `Limits.maxInMemoryFileBytes`) into memory, with
    /// the same parallel, verified, replica-skipping chunk reads as `get`.
    public func read(_ remote: RemotePath) async throws -> ByteBuffer {
        let info = try await stat(remote)
        guard info.sizeBytes <= Limits.maxInMemoryFileBytes else {
            throw TYDFSError(.invalidArgument, "\(remote) holds \(ByteSize.format(info.sizeBytes)), too much to read into memory (the limit is \(ByteSize.format(Limits.maxInMemoryFileBytes))); get it into a local file instead")
        }
        let memory = MemorySink(sizeBytes: Int(info.sizeBytes))
        try await fetchAll(info, into: memory, failed: FailedDataKeepers())
        return memory.bytes
    }

    /// Fetches every chunk of `info`, up to `Limits.parallelChunkDownloads` at once, each written
    /// at its offset into `output`.
    private func fetchAll(_ info: FileInfo, into output: some ChunkSink, failed: FailedDataKeepers) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            var started = 0
            for chunk in info.chunks {
                if started >= Limits.parallelChunkDownloads { try await group.next() }
                group.addTask { try await self.fetch(chunk, into: output, at: Int64(chunk.index) * info.chunkSizeBytes, failed: failed) }
                started += 1
            }
            try await group.waitForAll()
        }
    }

    /// Reads one chunk from the first replica that delivers it intact and writes its data at
    /// `offset`. Datakeepers that already failed during this download are tried last.
    private func fetch(_ chunk: ChunkInfo, into output: some ChunkSink, at offset: Int64, failed: FailedDataKeepers) async throws {
        var failures: [String] = []
        let ranked = chunk.replicas.filter(\.alive) + chunk.replicas.filter { !$0.alive && !$0.address.isEmpty }
        let known = await failed.all
        let candidates = ranked.filter { !known.contains($0.id) } + ranked.filter { known.contains($0.id) }
        for replica in candidates {
            do {
                try await fetch(chunk, from: replica, into: output, at: offset)
                return
            } catch let error as LocalWriteFailure {
                throw error.underlying
            } catch {
                failures.append("\(replica.id): \(PeerError.describe(error))")
                await failed.add(replica.id)
                if let error = error as? TYDFSError, error.code == .checksumMismatch || error.code == .protocolViolation {
                    await reportBadReplica(chunk.id, on: replica.id, message: error.message)
                }
                logger.warning("replica failed, trying the next", metadata: ["chunk.id": "\(chunk.id)", "datakeeper.id": "\(replica.id)", "error": "\(error)"])
            }
        }
        if candidates.isEmpty {
            throw TYDFSError(.unavailable, "chunk \(chunk.index) of the file has no replica on a live datakeeper")
        }
        throw TYDFSError(.unavailable, "chunk \(chunk.index) could not be read from any replica: \(failures.joined(separator: "; "))")
    }

    /// Reads one chunk from `replica`, abandoning it when it sends nothing for
    /// `Limits.stallSeconds(hops: 1)` (the clock stops while the local disk is written).
    private func fetch(_ chunk: ChunkInfo, from replica: DataKeeperAddress, into output: some ChunkSink, at offset: Int64) async throws {
        let progress = TransferProgress(stallSeconds: Limits.stallSeconds(hops: 1))
        try await StallGuard.run(progress) {
            try await self.fetch(chunk, from: replica, into: output, at: offset, progress: progress)
        }
    }

    private func fetch(
        _ chunk: ChunkInfo, from replica: DataKeeperAddress, into output: some ChunkSink, at offset: Int64, progress: TransferProgress
    ) async throws {
        var request = HTTPClientRequest(url: "http://\(replica.address)\(Route.chunk(chunk.id.value))")
        request.method = .GET
        let deadline = Limits.transferDeadlineSeconds(frameBytes: ChunkFrame.frameBytes(dataBytes: chunk.sizeBytes), hops: 1)
        let response = try await http.execute(request, timeout: .seconds(deadline))
        progress.advance()
        guard response.status == .ok else {
            let payload = try await response.body.collect(upTo: Limits.maxControlMessageBytes)
            try PeerError.check(status: response.status, payload: payload, peer: "datakeeper \(replica.id)")
            throw TYDFSError(.protocolViolation, "datakeeper \(replica.id) answered HTTP \(response.status.code)")
        }
        var reader = ChunkFrameReader(maxFrameBytes: ChunkFrame.frameBytes(dataBytes: chunk.sizeBytes))
        var pending = ByteBuffer()
        var written: Int64 = 0
        for try await piece in response.body {
            progress.advance()
            try piece.withUnsafeReadableBytes { bytes in
                try reader.consume(bytes) { data in pending.writeBytes(data) }
            }
            if pending.readableBytes >= Limits.ioBufferBytes {
                progress.pause()
                try await LocalWriteFailure.wrap { try await output.write(pending, at: offset + written) }
                progress.advance()
                written += Int64(pending.readableBytes)
                pending.clear()
            }
        }
        let crc = try reader.finish(expectedDataBytes: chunk.sizeBytes)
        guard hex32(crc) == chunk.crc32c else {
            throw TYDFSError(.checksumMismatch, "replica on \(replica.id) has crc32c \(hex32(crc)), the file says \(chunk.crc32c)")
        }
        if pending.readableBytes > 0 {
            try await LocalWriteFailure.wrap { try await output.write(pending, at: offset + written) }
            written += Int64(pending.readableBytes)
        }
    }
}

/// Where a download's verified chunk data goes: a local file or memory. Chunks arrive in
/// parallel, each at its own offset.
protocol ChunkSink: Sendable {
    func write(_ data: ByteBuffer, at offset: Int64) async throws
}

extension LocalFile: ChunkSink {
    func write(_ data: ByteBuffer, at offset: Int64) async throws {
        try await write(data, at: Optional(offset))
    }
}

/// A whole file in memory, filled chunk by chunk by parallel fetches.
final class MemorySink: ChunkSink {
    private let buffer: NIOLockedValueBox<ByteBuffer>

    init(sizeBytes: Int) {
        var bytes = ByteBuffer()
        bytes.writeRepeatingByte(0, count: sizeBytes)
        buffer = NIOLockedValueBox(bytes)
    }

    func write(_ data: ByteBuffer, at offset: Int64) async throws {
        buffer.withLockedValue { _ = $0.setBuffer(data, at: Int(offset)) }
    }

    var bytes: ByteBuffer { buffer.withLockedValue { $0 } }
}

/// Datakeepers that failed during one download, so later chunks try them last.
actor FailedDataKeepers {
    private(set) var all: Set<DataKeeperID> = []
    func add(_ id: DataKeeperID) { all.insert(id) }
}

/// A failure writing the download locally (full disk, bad target): no other replica can help.
struct LocalWriteFailure: Error {
    let underlying: Error

    static func wrap(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch {
            throw LocalWriteFailure(underlying: error)
        }
    }
}
