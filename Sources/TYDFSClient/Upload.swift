import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import TYDFSCore
import TYDFSFileIO
import TYDFSProtocol

/// What a finished put reports: the file as committed and anything the user should know.
public struct PutResult: Sendable {
    public var file: FileInfo
    /// E.g. "stored with 2 of 3 replicas"; empty when all went as asked.
    public var warnings: [String]
}

extension TYDFSClient {
    /// Uploads the local file at `localPath` (or standard input for `-`) to `remote`.
    ///
    /// Each chunk goes through one write pipeline (client → dk1 → dk2 → dk3); when `put` returns,
    /// every chunk is fsynced on the datakeepers that acknowledged it and the file is committed.
    /// Standard input is spooled one chunk at a time to a temporary file, so a chunk can be
    /// retried on other datakeepers without holding it in memory.
    public func put(localPath: String, to remote: RemotePath, overwrite: Bool) async throws -> PutResult {
        let source: LocalFile
        if localPath == "-" {
            source = LocalFile.standardStream(0, name: "standard input")
        } else {
            do {
                source = try await LocalFile.openForReading(localPath)
            } catch let error as TYDFSError where error.code == .notFound {
                throw TYDFSError(.notFound, "\(localPath): no such local file")
            }
            guard try await source.isRegularFile() else {
                try? source.close()
                throw TYDFSError(.invalidArgument, "\(localPath) is not a regular file")
            }
        }
        defer { try? source.close() }
        let session: UploadSession = try await control(.POST, Route.uploads, body: CreateUploadRequest(path: remote, overwrite: overwrite))
        do {
            return try await upload(from: source, spooled: localPath == "-", session: session, remote: remote)
        } catch {
            let _: [String: String]? = try? await control(.DELETE, Route.upload(session.uploadID))
            throw error
        }
    }

    private func upload(from source: LocalFile, spooled: Bool, session: UploadSession, remote: RemotePath) async throws -> PutResult {
        var fileCRC = CRC32C()
        var chunks: [CommittedChunk] = []
        var offset: Int64 = 0
        var warnings: [String] = []
        let sourceBytes: Int64? = spooled ? nil : try await source.size()
        let spool = spooled ? try await ChunkSpool.create() : nil
        defer { spool?.discard() }
        while true {
            let length: Int64
            let chunkSource: LocalFile
            let chunkOffset: Int64
            if let spool {
                length = try await spool.fill(from: source, upTo: session.chunkSizeBytes)
                chunkSource = spool.file
                chunkOffset = 0
            } else {
                length = min(session.chunkSizeBytes, sourceBytes! - offset)
                chunkSource = source
                chunkOffset = offset
            }
            if length == 0 { break }
            let stored = try await uploadChunk(
                index: chunks.count, source: chunkSource, offset: chunkOffset, length: length,
                session: session, fileCRC: fileCRC)
            fileCRC = stored.fileCRC
            chunks.append(stored.chunk)
            warnings += stored.warnings
            offset += length
            if let sourceBytes, offset >= sourceBytes { break }
        }
        if let sourceBytes, try await source.size() != sourceBytes {
            throw TYDFSError(.io, "the local file changed size while it was uploaded; nothing was stored")
        }
        let commit = CommitUploadRequest(sizeBytes: offset, crc32c: fileCRC.value, chunks: chunks)
        // A commit writes a few rows per chunk: give huge files the time that takes.
        let file: FileInfo = try await control(
            .POST, Route.uploadCommit(session.uploadID), body: commit, extraSeconds: Int64(chunks.count / 1000))
        let fewest = chunks.map(\.replicas.count).min() ?? session.replication
        if fewest < session.replication {
            warnings.append("\(remote) is under-replicated: some chunks have only \(fewest) of \(session.replication) replicas; the master records it as under-replicated")
        }
        return PutResult(file: file, warnings: warnings)
    }

    private struct StoredChunk {
        var chunk: CommittedChunk
        var fileCRC: CRC32C
        var warnings: [String]
    }

