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
        if localPath == "-" {
            return try await put(.stream(LocalFile.standardStream(0, name: "standard input")), to: remote, overwrite: overwrite)
        }
        let file: LocalFile
        do {
            file = try await LocalFile.openForReading(localPath)
        } catch let error as TYDFSError where error.code == .notFound {
            throw TYDFSError(.notFound, "\(localPath): no such local file")
        }
        defer { try? file.close() }
        guard try await file.isRegularFile() else {
            throw TYDFSError(.invalidArgument, "\(localPath) is not a regular file")
        }
        return try await put(.file(file, sizeBytes: try await file.size()), to: remote, overwrite: overwrite)
    }

    /// Uploads `bytes` (at most `Limits.maxInMemoryFileBytes`) to `remote`, exactly as a put of a
    /// local file with the same content: durable on every replica when it returns.
    public func put(bytes: ByteBuffer, to remote: RemotePath, overwrite: Bool) async throws -> PutResult {
        guard bytes.readableBytes <= Limits.maxInMemoryFileBytes else {
            throw TYDFSError(.invalidArgument, "\(ByteSize.format(Int64(bytes.readableBytes))) is too large to put from memory (the limit is \(ByteSize.format(Limits.maxInMemoryFileBytes))); write it to a local file and put that")
        }
        return try await put(.memory(bytes), to: remote, overwrite: overwrite)
    }

    private func put(_ source: UploadSource, to remote: RemotePath, overwrite: Bool) async throws -> PutResult {
        let session = try await openUpload(remote, overwrite: overwrite, sourceBytes: source.sizeBytes)
        do {
            return try await upload(from: source, session: session, remote: remote)
        } catch {
            let _: [String: String]? = try? await control(.DELETE, Route.upload(session.uploadID))
            throw error
        }
    }

    /// Opens an upload and, when the source's size is known, has the master allocate the first
    /// chunk in the same call (so a one-chunk file costs two calls to the master: this and the
    /// commit). The master cuts the first chunk at its chunk size.
    private func openUpload(_ remote: RemotePath, overwrite: Bool, sourceBytes: Int64?) async throws -> UploadSession {
        try await control(.POST, Route.uploads, body: CreateUploadRequest(
            path: remote, overwrite: overwrite, firstChunkBytes: sourceBytes.flatMap { $0 > 0 ? $0 : nil }))
    }

    private func upload(from source: UploadSource, session: UploadSession, remote: RemotePath) async throws -> PutResult {
        var fileCRC = CRC32C()
        var chunks: [CommittedChunk] = []
        var offset: Int64 = 0
        var warnings: [String] = []
        var avoided: [DataKeeperID] = []
        let spool: ChunkSpool?
        if case .stream = source { spool = try await ChunkSpool.create() } else { spool = nil }
        defer { spool?.discard() }
        while true {
            let length: Int64
            let data: ChunkBytes
            switch source {
            case .stream(let input):
                length = try await spool!.fill(from: input, upTo: session.chunkSizeBytes)
                data = .file(spool!.file, offset: 0)
            case .file(let file, let sizeBytes):
                length = min(session.chunkSizeBytes, sizeBytes - offset)
                data = .file(file, offset: offset)
            case .memory(let bytes):
                length = min(session.chunkSizeBytes, Int64(bytes.readableBytes) - offset)
                data = .memory(bytes.getSlice(at: bytes.readerIndex + Int(offset), length: Int(max(0, length)))!)
            }
            if length <= 0 { break }
            let stored = try await uploadChunk(
                index: chunks.count, data: data, length: length, session: session, fileCRC: fileCRC,
                allocation: chunks.isEmpty ? session.firstChunk : nil, avoided: &avoided)
            fileCRC = stored.fileCRC
            chunks.append(stored.chunk)
            warnings += stored.warnings
            offset += length
            if let sizeBytes = source.sizeBytes, offset >= sizeBytes { break }
        }
        if case .file(let file, let sizeBytes) = source, try await file.size() != sizeBytes {
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

    /// Sends one chunk down a pipeline and makes sure it ends with the full replication whenever
    /// enough live datakeepers exist. When the first datakeeper fails or hangs, or a hop further
    /// down does (the pipeline then reports fewer replicas), it asks the master for a pipeline
    /// without the failed hop and sends the chunk again (the source can be re-read), as HDFS
    /// replaces a failed datanode. Below the full replication it keeps the best result and the
    /// put warns. `avoided` holds the datakeepers that failed during this upload, so later chunks
    /// do not wait on a hung one again. `allocation` is the pipeline the master already gave for
    /// this chunk, if any (the first chunk's, with the upload).
    private func uploadChunk(
        index: Int, data: ChunkBytes, length: Int64, session: UploadSession, fileCRC: CRC32C, allocation given: ChunkAllocation?,
        avoided: inout [DataKeeperID]
    ) async throws -> StoredChunk {
        var lastError: TYDFSError?
        var best: StoredChunk?
        var given = given
        for _ in 0..<max(3, session.replication + 1) {
            let allocation: ChunkAllocation
            if let preallocated = given, Set(preallocated.targets.map(\.id)).isDisjoint(with: avoided) {
                allocation = preallocated
                given = nil
            } else {
                given = nil
                do {
                    allocation = try await control(
                        .POST, Route.uploadChunks(session.uploadID), body: AllocateChunkRequest(exclude: avoided, dataBytes: length))
                } catch let error as TYDFSError where error.code == .unavailable && (lastError != nil || best != nil) {
                    if let best { return best }
                    throw TYDFSError(.unavailable, "chunk \(index) could not be stored: \(lastError!.message); no other datakeeper is left to try")
                }
            }
            if let best, allocation.targets.count <= best.chunk.replicas.count {
                return best  // no pipeline the master can offer now stores more copies
            }
            let first = allocation.targets[0]
            let progress = TransferProgress(stallSeconds: Limits.stallSeconds(hops: allocation.targets.count))
            let producer = ChunkFrameProducer(data: data, length: length, fileCRC: fileCRC, progress: progress)
            let result: ChunkWriteResult
            do {
                result = try await StallGuard.run(progress) {
                    try await self.send(producer, length: length, through: allocation)
                }
            } catch {
                if let local = producer.localError { throw local }
                let message = "datakeeper \(first.id) at \(first.address): \(PeerError.describe(error))"
                logger.warning("chunk upload failed, retrying elsewhere", metadata: ["chunk.index": "\(index)", "error": "\(message)"])
                lastError = TYDFSError(.unreachable, message)
                avoided.append(first.id)
                continue
            }
            guard result.crc32c == producer.chunkCRC.value, result.dataBytes == length, !result.stored.isEmpty else {
                throw TYDFSError(.checksumMismatch, "datakeeper \(first.id) acknowledged chunk \(index) with a different checksum or size")
            }
            let stored = StoredChunk(
                chunk: CommittedChunk(index: index, id: allocation.chunkID, sizeBytes: length, crc32c: result.crc32c, replicas: result.stored),
                fileCRC: producer.fileCRC,
                warnings: result.failures.map { "chunk \(index): replica not stored on \($0)" })
            guard let failedHop = allocation.targets.first(where: { !result.stored.contains($0.id) }) else { return stored }
            // A hop further down failed: keep this result, and try a whole pipeline without that hop.
            logger.warning("pipeline hop failed, sending the chunk again without it", metadata: [
                "chunk.index": "\(index)", "datakeeper.id": "\(failedHop.id)", "stored": "\(result.stored.count)",
                "error": "\(result.failures.joined(separator: "; "))",
            ])
            if best == nil || stored.chunk.replicas.count > best!.chunk.replicas.count { best = stored }
            lastError = TYDFSError(.unreachable, result.failures.first ?? "datakeeper \(failedHop.id) did not store the chunk")
            avoided.append(failedHop.id)
        }
        if let best { return best }
        throw lastError ?? TYDFSError(.unavailable, "chunk \(index) could not be stored")
    }

    /// One attempt: streams the chunk's frame to the first datakeeper of `allocation`, naming the
    /// rest of the pipeline, and returns its answer.
    private func send(_ producer: ChunkFrameProducer, length: Int64, through allocation: ChunkAllocation) async throws -> ChunkWriteResult {
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
        let deadline = Limits.transferDeadlineSeconds(frameBytes: ChunkFrame.frameBytes(dataBytes: length), hops: allocation.targets.count)
        let response = try await http.execute(request, timeout: .seconds(deadline))
        let payload = try await response.body.collect(upTo: Limits.maxControlMessageBytes)
        return try PeerError.decode(ChunkWriteResult.self, status: response.status, payload: payload, peer: "datakeeper \(first.id)")
    }
}

/// Where the bytes of a put come from.
enum UploadSource {
    /// A regular local file: its size is known and any chunk can be re-read for a retry.
    case file(LocalFile, sizeBytes: Int64)
    /// A stream read once (standard input): spooled one chunk at a time.
    case stream(LocalFile)
    /// Bytes in memory.
    case memory(ByteBuffer)

    /// The whole source's size, when known before it is read.
    var sizeBytes: Int64? {
        switch self {
        case .file(_, let sizeBytes): sizeBytes
        case .stream: nil
        case .memory(let bytes): Int64(bytes.readableBytes)
        }
    }
}

/// One chunk's data, re-readable for a retry: a range of a local file (the source or the
/// spool) or a slice of memory.
enum ChunkBytes {
    case file(LocalFile, offset: Int64)
    case memory(ByteBuffer)
}

/// Produces one chunk's frame, piece by piece as the HTTP client asks for it: the data, then
/// its CRC32C trailer. Also extends the running whole-file checksum.
final class ChunkFrameProducer: @unchecked Sendable {
    private let data: ChunkBytes
    private let length: Int64
    private var position: Int64 = 0
    private var trailerSent = false
    private(set) var chunkCRC = CRC32C()
    private(set) var fileCRC: CRC32C
    /// A failure reading the local file, told apart from network failures (no retry helps it).
    private(set) var localError: TYDFSError?

    /// Told when the HTTP client takes the next piece (the datakeeper accepted the last one),
    /// and given the fsync allowance once the whole frame is out.
    private let progress: TransferProgress

    init(data: ChunkBytes, length: Int64, fileCRC: CRC32C, progress: TransferProgress) {
        self.data = data
        self.length = length
        self.fileCRC = fileCRC
        self.progress = progress
    }

    func next() async throws -> ByteBuffer? {
        if trailerSent {
            progress.allow(extraSeconds: Limits.syncAllowanceSeconds(frameBytes: ChunkFrame.frameBytes(dataBytes: length)))
        } else {
            progress.advance()
        }
        if position < length {
            let count = Int(min(Int64(Limits.ioBufferBytes), length - position))
            let piece: ByteBuffer
            switch data {
            case .memory(let bytes):
                piece = bytes.getSlice(at: bytes.readerIndex + Int(position), length: count)!
            case .file(let file, let offset):
                do {
                    piece = try await file.read(count: count, at: offset + position)
                    guard piece.readableBytes > 0 else { throw TYDFSError(.io, "\(file.path) became shorter while it was uploaded") }
                } catch let error as TYDFSError {
                    localError = error
                    throw error
                }
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
            progress.allow(extraSeconds: Limits.syncAllowanceSeconds(frameBytes: ChunkFrame.frameBytes(dataBytes: length)))
            return ByteBuffer(bytes: ChunkFrame.trailer(chunkCRC.value))
        }
        return nil
    }
}
