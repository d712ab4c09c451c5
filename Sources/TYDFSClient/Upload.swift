import AsyncHTTPClient
import Foundation
import NIOConcurrencyHelpers
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
    /// `attributes` are kept with the file.
    public func put(localPath: String, to remote: RemotePath, overwrite: Bool, attributes: [String: String] = [:]) async throws -> PutResult {
        if localPath == "-" {
            return try await put(.stream(LocalFile.standardStream(0, name: "standard input")), to: remote, overwrite: overwrite, attributes: { attributes })
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
        return try await put(.file(file, sizeBytes: try await file.size()), to: remote, overwrite: overwrite, attributes: { attributes })
    }

    /// Uploads what `stream` yields until it ends, spooled one chunk at a time as standard input
    /// is (an S3 gateway's request body). An error the stream throws, even at its very end,
    /// aborts the upload: nothing is committed. `attributes` is asked once the stream has ended
    /// (it may depend on the bytes, like an MD5) and is kept with the file.
    public func put(
        stream: some ByteStream, to remote: RemotePath, overwrite: Bool,
        attributes: @Sendable () throws -> [String: String] = { [:] }
    ) async throws -> PutResult {
        try await put(.stream(stream), to: remote, overwrite: overwrite, attributes: attributes)
    }

    /// Uploads a local file while another party is still appending to it: each chunk is sent,
    /// straight from the file, as soon as `file` holds it whole (or has ended), so the caller's
    /// close waits only for the last one (`tydfs mount` puts files being written this way). An
    /// error `file` throws aborts the upload: nothing is committed. `attributes` is asked once
    /// the file has ended and is kept with it.
    public func put(
        growing file: some GrowingFile, to remote: RemotePath, overwrite: Bool, attributes: @Sendable () throws -> [String: String] = { [:] }
    ) async throws -> PutResult {
        try await put(.growing(file), to: remote, overwrite: overwrite, attributes: attributes)
    }

    /// Uploads `bytes` (at most `Limits.maxInMemoryFileBytes`) to `remote`, exactly as a put of a
    /// local file with the same content: durable on every replica when it returns.
    public func put(
        bytes: ByteBuffer, to remote: RemotePath, overwrite: Bool, attributes: [String: String] = [:]
    ) async throws -> PutResult {
        guard bytes.readableBytes <= Limits.maxInMemoryFileBytes else {
            throw TYDFSError(.invalidArgument, "\(ByteSize.format(Int64(bytes.readableBytes))) is too large to put from memory (the limit is \(ByteSize.format(Limits.maxInMemoryFileBytes))); write it to a local file and put that")
        }
        return try await put(.memory(bytes), to: remote, overwrite: overwrite, attributes: { attributes })
    }

    private func put(
        _ source: UploadSource, to remote: RemotePath, overwrite: Bool, attributes: @Sendable () throws -> [String: String] = { [:] }
    ) async throws -> PutResult {
        // Names this put on every master it may meet: a leader that died after committing it
        // leaves the commit in the database, and reopening the put finds it there.
        let commitID = Self.newCommitID()
        let first = try await openUpload(remote, overwrite: overwrite, sourceBytes: source.sizeBytes, commitID: commitID)
        if let committed = first.committed { return PutResult(file: committed, warnings: []) }
        let upload = ResumableUpload(first) { stored in
            try await self.openUpload(remote, overwrite: overwrite, sourceBytes: nil, commitID: commitID, adopt: stored)
        }
        if let sizeBytes = source.sizeBytes { TransferMeter.current?.expect(sizeBytes) }
        let renewal = uploadRenewals.add { await self.renew(upload) }
        defer { uploadRenewals.remove(renewal) }
        do {
            return try await self.upload(from: source, into: upload, remote: remote, attributes: attributes)
        } catch let done as PutCommittedBeforeFailover {
            return PutResult(file: done.file, warnings: [])
        } catch {
            // Before the upload goes: a renewal that found it gone would reopen the put.
            await uploadRenewals.remove(renewal)?.value
            let uploadID = await upload.session.uploadID
            // In a task of its own: a put cancelled (SIGTERM) still tells the master to forget it.
            await Task { let _: [String: String]? = try? await control(.DELETE, Route.upload(uploadID), repeatable: true) }.value
            throw error
        }
    }

    /// 15 random letters and digits (89 bits): unique among the puts of one path, and short
    /// enough for Swift to keep inline in the master's namespace.
    static func newCommitID() -> String {
        let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
        return String((0..<15).map { _ in alphabet.randomElement()! })
    }

    /// Opens an upload and, when the source's size is known, has the master allocate the first
    /// chunk in the same call (so a one-chunk file costs two calls to the master: this and the
    /// commit). The master cuts the first chunk at its chunk size.
    /// `adopt`: the chunks stored so far, when the put is reopened after a failover.
    private func openUpload(
        _ remote: RemotePath, overwrite: Bool, sourceBytes: Int64?, commitID: String, adopt: [CommittedChunk] = []
    ) async throws -> UploadSession {
        let request = CreateUploadRequest(
            path: remote, overwrite: overwrite, firstChunkBytes: sourceBytes.flatMap { $0 > 0 ? $0 : nil }, commitID: commitID,
            adopt: adopt.isEmpty ? nil : adopt)
        if batchlessMasters.isMissing(at: masters.current) {
            return try await control(.POST, Route.uploads, body: request, repeatable: true)
        }
        return try await uploadOpens.ask(request) { items in
            try await self.sendBatch(items, to: Route.openUploads) {
                try await self.control(.POST, Route.uploads, body: $0, repeatable: true)
            }
        }
    }

    /// Commits a put of at most one chunk together with the others committed at the same time
    /// (`Route.commitUploads`); a bigger one alone, with time for its rows.
    private func commit(_ commit: CommitUploadRequest, of uploadID: String) async throws -> FileInfo {
        guard commit.chunks.count <= 1, !batchlessMasters.isMissing(at: masters.current) else {
            // A commit writes a few rows per chunk: give huge files the time that takes.
            return try await control(
                .POST, Route.uploadCommit(uploadID), body: commit, extraSeconds: Int64(commit.chunks.count / 1000), repeatable: true)
        }
        return try await uploadCommits.ask(UploadCommit(uploadID: uploadID, commit: commit)) { items in
            try await self.sendBatch(items, to: Route.commitUploads) {
                try await self.control(.POST, Route.uploadCommit($0.uploadID), body: $0.commit, repeatable: true)
            }
        }
    }

    /// Sends `items` in one batched request and returns each one's answer, in order. A master
    /// without the route (one from before batches) answers 404 to the whole request; the items
    /// are then sent each on its own with `alone`, all at once, as are the next ones for a while
    /// (`batchlessMasters`).
    private func sendBatch<Item: Codable & Sendable & CompactCodable, Answer: Codable & Sendable & CompactCodable>(
        _ items: [Item], to route: String, alone: @escaping @Sendable (Item) async throws -> Answer
    ) async throws -> [Result<Answer, any Error>] {
        let response: BatchResponse<Answer>
        do {
            response = try await controlCompact(.POST, route, body: BatchRequest(items: items), repeatable: true)
        } catch let error as TYDFSError where error.code == .notFound {
            batchlessMasters.missing(at: masters.current)
            return await items.concurrentMap { item in
                do { return .success(try await alone(item)) } catch { return .failure(error) }
            }
        }
        guard response.answers.count == items.count else {
            throw TYDFSError(.protocolViolation, "the master answered \(response.answers.count) of \(items.count) items of a batch")
        }
        return response.answers.map { answer in Result { try answer.get() } }
    }

    /// Renews `upload` once (`uploadRenewals` calls it every `Limits.uploadRenewSeconds`): a put
    /// waiting long for its source keeps its upload, and learns of a failover (reopening the put
    /// on the new leader, which adopts its chunks) while they are far from being taken for orphans.
    private func renew(_ upload: ResumableUpload) async {
        do {
            try await callLeader(about: upload) { session in
                let _: [String: String] = try await control(.POST, Route.uploadRenew(session.uploadID), repeatable: true)
            }
        } catch {
            logger.debug("renewing the upload failed; trying again later", metadata: ["error": "\(error)"])
        }
    }

    /// Makes `call` to the master about `upload`. When the leading master changed under the put
    /// (it died, stepped down, or restarted: its open uploads lived in its memory), the put is
    /// reopened on the master that leads now and `call` made again there, for up to
    /// `Limits.masterFailoverSeconds`. Chunks already stored stay where they are.
    private func callLeader<Answer: Sendable>(
        about upload: ResumableUpload, _ call: (UploadSession) async throws -> Answer
    ) async throws -> Answer {
        let giveUp = ContinuousClock.now + .seconds(Limits.masterFailoverSeconds)
        var stale: String?
        while true {
            let leader = masters.current
            var session: UploadSession?
            do {
                if let stale { try await upload.reopen(after: stale) }
                session = await upload.session
                return try await call(session!)
            } catch let error as TYDFSError
                where ContinuousClock.now < giveUp
                && (error.code == .notLeader || error.code == .uploadUnknown || (error.code == .unreachable && masters.current != leader)) {
                logger.info("the leading master changed during a put; resuming the put there", metadata: [
                    "from": "\(leader)", "to": "\(masters.current)", "error": "\(error.message)",
                ])
                stale = session?.uploadID ?? stale
            }
        }
    }

    /// Sends every chunk of `source`, then commits the file. A source of known size (a file,
    /// memory) has `Limits.parallelChunkUploads` chunks in flight at once; standard input is
    /// spooled and sent one chunk at a time. The whole file's CRC32C is combined from the chunks'.
    private func upload(
        from source: UploadSource, into upload: ResumableUpload, remote: RemotePath, attributes: @Sendable () throws -> [String: String]
    ) async throws -> PutResult {
        let session = upload.first
        func tooLarge() -> TYDFSError {
            TYDFSError(
                .invalidArgument,
                "\(remote) would have more than \(Limits.maxChunksPerFile) chunks of \(ByteSize.format(session.chunkSizeBytes)), the most a file may have (\(ByteSize.format(Limits.maxChunksPerFile * session.chunkSizeBytes)))")
        }
        if let sizeBytes = source.sizeBytes,
           sizeBytes / session.chunkSizeBytes + (sizeBytes % session.chunkSizeBytes == 0 ? 0 : 1) > Limits.maxChunksPerFile {
            throw tooLarge()
        }
        let avoided = FailedDataKeepers()
        var stored: [StoredChunk]
        switch source {
        case .stream(let input):
            stored = []
            let spool = try await ChunkSpool.create()
            defer { spool.discard() }
            while true {
                let length = try await spool.fill(from: input, upTo: session.chunkSizeBytes)
                if length <= 0 { break }
                guard stored.count < Limits.maxChunksPerFile else { throw tooLarge() }
                stored.append(try await uploadChunk(
                    index: stored.count, data: .file(spool.file, offset: 0), length: length, upload: upload,
                    allocation: stored.isEmpty ? session.firstChunk : nil, avoided: avoided))
            }
        case .growing(let input):
            stored = []
            var offset: Int64 = 0
            while true {
                let length = try await input.bytesAvailable(from: offset, upTo: session.chunkSizeBytes)
                if length <= 0 { break }
                guard stored.count < Limits.maxChunksPerFile else { throw tooLarge() }
                stored.append(try await uploadChunk(
                    index: stored.count, data: .file(input.file, offset: offset), length: length, upload: upload,
                    allocation: stored.isEmpty ? session.firstChunk : nil, avoided: avoided))
                offset += length
            }
        case .file, .memory:
            stored = try await uploadInParallel(source, sizeBytes: source.sizeBytes ?? 0, upload: upload, avoided: avoided)
        }
        if case .file(let file, let sizeBytes) = source, try await file.size() != sizeBytes {
            throw TYDFSError(.io, "the local file changed size while it was uploaded; nothing was stored")
        }
        let chunks = stored.map(\.chunk)
        var fileCRC: UInt32 = 0
        for chunk in chunks { fileCRC = CRC32C.combine(fileCRC, chunk.crc32c, length2: chunk.sizeBytes) }
        let sizeBytes = chunks.reduce(Int64(0)) { $0 + $1.sizeBytes }
        let given = try attributes()
        let file: FileInfo = try await callLeader(about: upload) { current in
            try await commit(CommitUploadRequest(
                sizeBytes: sizeBytes, crc32c: fileCRC, chunks: stored.map { $0.committed(in: current) }, attributes: given.isEmpty ? nil : given),
                of: current.uploadID)
        }
        var warnings = stored.flatMap(\.warnings)
        let fewest = chunks.map(\.replicas.count).min() ?? session.replication
        if fewest < session.replication {
            warnings.append("\(remote) is under-replicated: some chunks have only \(fewest) of \(session.replication) replicas; the master records it as under-replicated")
        }
        return PutResult(file: file, warnings: warnings)
    }

    /// Uploads the chunks of a source of known size, `Limits.parallelChunkUploads` at once;
    /// returns them in order.
    private func uploadInParallel(
        _ source: UploadSource, sizeBytes: Int64, upload: ResumableUpload, avoided: FailedDataKeepers
    ) async throws -> [StoredChunk] {
        let session = upload.first
        let count = Int((sizeBytes + session.chunkSizeBytes - 1) / session.chunkSizeBytes)
        func send(chunk index: Int) async throws -> StoredChunk {
            let offset = Int64(index) * session.chunkSizeBytes
            let length = min(session.chunkSizeBytes, sizeBytes - offset)
            let data: ChunkBytes
            switch source {
            case .file(let file, _): data = .file(file, offset: offset)
            case .memory(let bytes): data = .memory(bytes.getSlice(at: bytes.readerIndex + Int(offset), length: Int(length))!)
            case .stream, .growing: preconditionFailure("a stream is uploaded one chunk at a time")
            }
            return try await uploadChunk(
                index: index, data: data, length: length, upload: upload, allocation: index == 0 ? session.firstChunk : nil,
                avoided: avoided)
        }
        // Most files are one chunk: no task group for them.
        if count == 1 { return [try await send(chunk: 0)] }
        var stored = [StoredChunk?](repeating: nil, count: count)
        try await withThrowingTaskGroup(of: (Int, StoredChunk).self) { group in
            for index in 0..<count {
                if index >= Limits.parallelChunkUploads, let (done, chunk) = try await group.next() { stored[done] = chunk }
                group.addTask { (index, try await send(chunk: index)) }
            }
            for try await (done, chunk) in group { stored[done] = chunk }
        }
        return stored.map { $0! }
    }

    struct StoredChunk: Sendable {
        var chunk: CommittedChunk
        var warnings: [String]
        /// The upload that allocated the chunk, and the write token it came with.
        var uploadID: String
        var token: String?

        /// The chunk as the commit of `session` names it: with its token when another upload of
        /// the put (on a master that no longer leads) allocated it.
        func committed(in session: UploadSession) -> CommittedChunk {
            var chunk = chunk
            if uploadID != session.uploadID { chunk.token = token }
            return chunk
        }
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
        index: Int, data: ChunkBytes, length: Int64, upload: ResumableUpload, allocation: ChunkAllocation?,
        avoided: FailedDataKeepers
    ) async throws -> StoredChunk {
        let stored = try await storeChunk(
            index: index, data: data, length: length, upload: upload, allocation: allocation, avoided: avoided)
        await upload.record(stored)
        return stored
    }

    private func storeChunk(
        index: Int, data: ChunkBytes, length: Int64, upload: ResumableUpload, allocation given: ChunkAllocation?,
        avoided: FailedDataKeepers
    ) async throws -> StoredChunk {
        var lastError: TYDFSError?
        var best: StoredChunk?
        var given = given
        for _ in 0..<max(3, upload.first.replication + 1) {
            let allocation: ChunkAllocation
            let allocatedBy: String
            let avoiding = await avoided.all
            if let preallocated = given, Set(preallocated.targets.map(\.id)).isDisjoint(with: avoiding) {
                allocation = preallocated
                allocatedBy = upload.first.uploadID
                given = nil
            } else {
                given = nil
                do {
                    (allocation, allocatedBy) = try await callLeader(about: upload) { session in
                        let adopt = await upload.unadopted(by: session)
                        let answer: ChunkAllocation = try await control(
                            .POST, Route.uploadChunks(session.uploadID),
                            body: AllocateChunkRequest(
                                exclude: avoiding.sorted { $0.value < $1.value }, dataBytes: length, adopt: adopt.isEmpty ? nil : adopt),
                            repeatable: true)
                        await upload.adopted(adopt.map(\.id), by: session)
                        return (answer, session.uploadID)
                    }
                } catch let error as TYDFSError where error.code == .unavailable && (lastError != nil || best != nil) {
                    if let best { return best }
                    throw TYDFSError(.unavailable, "chunk \(index) could not be stored: \(lastError!.message); no other datakeeper is left to try")
                }
            }
            if let best, allocation.targets.count <= best.chunk.replicas.count {
                return best  // no pipeline the master can offer now stores more copies
            }
            let first = allocation.targets[0]
            let progress = TransferProgress(stallSeconds: Limits.writeStallSeconds(hops: allocation.targets.count))
            let producer = ChunkFrameProducer(data: data, length: length, progress: progress)
            let result: ChunkWriteResult
            do {
                if length <= Limits.batchedChunkMaxBytes, let token = allocation.token,
                   let batch = self.chunkBatches.coalescer(
                       for: PipelineHop.encode(allocation.targets.map { PipelineHop(id: $0.id.value, address: $0.address) }),
                       at: first.address) {
                    do {
                        // No stall guard: the frame is made from the local source, and the batch's
                        // own deadline (`Limits.chunkBatchSeconds`) bounds the rest.
                        result = try await self.sendInBatch(producer, length: length, token: token, through: allocation, with: batch)
                    } catch let error as TYDFSError where error.code == .notFound && producer.localError == nil {
                        // A datakeeper from before chunk batches: this chunk, and every later one, alone.
                        self.chunkBatches.withoutRoute.missing(at: first.address)
                        let again = producer.again()
                        progress.advance()  // the time the batch took is not this attempt's stall
                        result = try await StallGuard.run(progress) { try await self.send(again, length: length, through: allocation) }
                    }
                } else {
                    result = try await StallGuard.run(progress) { try await self.send(producer, length: length, through: allocation) }
                }
            } catch {
                if let local = producer.localError { throw local }
                let message = "datakeeper \(first.id) at \(first.address): \(PeerError.describe(error))"
                logger.warning("chunk upload failed, retrying elsewhere", metadata: ["chunk.index": "\(index)", "error": "\(message)"])
                lastError = TYDFSError(.unreachable, message)
                await avoided.add(first.id)
                continue
            }
            guard result.crc32c == producer.chunkCRC, result.dataBytes == length, !result.stored.isEmpty else {
                throw TYDFSError(.checksumMismatch, "datakeeper \(first.id) acknowledged chunk \(index) with a different checksum or size")
            }
            let stored = StoredChunk(
                chunk: CommittedChunk(index: index, id: allocation.chunkID, sizeBytes: length, crc32c: result.crc32c, replicas: result.stored),
                warnings: result.failures.map { "chunk \(index): replica not stored on \($0)" },
                uploadID: allocatedBy, token: allocation.token)
            guard let failedHop = allocation.targets.first(where: { !result.stored.contains($0.id) }) else { return stored }
            // A hop further down failed: keep this result, and try a whole pipeline without that hop.
            logger.warning("pipeline hop failed, sending the chunk again without it", metadata: [
                "chunk.index": "\(index)", "datakeeper.id": "\(failedHop.id)", "stored": "\(result.stored.count)",
                "error": "\(result.failures.joined(separator: "; "))",
            ])
            if best == nil || stored.chunk.replicas.count > best!.chunk.replicas.count { best = stored }
            lastError = TYDFSError(.unreachable, result.failures.first ?? "datakeeper \(failedHop.id) did not store the chunk")
            await avoided.add(failedHop.id)
        }
        if let best { return best }
        throw lastError ?? TYDFSError(.unavailable, "chunk \(index) could not be stored")
    }

    /// One attempt: streams the chunk's frame to the first datakeeper of `allocation`, naming the
    /// rest of the pipeline, and returns its answer.
    private func send(_ producer: ChunkFrameProducer, length: Int64, through allocation: ChunkAllocation) async throws -> ChunkWriteResult {
        let first = allocation.targets[0]
        var request = HTTPClientRequest(url: "\(scheme)://\(first.address)\(Route.chunk(allocation.chunkID.value))")
        request.method = .PUT
        request.carryRequestID()
        if let token = allocation.token { request.headers.add(name: Header.chunkToken, value: token) }
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

extension TYDFSClient {
    /// One attempt for a small chunk: its frame, made in memory, goes with the other small
    /// chunks written down the same pipeline meanwhile, in one chunk batch (`Route.chunkBatch`),
    /// and is answered on its own.
    fileprivate func sendInBatch(
        _ producer: ChunkFrameProducer, length: Int64, token: String, through allocation: ChunkAllocation,
        with batch: RequestCoalescer<ChunkInBatch, ChunkWriteResult>
    ) async throws -> ChunkWriteResult {
        var frame = ByteBuffer()
        frame.reserveCapacity(Int(ChunkFrame.frameBytes(dataBytes: length)))
        while var piece = try await producer.next() { frame.writeBuffer(&piece) }
        let pipeline = allocation.targets.map { PipelineHop(id: $0.id.value, address: $0.address) }
        let chunk = ChunkInBatch(chunk: BatchedChunk(chunk: allocation.chunkID, dataBytes: length, token: token), frame: frame)
        return try await batch.ask(chunk) { chunks in try await self.sendChunkBatch(chunks, through: pipeline) }
    }

    /// Sends `chunks` in one `PUT` of `Route.chunkBatch` to the first datakeeper of `pipeline`.
    private func sendChunkBatch(_ chunks: [ChunkInBatch], through pipeline: [PipelineHop]) async throws -> [Result<ChunkWriteResult, any Error>] {
        let answers = try await Self.sendChunkBatch(chunks.map(\.chunk), frames: chunks.map(\.frame), down: pipeline, scheme: scheme, with: http)
        return answers.map { answer in Result { try answer.get() } }
    }

    /// One `PUT` of `Route.chunkBatch` to the first datakeeper of `pipeline`, naming the rest:
    /// the answer for each of `chunks`, whose frames `frames` holds in the same order. Used by
    /// clients and by datakeepers forwarding a batch. A batch is small: the whole exchange gets
    /// `Limits.chunkBatchSeconds`, less for each hop further down, so the hop above a hung one
    /// reports it in time.
    public static func sendChunkBatch(
        _ chunks: [BatchedChunk], frames: [ByteBuffer], down pipeline: [PipelineHop], scheme: String, with http: HTTPClient
    ) async throws -> [BatchAnswer<ChunkWriteResult>] {
        let first = pipeline[0]
        var body = ByteBuffer()
        body.reserveCapacity(frames.reduce(0) { $0 + $1.readableBytes })
        for frame in frames { body.writeImmutableBuffer(frame) }
        var request = HTTPClientRequest(url: "\(scheme)://\(first.address)\(Route.chunkBatch)")
        request.method = .PUT
        request.carryRequestID()
        request.headers.add(name: Header.chunks, value: BatchedChunk.encode(chunks))
        request.headers.add(name: Header.forward, value: PipelineHop.encode(Array(pipeline.dropFirst())))
        request.headers.add(name: "Accept", value: CompactCodec.contentType)
        request.body = .bytes(body)
        let seconds = Limits.chunkBatchSeconds(frameBytes: Int64(body.readableBytes), hops: pipeline.count)
        let response: HTTPClientResponse
        let payload: ByteBuffer
        do {
            response = try await http.execute(request, timeout: .milliseconds(Int64(seconds * 1000)))
            payload = try await response.body.collect(upTo: Limits.maxControlMessageBytes)
        } catch let error as HTTPClientError where error == .deadlineExceeded {
            throw TYDFSError(.unreachable, "did not answer a chunk batch within \(StallGuard.formatSeconds(seconds)) s (hung?); abandoned it")
        }
        let answers = try PeerError.decode(BatchResponse<ChunkWriteResult>.self, from: response, payload: payload, peer: "datakeeper \(first.id)").answers
        guard answers.count == chunks.count else {
            throw TYDFSError(.protocolViolation, "datakeeper \(first.id) answered \(answers.count) of \(chunks.count) chunks of a batch")
        }
        return answers
    }
}

/// A small chunk waiting to go in a chunk batch: its header entry and its whole frame.
struct ChunkInBatch: Sendable {
    var chunk: BatchedChunk
    var frame: ByteBuffer
}

/// Where the bytes of a put come from.
enum UploadSource {
    /// A regular local file: its size is known and any chunk can be re-read for a retry.
    case file(LocalFile, sizeBytes: Int64)
    /// A stream read once (standard input, a request body): spooled one chunk at a time.
    case stream(any ByteStream)
    /// Bytes in memory.
    case memory(ByteBuffer)
    /// A local file still being written, sent chunk by chunk as it fills.
    case growing(any GrowingFile)

    /// The whole source's size, when known before it is read.
    var sizeBytes: Int64? {
        switch self {
        case .file(_, let sizeBytes): sizeBytes
        case .stream, .growing: nil
        case .memory(let bytes): Int64(bytes.readableBytes)
        }
    }
}

/// The upload a put writes into, across changes of the leading master (issue 17). An upload
/// lives in the memory of the master that opened it, so when that master dies or steps down the
/// put is reopened on the new leader under the same commit id, and goes on from where it was:
/// chunks already stored stay on their datakeepers, and the new upload adopts them on the write
/// tokens they were allocated with (at the reopen, with the next allocation for chunks that
/// finish later, or at the latest with the commit). Nothing is sent twice, and a source read once
/// (standard input, an S3 request body, a file written through the mount) survives a failover as
/// a local file does.
actor ResumableUpload {
    /// The upload the put opened first: the chunk size, the replication and the first chunk's
    /// pipeline come from it.
    nonisolated let first: UploadSession
    /// The upload the put writes into now.
    private(set) var session: UploadSession
    /// Every chunk stored so far, with the write token it was allocated with.
    private var stored: [ChunkID: CommittedChunk] = [:]
    /// Chunks stored through an earlier upload that the current one has not adopted yet.
    private var unadopted: Set<ChunkID> = []
    private let open: @Sendable ([CommittedChunk]) async throws -> UploadSession
    /// The reopen under way: the upload it replaces, the chunks it adopts, and the call.
    private var reopening: (stale: String, sent: Set<ChunkID>, task: Task<UploadSession, Error>)?

    /// `open` opens the put again on the leading master (same path, same commit id), adopting
    /// the chunks it is given.
    init(_ first: UploadSession, open: @escaping @Sendable ([CommittedChunk]) async throws -> UploadSession) {
        self.first = first
        self.session = first
        self.open = open
    }

    /// Notes a chunk stored (through the upload that allocated it).
    func record(_ chunk: TYDFSClient.StoredChunk) {
        var committed = chunk.chunk
        committed.token = chunk.token
        stored[committed.id] = committed
        if chunk.uploadID != session.uploadID { unadopted.insert(committed.id) }
    }

    /// The chunks `session`, if still current, has yet to adopt.
    func unadopted(by session: UploadSession) -> [CommittedChunk] {
        guard session.uploadID == self.session.uploadID else { return [] }
        return unadopted.compactMap { stored[$0] }
    }

    /// `session` adopted `chunks` (the master accepted them).
    func adopted(_ chunks: [ChunkID], by session: UploadSession) {
        guard session.uploadID == self.session.uploadID else { return }
        unadopted.subtract(chunks)
    }

    /// Opens the put again, adopting every chunk stored so far, unless another chunk's task
    /// already replaced upload `stale`. Throws `PutCommittedBeforeFailover` when the master that
    /// led committed the put before it went.
    func reopen(after stale: String) async throws {
        guard session.uploadID == stale else { return }
        let task: Task<UploadSession, Error>
        let sent: Set<ChunkID>
        if let reopening, reopening.stale == stale {
            (task, sent) = (reopening.task, reopening.sent)
        } else {
            sent = Set(stored.keys)
            task = Task { [open, stored] in try await open(Array(stored.values)) }
            reopening = (stale, sent, task)
        }
        defer { if reopening?.task == task { reopening = nil } }
        let fresh = try await task.value
        if let file = fresh.committed { throw PutCommittedBeforeFailover(file: file) }
        guard session.uploadID == stale else { return }  // a joiner after the first to finish
        session = fresh
        // Chunks stored while the reopen was under way were not in it.
        unadopted = Set(stored.keys).subtracting(sent)
    }
}

/// A put reopened after a failover found its commit already made: it is done.
struct PutCommittedBeforeFailover: Error {
    var file: FileInfo
}

/// A local file another party appends to while it is put (`put(growing:)`).
public protocol GrowingFile: Sendable {
    /// The file, open for reading; bytes below what `bytesAvailable` reported are final.
    var file: LocalFile { get }
    /// Waits until the file holds `limit` bytes from `offset`, or has ended; returns how many
    /// it holds there (0 at the end). Throws to abort the put.
    func bytesAvailable(from offset: Int64, upTo limit: Int64) async throws -> Int64
}

/// Bytes read once, piece by piece: standard input, or an HTTP request body.
public protocol ByteStream: Sendable {
    /// The next piece, at most `count` bytes; an empty buffer once the stream has ended.
    func read(upTo count: Int) async throws -> ByteBuffer
}

extension LocalFile: ByteStream {
    public func read(upTo count: Int) async throws -> ByteBuffer { try await read(count: count, at: nil) }
}

/// One chunk's data, re-readable for a retry: a range of a local file (the source or the
/// spool) or a slice of memory.
enum ChunkBytes {
    case file(LocalFile, offset: Int64)
    case memory(ByteBuffer)
}

/// Produces one chunk's frame, piece by piece as the HTTP client asks for it: the data, then
/// its block checksums, computed in the same pass as the data is read.
///
/// Unchecked Sendable: `position`, `trailerSent` and `checksums` are touched only by `next()`,
/// which the HTTP client calls one at a time (it iterates the body as a sequence) and the
/// caller reads `chunkCRC` only after the request finished; what another task may read while a
/// body still streams (`localError`) is behind a lock.
final class ChunkFrameProducer: @unchecked Sendable {
    private let data: ChunkBytes
    private let length: Int64
    private var position: Int64 = 0
    private var trailerSent = false
    private var checksums = BlockChecksums()
    /// A failure reading the local file, told apart from network failures (no retry helps it).
    /// Locked: an abandoned attempt's body stream may still be running when the caller looks.
    private let localFailure: NIOLockedValueBox<TYDFSError?>
    var localError: TYDFSError? { localFailure.withLockedValue { $0 } }
    /// Told when the HTTP client takes the next piece (the datakeeper accepted the last one),
    /// and given the fsync allowance once the whole frame is out.
    private let progress: TransferProgress

    /// The operation's meter, taken here: the HTTP client pulls `next()` from tasks of its own.
    private let meter = TransferMeter.current

    convenience init(data: ChunkBytes, length: Int64, progress: TransferProgress) {
        self.init(data: data, length: length, progress: progress, localFailure: NIOLockedValueBox(nil))
    }

    private init(data: ChunkBytes, length: Int64, progress: TransferProgress, localFailure: NIOLockedValueBox<TYDFSError?>) {
        self.data = data
        self.length = length
        self.progress = progress
        self.localFailure = localFailure
    }

    /// A producer of the same frame from its start, for another attempt; a local read failure
    /// of either shows in both (`localError`).
    func again() -> ChunkFrameProducer {
        ChunkFrameProducer(data: data, length: length, progress: progress, localFailure: localFailure)
    }

    /// The CRC32C of the chunk's data, once all of it was produced.
    var chunkCRC: UInt32 { checksums.whole }

    func next() async throws -> ByteBuffer? {
        if trailerSent {
            progress.allow(extraSeconds: Limits.syncAllowanceSeconds(frameBytes: ChunkFrame.frameBytes(dataBytes: length)))
        } else {
            progress.pause()  // the datakeeper took the last piece; reading the next is our time
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
                    localFailure.withLockedValue { $0 = error }
                    throw error
                }
            }
            piece.withUnsafeReadableBytes { checksums.update($0) }
            meter?.add(piece.readableBytes)
            position += Int64(piece.readableBytes)
            progress.advance()
            return piece
        }
        if !trailerSent {
            trailerSent = true
            progress.allow(extraSeconds: Limits.syncAllowanceSeconds(frameBytes: ChunkFrame.frameBytes(dataBytes: length)))
            return ByteBuffer(bytes: ChunkFrame.trailer(blockCRCs: checksums.all))
        }
        return nil
    }
}