    /// Sends one chunk down a pipeline; if the first datakeeper fails, asks for another pipeline
    /// without it and tries again (the source can be re-read at `offset`).
    private func uploadChunk(
        index: Int, source: LocalFile, offset: Int64, length: Int64, session: UploadSession, fileCRC: CRC32C
    ) async throws -> StoredChunk {
        var excluded: [DataKeeperID] = []
        var lastError: TYDFSError?
        for _ in 0..<max(3, session.replication + 1) {
            let allocation: ChunkAllocation
            do {
                allocation = try await control(
                    .POST, Route.uploadChunks(session.uploadID), body: AllocateChunkRequest(exclude: excluded, dataBytes: length))
            } catch let error as TYDFSError where error.code == .unavailable && lastError != nil {
                throw TYDFSError(.unavailable, "chunk \(index) could not be stored: \(lastError!.message); no other datakeeper is left to try")
            }
            let producer = ChunkFrameProducer(file: source, offset: offset, length: length, fileCRC: fileCRC)
            let first = allocation.targets[0]
            var request = HTTPClientRequest(url: "http://\(first.address)\(Route.chunk(allocation.chunkID.value))")
            request.method = .PUT
            request.headers.add(name: Header.dataBytes, value: String(length))
            request.headers.add(name: Header.forward, value: PipelineHop.encode(allocation.targets.dropFirst().map {
                PipelineHop(id: $0.id.value, address: $0.address)
            }))
            request.body = .stream(
                AsyncThrowingStream(unfolding: { try await producer.next() }),
                length: .known(ChunkFrame.frameBytes(dataBytes: length)))
            let result: ChunkWriteResult
            do {
                let deadline = Limits.transferDeadlineSeconds(frameBytes: ChunkFrame.frameBytes(dataBytes: length), hops: allocation.targets.count)
                let response = try await http.execute(request, timeout: .seconds(deadline))
                let payload = try await response.body.collect(upTo: Limits.maxControlMessageBytes)
                result = try PeerError.decode(ChunkWriteResult.self, status: response.status, payload: payload, peer: "datakeeper \(first.id)")
            } catch {
                if let local = producer.localError { throw local }
                let message = "datakeeper \(first.id) at \(first.address): \(PeerError.describe(error))"
                logger.warning("chunk upload failed, retrying elsewhere", metadata: ["chunk.index": "\(index)", "error": "\(message)"])
                lastError = TYDFSError(.unreachable, message)
                excluded.append(first.id)
                continue
            }
            guard result.crc32c == producer.chunkCRC.value, result.dataBytes == length, !result.stored.isEmpty else {
                throw TYDFSError(.checksumMismatch, "datakeeper \(first.id) acknowledged chunk \(index) with a different checksum or size")
            }
            let warnings = result.failures.map { "chunk \(index): replica not stored on \($0)" }
            return StoredChunk(
                chunk: CommittedChunk(index: index, id: allocation.chunkID, sizeBytes: length, crc32c: result.crc32c, replicas: result.stored),
                fileCRC: producer.fileCRC, warnings: warnings)
        }
        throw lastError ?? TYDFSError(.unavailable, "chunk \(index) could not be stored")
    }
}

/// Produces one chunk's frame from a local file, piece by piece as the HTTP client asks for it:
/// the data, then its CRC32C trailer. Also extends the running whole-file checksum.
final class ChunkFrameProducer: @unchecked Sendable {
    private let file: LocalFile
    private let offset: Int64
    private let length: Int64
    private var position: Int64 = 0
    private var trailerSent = false
    private(set) var chunkCRC = CRC32C()
    private(set) var fileCRC: CRC32C
    /// A failure reading the local file, told apart from network failures (no retry helps it).
    private(set) var localError: TYDFSError?

    init(file: LocalFile, offset: Int64, length: Int64, fileCRC: CRC32C) {
        self.file = file
        self.offset = offset
        self.length = length
        self.fileCRC = fileCRC
    }

    func next() async throws -> ByteBuffer? {
        if position < length {
            let piece: ByteBuffer
            do {
                piece = try await file.read(count: Int(min(Int64(Limits.ioBufferBytes), length - position)), at: offset + position)
                guard piece.readableBytes > 0 else { throw TYDFSError(.io, "\(file.path) became shorter while it was uploaded") }
            } catch let error as TYDFSError {
                localError = error
                throw error
            }
            piece.withUnsafeReadableBytes {
                chunkCRC.update($0)
                fileCRC.update($0)
            }
            position += Int64(piece.readableBytes)
            return piece
        }
        if !trailerSent {
            trailerSent = true
            return ByteBuffer(bytes: ChunkFrame.trailer(chunkCRC.value))
        }
        return nil
    }
}
