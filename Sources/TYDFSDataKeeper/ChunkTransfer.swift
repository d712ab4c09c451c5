import AsyncAlgorithms
import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import TYDFSClient
import TYDFSCore
import TYDFSFileIO
import TYDFSProtocol
import TYDFSSecurity
import TYDFSServerSupport

/// The datakeeper's data path: receiving a chunk (storing it and forwarding it down the write
/// pipeline at the same time) and serving a chunk, verifying its checksum on the way out.
struct ChunkTransfer: Sendable {
    let id: DataKeeperID
    let store: ChunkStore
    let counters: TransferCounters
    let events: DataKeeperEvents
    let httpClient: HTTPClient
    /// Checks the chunk tokens of requests.
    let secret: ClusterSecret
    /// How other datakeepers are reached: as the master is (`http` or `https`).
    let scheme: String
    let logger: Logger

    // MARK: - Write

    /// Stores the chunk arriving in `body` and forwards it to `downstream`, the rest of the
    /// pipeline. Answers once the chunk is durable here and the next hop has answered.
    /// `token` (already checked) goes down the pipeline with the chunk.
    func receive(_ chunk: ChunkID, dataBytes: Int64, body: RequestBody, downstream: [PipelineHop], token: String) async throws -> ChunkWriteResult {
        try await store.reserve(chunk, frameBytes: ChunkFrame.frameBytes(dataBytes: dataBytes))
        counters.begin()
        defer { counters.end() }
        let forwarding = PipelineForwarding(frameBytes: ChunkFrame.frameBytes(dataBytes: dataBytes), downstreamHops: downstream.count)
        async let downstreamResult = forward(chunk, dataBytes: dataBytes, from: forwarding, to: downstream, token: token)
        let crc: UInt32
        do {
            crc = try await storeReserved(chunk, dataBytes: dataBytes, from: body, forwarding: downstream.isEmpty ? nil : forwarding)
        } catch {
            forwarding.fail(error)
            _ = await downstreamResult
            throw error
        }
        let next = await downstreamResult
        counters.received(dataBytes: dataBytes)
        logger.debug("chunk stored", metadata: ["chunk.id": "\(chunk)", "bytes": "\(dataBytes)"])
        return ChunkWriteResult(stored: [id] + next.stored, dataBytes: dataBytes, crc32c: crc, failures: next.failures)
    }

    /// Stores the small chunks of a batch, whose frames arrive one after another in `body`, and
    /// forwards the ones it takes to `downstream`. A chunk is taken when it is allowed (`refused`
    /// holds why not), has room here and an intact frame; the others are answered with their
    /// error and go no further. The chunks taken are stored at once, so they share one
    /// `fdatasync`, and each is answered on its own: stored here and further down, or the error
    /// that kept it from being stored here (the client then sends it again elsewhere).
    func receive(
        _ chunks: [BatchedChunk], refused: [TYDFSError?], body: RequestBody, downstream: [PipelineHop]
    ) async throws -> BatchResponse<ChunkWriteResult> {
        let frameBytes = chunks.map { Int(ChunkFrame.frameBytes(dataBytes: $0.dataBytes)) }
        let total = frameBytes.reduce(0, +)
        let body = try await body.collect(upTo: total)
        guard body.readableBytes == total else {
            throw TYDFSError(.invalidArgument, "the batch's body holds \(body.readableBytes) bytes; its chunks' frames make \(total)")
        }
        counters.begin()
        defer { counters.end() }
        var frames: [ByteBuffer] = []
        var offset = body.readerIndex
        for bytes in frameBytes {
            frames.append(body.getSlice(at: offset, length: bytes)!)
            offset += bytes
        }
        var outcomes = [Result<ChunkWriteResult, TYDFSError>?](repeating: nil, count: chunks.count)
        var taken: [(index: Int, crc: UInt32)] = []
        for (index, chunk) in chunks.enumerated() {
            do {
                if let refusal = refused[index] { throw refusal }
                let crc = try Self.verifyFrame(frames[index]).crc
                try await store.reserve(chunk.chunk, frameBytes: Int64(frameBytes[index]))
                taken.append((index, crc))
            } catch {
                outcomes[index] = .failure(TYDFSError.from(error))
            }
        }
        let forwardedChunks = taken.map { chunks[$0.index] }, forwardedFrames = taken.map { frames[$0.index] }
        async let downstreamResults = forward(forwardedChunks, frames: forwardedFrames, to: downstream)
        // Verified above: written together, in one write and one fdatasync.
        let stored: Result<Void, TYDFSError>
        do {
            try await store.commitToVolume(frames: taken.map { (chunks[$0.index].chunk, frames[$0.index]) })
            stored = .success(())
        } catch {
            stored = .failure(TYDFSError.from(error))
        }
        let below = await downstreamResults
        for (position, (index, crc)) in taken.enumerated() {
            let chunk = chunks[index]
            outcomes[index] = stored.map {
                counters.received(dataBytes: chunk.dataBytes)
                logger.debug("chunk stored", metadata: ["chunk.id": "\(chunk.chunk)", "bytes": "\(chunk.dataBytes)", "batch": "\(chunks.count)"])
                return ChunkWriteResult(stored: [id] + below[position].stored, dataBytes: chunk.dataBytes, crc32c: crc, failures: below[position].failures)
            }
        }
        return BatchResponse(answers: outcomes.map { BatchAnswer($0!) })
    }

    /// Receives a reserved chunk's frame from `body`, verifies it (and its CRC32C against
    /// `expectedCRC`, when given) and stores it durably: a small chunk in a volume, a large one
    /// in a file of its own. Every buffer is also handed to `forwarding`, concurrently with the
    /// disk write. On failure the reservation is released and nothing is stored.
    func storeReserved<Body: AsyncSequence>(
        _ chunk: ChunkID, dataBytes: Int64, from body: Body, forwarding: PipelineForwarding?,
        expectedCRC: UInt32? = nil
    ) async throws -> UInt32 where Body.Element == ByteBuffer {
        let frameBytes = ChunkFrame.frameBytes(dataBytes: dataBytes)
        if frameBytes <= Limits.volumeChunkMaxBytes {
            return try await storeInVolume(chunk, dataBytes: dataBytes, from: body, forwarding: forwarding, expectedCRC: expectedCRC)
        }
        return try await storeInOwnFile(chunk, dataBytes: dataBytes, from: body, forwarding: forwarding, expectedCRC: expectedCRC)
    }

    /// The small-chunk path: the frame is gathered in memory behind its record header (one
    /// copy, at most `Limits.volumeChunkMaxBytes`), verified, then appended to a volume in one write.
    func storeInVolume<Body: AsyncSequence>(
        _ chunk: ChunkID, dataBytes: Int64, from body: Body, forwarding: PipelineForwarding?,
        expectedCRC: UInt32?
    ) async throws -> UInt32 where Body.Element == ByteBuffer {
        let frameBytes = ChunkFrame.frameBytes(dataBytes: dataBytes)
        do {
            var record = ByteBuffer()
            record.reserveCapacity(VolumeRecord.headerBytes + Int(frameBytes))
            record.writeBytes(VolumeRecord.chunkHeader(chunk, frameBytes: frameBytes))
            let crc = try await receiveFrame(body, dataBytes: dataBytes, into: &record, writingTo: nil, forwarding: forwarding)
            try check(crc, expected: expectedCRC)
            try await store.commitToVolume(chunk, record: record)
            return crc
        } catch {
            await store.abandon(chunk, temporaryPath: nil)
            throw error
        }
    }

    /// The large-chunk path: written to a temporary file as it arrives, fsynced, renamed into place.
    func storeInOwnFile<Body: AsyncSequence>(
        _ chunk: ChunkID, dataBytes: Int64, from body: Body, forwarding: PipelineForwarding?,
        expectedCRC: UInt32?
    ) async throws -> UInt32 where Body.Element == ByteBuffer {
        let temporaryPath = store.temporaryPath(for: chunk)
        do {
            let file = try await LocalFile.create(temporaryPath)
            defer { try? file.close() }
            var unused = ByteBuffer()
            let crc = try await receiveFrame(body, dataBytes: dataBytes, into: &unused, writingTo: file, forwarding: forwarding)
            try await file.sync()
            try check(crc, expected: expectedCRC)
            await file.dropCachedPages()
            try await store.commitOwnFile(chunk, temporaryPath: temporaryPath, frameBytes: ChunkFrame.frameBytes(dataBytes: dataBytes))
            return crc
        } catch {
            await store.abandon(chunk, temporaryPath: temporaryPath)
            throw error
        }
    }

    /// Reads the frame from `body`, verifying it, and returns its CRC32C. With a `file`, the
    /// buffers received are appended to it (as they came, without copying them) whenever an I/O
    /// buffer's worth has arrived, and `memory` is left alone; without, the frame is gathered in
    /// `memory`. Every buffer is also handed to `forwarding`, concurrently with the disk write.
    private func receiveFrame<Body: AsyncSequence>(
        _ body: Body, dataBytes: Int64, into memory: inout ByteBuffer, writingTo file: LocalFile?,
        forwarding: PipelineForwarding?
    ) async throws -> UInt32 where Body.Element == ByteBuffer {
        var reader = ChunkFrameReader(dataBytes: dataBytes)
        var pending: [ByteBuffer] = []
        var pendingBytes = 0
        for try await buffer in body {
            try buffer.withUnsafeReadableBytes { try reader.consume($0) { _ in } }
            guard let file else {
                memory.writeImmutableBuffer(buffer)
                if let forwarding { await forwarding.send(buffer) }
                continue
            }
            pending.append(buffer)
            pendingBytes += buffer.readableBytes
            if pendingBytes >= Limits.ioBufferBytes {
                let full = pending
                pending.removeAll(keepingCapacity: true)
                pendingBytes = 0
                async let written: Void = file.append(full, startingWriteback: true)
                if let forwarding { await forwarding.send(buffer) }
                try await written
            } else if let forwarding {
                await forwarding.send(buffer)
            }
        }
        // Every byte went down the pipeline: the next hop's answer is due from now, while this
        // hop makes its own copy durable, not only after.
        forwarding?.finish()
        if let file, !pending.isEmpty { try await file.append(pending, startingWriteback: false) }
        return try reader.finish()
    }

    private func check(_ crc: UInt32, expected: UInt32?) throws {
        if let expected, crc != expected {
            throw TYDFSError(.checksumMismatch, "sent a chunk with crc32c \(hex32(crc)), expected \(hex32(expected))")
        }
    }

    private struct DownstreamResult: Sendable {
        var stored: [DataKeeperID] = []
        var failures: [String] = []
    }

    /// Sends the chunk to the next datakeeper of the pipeline, which forwards it further.
    /// Never throws: a failure down the pipeline is reported, and this replica still counts.
    /// A next hop that stops taking bytes or answering is abandoned after
    /// `Limits.writeStallSeconds(hops:)`, before the hop above this one gives up on this one.
    private func forward(
        _ chunk: ChunkID, dataBytes: Int64, from source: PipelineForwarding, to hops: [PipelineHop], token: String
    ) async -> DownstreamResult {
        guard let next = hops.first else { return DownstreamResult() }
        defer { source.channel.finish() }
        var request = HTTPClientRequest(url: "\(scheme)://\(next.address)\(Route.chunk(chunk.value))")
        request.method = .PUT
        request.carryRequestID()
        request.headers.add(name: Header.chunkToken, value: token)
        request.headers.add(name: Header.dataBytes, value: String(dataBytes))
        request.headers.add(name: Header.forward, value: PipelineHop.encode(Array(hops.dropFirst())))
        request.body = .stream(source.channel, length: .known(ChunkFrame.frameBytes(dataBytes: dataBytes)))
        let httpClient = self.httpClient
        do {
            let deadline = Limits.transferDeadlineSeconds(frameBytes: ChunkFrame.frameBytes(dataBytes: dataBytes), hops: hops.count)
            let result = try await StallGuard.run(source.progress) { [request] in
                let response = try await httpClient.execute(request, timeout: .seconds(deadline))
                let body = try await response.body.collect(upTo: Limits.maxControlMessageBytes)
                return try PeerError.decode(ChunkWriteResult.self, status: response.status, payload: body, peer: "datakeeper \(next.id)")
            }
            return DownstreamResult(stored: result.stored, failures: result.failures)
        } catch {
            let message = PeerError.describe(error)
            logger.warning("forwarding failed", metadata: ["chunk.id": "\(chunk)", "datakeeper.address": "\(next.address)", "error": "\(message)"])
            return DownstreamResult(failures: ["\(next.id) (\(next.address)): \(message)"] + hops.dropFirst().map { "\($0.id): not reached" })
        }
    }

    /// Sends a chunk batch to the next datakeeper of the pipeline, which forwards it further.
    /// Never throws: a failure down the pipeline is reported for each chunk it concerns. A next
    /// hop without the batch route (one from before it) gets the chunks one by one.
    private func forward(_ chunks: [BatchedChunk], frames: [ByteBuffer], to hops: [PipelineHop]) async -> [DownstreamResult] {
        guard let next = hops.first, !chunks.isEmpty else { return chunks.map { _ in DownstreamResult() } }
        let unreached = hops.dropFirst().map { "\($0.id): not reached" }
        do {
            let answers = try await TYDFSClient.sendChunkBatch(chunks, frames: frames, down: hops, scheme: scheme, with: httpClient)
            return answers.map { answer in
                do {
                    let result = try answer.get()
                    return DownstreamResult(stored: result.stored, failures: result.failures)
                } catch {
                    return DownstreamResult(failures: ["\(next.id) (\(next.address)): \(PeerError.describe(error))"] + unreached)
                }
            }
        } catch let error as TYDFSError where error.code == .notFound {
            return await forwardOneByOne(chunks, frames: frames, to: hops)
        } catch {
            let message = PeerError.describe(error)
            logger.warning("forwarding a chunk batch failed", metadata: [
                "chunks": "\(chunks.count)", "datakeeper.address": "\(next.address)", "error": "\(message)",
            ])
            return chunks.map { _ in DownstreamResult(failures: ["\(next.id) (\(next.address)): \(message)"] + unreached) }
        }
    }

    /// The chunks of a batch forwarded each in a request of its own, all at once.
    private func forwardOneByOne(_ chunks: [BatchedChunk], frames: [ByteBuffer], to hops: [PipelineHop]) async -> [DownstreamResult] {
        await Array(zip(chunks, frames)).concurrentMap { chunk, frame in
            let forwarding = PipelineForwarding(frameBytes: Int64(frame.readableBytes), downstreamHops: hops.count)
            async let result = forward(chunk.chunk, dataBytes: chunk.dataBytes, from: forwarding, to: hops, token: chunk.token)
            await forwarding.send(frame)
            forwarding.finish()
            return await result
        }
    }

    // MARK: - Read

    /// A response streaming the chunk's frame, or the frame of a block-aligned `range` of it
    /// (its blocks' data, then their checksums). Every block is checked against its checksum
    /// before it is sent, so a corrupt replica ends in an error or a cut-off response, never in
    /// bad bytes passed off as good; it is then taken out of service and reported.
    func serve(_ chunk: ChunkID, range: (offset: Int64, length: Int64)? = nil) async throws -> Response {
        switch await store.placement(of: chunk) {
        case nil: throw TYDFSError(.notFound, "chunk \(chunk) is not on this datakeeper")
        case .volume: return try await serveFromVolume(chunk, range: range)
        case .ownFile(let path): return try await serveOwnFile(chunk, path: path, range: range)
        }
    }

    /// A chunk from a volume is small: read whole and verified before anything is sent, so a
    /// corrupt one is refused with an error rather than cut off.
    private func serveFromVolume(_ chunk: ChunkID, range requested: (offset: Int64, length: Int64)?) async throws -> Response {
        let (frame, dataBytes) = try await outOfServiceIfCorrupt(chunk) {
            guard let read = try await store.readVolumeFrame(chunk) else {
                throw TYDFSError(.notFound, "chunk \(chunk) is not on this datakeeper")
            }
            return (read, try Self.verifyFrame(read).dataBytes)
        }
        let range = try Self.range(requested, dataBytes: dataBytes)
        var body = frame.getSlice(at: frame.readerIndex + Int(range.offset), length: Int(range.length))!
        var trailer = frame.getSlice(
            at: frame.readerIndex + Int(dataBytes + 4 * range.firstBlock),
            length: Int(ChunkFrame.trailerBytes(dataBytes: range.length)))!
        body.writeBuffer(&trailer)
        let counters = self.counters
        let response = ResponseBody(contentLength: body.readableBytes) { [body] writer in
            counters.begin()
            defer { counters.end() }
            try await writer.write(body)
            try await writer.finish(nil)
            counters.served(dataBytes: range.length)
        }
        return Response(status: .ok, headers: chunkHeaders(dataBytes: range.length), body: response)
    }

    /// The answer to a batched read (`GET` of `Route.chunkBatch`): each of `chunks` read whole
    /// and verified on its own, all at once, then answered with its own status
    /// (`Header.chunkStatuses`): 200 and its frame in the body, or why not — `refused` (why it
    /// may not be read, nil when allowed), the error a read of it alone would have had, or 400
    /// when it is held at another size than the caller expects (or is too large for a batch).
    /// A corrupt chunk is taken out of service and reported, as on a single read.
    func serveWhole(_ chunks: [BatchedChunk], refused: [TYDFSError?]) async -> Response {
        var statuses = refused.map { $0.map { Int($0.status.code) } ?? 200 }
        let allowed = chunks.indices.filter { refused[$0] == nil }
        let read = await allowed.map { chunks[$0] }.concurrentMap { chunk -> Result<ByteBuffer, TYDFSError> in
            do {
                let (frame, held) = try await self.outOfServiceIfCorrupt(chunk.chunk) {
                    let frame = try await self.readWholeFrame(chunk.chunk)
                    return (frame, try Self.verifyFrame(frame).dataBytes)
                }
                guard held == chunk.dataBytes else {
                    return .failure(TYDFSError(.invalidArgument, "chunk \(chunk.chunk) holds \(held) bytes here, not \(chunk.dataBytes)"))
                }
                return .success(frame)
            } catch {
                return .failure(TYDFSError.from(error))
            }
        }
        var served: [(frame: ByteBuffer, dataBytes: Int64)] = []
        for (index, result) in zip(allowed, read) {
            switch result {
            case .success(let frame): served.append((frame, chunks[index].dataBytes))
            case .failure(let error): statuses[index] = Int(error.status.code)
            }
        }
        let counters = self.counters
        // Each frame goes out as it is (no copy into one buffer), counted as a transfer while it does.
        let body = ResponseBody(contentLength: served.reduce(0) { $0 + $1.frame.readableBytes }) { [served] writer in
            for (frame, dataBytes) in served {
                counters.begin()
                defer { counters.end() }
                try await writer.write(frame)
                counters.served(dataBytes: dataBytes)
            }
            try await writer.finish(nil)
        }
        var headers = HTTPFields()
        headers[.contentType] = "application/octet-stream"
        headers[.tydfsChunkStatuses] = ChunkStatusList.encode(statuses)
        return Response(status: .ok, headers: headers, body: body)
    }

    /// Runs `read`, which reads and verifies `chunk`'s frame; a frame that proves corrupt is not
    /// served: it is logged, the chunk is taken out of service and reported, and the error stands.
    private func outOfServiceIfCorrupt<Read>(_ chunk: ChunkID, _ read: () async throws -> Read) async throws -> Read {
        do {
            return try await read()
        } catch let error as TYDFSError where error.code == .checksumMismatch || error.code == .protocolViolation {
            logger.error("corrupt chunk not served", metadata: ["chunk.id": "\(chunk)", "error": "\(error)"])
            await reportBad(chunk)
            throw error
        }
    }

    /// A small chunk's whole frame, from its volume or its own file (at most
    /// `Limits.batchedChunkMaxBytes` of data is read: a larger one is refused).
    private func readWholeFrame(_ chunk: ChunkID) async throws -> ByteBuffer {
        let frameLimit = ChunkFrame.frameBytes(dataBytes: Limits.batchedChunkMaxBytes)
        switch await store.placement(of: chunk) {
        case nil:
            throw TYDFSError(.notFound, "chunk \(chunk) is not on this datakeeper")
        case .volume(let frameBytes):
            guard frameBytes <= frameLimit else {
                throw TYDFSError(.invalidArgument, "chunk \(chunk) is larger than a batched read takes; read it alone")
            }
            guard let frame = try await store.readVolumeFrame(chunk) else {
                throw TYDFSError(.notFound, "chunk \(chunk) is not on this datakeeper")
            }
            return frame
        case .ownFile(let path):
            guard let frameBytes = LocalFileSystem.fileSize(path) else {
                throw TYDFSError(.notFound, "chunk \(chunk) is not on this datakeeper")
            }
            guard frameBytes <= frameLimit else {
                throw TYDFSError(.invalidArgument, "chunk \(chunk) is larger than a batched read takes; read it alone")
            }
            let file = try await LocalFile.openForReading(path)
            defer { try? file.close() }
            let frame = try await file.read(count: Int(frameBytes), at: 0)
            guard frame.readableBytes == Int(frameBytes) else { throw TYDFSError(.io, "chunk \(chunk) shrank while being read") }
            return frame
        }
    }

    private static func range(_ requested: (offset: Int64, length: Int64)?, dataBytes: Int64) throws -> ChunkRange {
        guard let requested else { return ChunkRange(offset: 0, length: dataBytes) }
        return try ChunkRange.validated(offset: requested.offset, length: requested.length, dataBytes: dataBytes)
    }

    private func chunkHeaders(dataBytes: Int64) -> HTTPFields {
        var headers = HTTPFields()
        headers[.contentType] = "application/octet-stream"
        headers[.tydfsDataBytes] = String(dataBytes)
        return headers
    }

    /// Checks a whole frame held in memory; returns its data size and CRC32C.
    static func verifyFrame(_ frame: ByteBuffer) throws -> (dataBytes: Int64, crc: UInt32) {
        guard let dataBytes = ChunkFrame.dataBytes(frameBytes: Int64(frame.readableBytes)) else {
            throw TYDFSError(.checksumMismatch, "a frame of \(frame.readableBytes) bytes cannot hold data and its checksums")
        }
        var reader = ChunkFrameReader(dataBytes: dataBytes)
        try frame.withUnsafeReadableBytes { try reader.consume($0) { _ in } }
        return (dataBytes, try reader.finish())
    }

    /// Streams a range of a chunk in its own file: the range's checksums are read first, then
    /// the data in I/O-buffer pieces (`RangeReader`: the disk is asked for the range and nothing
    /// past it), each checked block by block before it goes out; the
    /// checksums follow the data. The next piece is read while NIO sends the previous one, in a
    /// buffer of `RecycledIOBuffers`, whose bound makes the ranges served at once share its
    /// buffers instead of each holding its own.
    private func serveOwnFile(_ chunk: ChunkID, path: String, range requested: (offset: Int64, length: Int64)?) async throws -> Response {
        guard let frameBytes = LocalFileSystem.fileSize(path) else {
            throw TYDFSError(.notFound, "chunk \(chunk) is not on this datakeeper")
        }
        guard let dataBytes = ChunkFrame.dataBytes(frameBytes: frameBytes) else {
            await reportBad(chunk)
            throw TYDFSError(.checksumMismatch, "chunk \(chunk) is truncated on disk (\(frameBytes) bytes)")
        }
        let range = try Self.range(requested, dataBytes: dataBytes)
        let trailerBytes = ChunkFrame.trailerBytes(dataBytes: range.length)
        let counters = self.counters
        let logger = self.logger
        let reportBad = self.reportBad
        // The file is opened and the transfer counted only once the body is being written, which
        // Hummingbird does only after the response head went out: a client gone before that leaks nothing.
        let body = ResponseBody(contentLength: Int(range.length + trailerBytes)) { writer in
            let file = try await LocalFile.openForReading(path)
            counters.begin()
            defer {
                try? file.close()
                counters.end()
            }
            let trailer = try await file.read(count: Int(trailerBytes), at: dataBytes + 4 * range.firstBlock)
            let expected = trailer.readableBytesView
            guard expected.count == Int(trailerBytes) else { throw TYDFSError(.io, "chunk \(chunk) shrank while being read") }
            var reader = await RangeReader.start(
                file, range: range.offset..<(range.offset + range.length), aheadBytes: Int64(Limits.servingReadAheadBytes))
            while true {
                let offset = reader.position
                guard let piece = try await reader.next() else { break }
                guard piece.readableBytes > 0 else { throw TYDFSError(.io, "chunk \(chunk) shrank while being read") }
                var checksums = BlockChecksums()
                piece.withUnsafeReadableBytes { checksums.update($0) }
                let firstBlock = Int((offset - range.offset) / ChunkFrame.blockBytes)
                for (index, crc) in checksums.all.enumerated() where crc != ChunkFrame.blockCRC(in: expected, at: firstBlock + index) {
                    let block = range.firstBlock + Int64(firstBlock + index)
                    logger.error("corrupt chunk not served", metadata: ["chunk.id": "\(chunk)", "block": "\(block)"])
                    await reportBad(chunk)
                    throw TYDFSError(.checksumMismatch, "chunk \(chunk) block \(block) does not match its checksum")
                }
                // Returns once NIO takes the piece: the next one is read while this one goes out.
                try await writer.write(piece)
            }
            try await writer.write(trailer)
            try await writer.finish(nil)
            counters.served(dataBytes: range.length)
        }
        return Response(status: .ok, headers: chunkHeaders(dataBytes: range.length), body: body)
    }

    // MARK: - Repair

    /// Takes a bad chunk out of service and tells the master (next heartbeat).
    @Sendable func reportBad(_ chunk: ChunkID) async {
        if await store.quarantine(chunk) {
            counters.corrupt()
            events.bad(chunk)
        }
    }

    /// Carries out a copy order: pulls the chunk from the first source that delivers it intact.
    func copy(_ order: CopyChunkOrder) async {
        if await store.contains(order.chunk) {
            // Already here (e.g. an earlier order whose report was lost): verify instead of copying.
            switch await verify(order.chunk) {
            case .good: events.copied(order.chunk)
            case .bad: events.copyFailed(CopyFailure(chunk: order.chunk, message: "the local copy was bad", badSources: []))
            case .notChecked:
                events.copyFailed(CopyFailure(chunk: order.chunk, message: "the local copy could not be checked", badSources: []))
            }
            return
        }
        counters.begin()
        defer { counters.end() }
        var failures: [String] = []
        var badSources: [DataKeeperID] = []
        for source in order.sources where source.id != id {
            do {
                try await pull(order, from: source)
                events.copied(order.chunk)
                logger.info("chunk copied", metadata: ["chunk.id": "\(order.chunk)", "from": "\(source.id)"])
                return
            } catch let error as TYDFSError where error.code == .checksumMismatch || error.code == .protocolViolation {
                badSources.append(source.id)
                failures.append("\(source.id): \(error.message)")
            } catch {
                failures.append("\(source.id): \(error)")
            }
        }
        events.copyFailed(CopyFailure(chunk: order.chunk, message: failures.joined(separator: "; "), badSources: badSources))
    }

    private func pull(_ order: CopyChunkOrder, from source: DataKeeperAddress) async throws {
        var request = HTTPClientRequest(url: "\(scheme)://\(source.address)\(Route.chunk(order.chunk.value))")
        request.method = .GET
        if let token = order.token { request.headers.add(name: Header.chunkToken, value: token) }
        let deadline = Limits.transferDeadlineSeconds(frameBytes: ChunkFrame.frameBytes(dataBytes: order.dataBytes), hops: 1)
        let progress = TransferProgress(stallSeconds: Limits.readStallSeconds)
        let response = try await StallGuard.run(progress) { [httpClient, request] in
            try await httpClient.execute(request, timeout: .seconds(deadline))
        }
        progress.advance()
        guard response.status == .ok else {
            throw TYDFSError(.unreachable, "answered HTTP \(response.status.code)")
        }
        try await store.reserve(order.chunk, frameBytes: ChunkFrame.frameBytes(dataBytes: order.dataBytes))
        let body = ProgressReportingSequence(response.body, progress: progress)
        try await StallGuard.run(progress) {
            _ = try await storeReserved(order.chunk, dataBytes: order.dataBytes, from: body, forwarding: nil, expectedCRC: order.crc32c)
        }
        counters.received(dataBytes: order.dataBytes)
    }

    /// What a verification found. A check that was cancelled (shutdown) or could not read the
    /// chunk (an I/O error) is no evidence either way: `notChecked`, never good.
    enum Verification {
        case good, bad, notChecked
    }

    /// Re-reads a chunk and checks its trailer, at most `bytesPerSecond` fast. A missing or
    /// corrupt chunk is taken out of service and reported.
    @discardableResult
    func verify(_ chunk: ChunkID, bytesPerSecond: Double = .infinity) async -> Verification {
        switch await store.placement(of: chunk) {
        case nil: return .bad
        case .volume(let frameBytes): return await verifyInVolume(chunk, frameBytes: frameBytes, bytesPerSecond: bytesPerSecond)
        case .ownFile(let path): return await verifyOwnFile(chunk, path: path, bytesPerSecond: bytesPerSecond)
        }
    }

    private func verifyInVolume(_ chunk: ChunkID, frameBytes: Int64, bytesPerSecond: Double) async -> Verification {
        do {
            guard let frame = try await store.readVolumeFrame(chunk) else { return .bad }
            _ = try Self.verifyFrame(frame)
            if bytesPerSecond.isFinite {
                let charged = Double(max(frameBytes, Limits.scrubMinimumChargeBytes))
                try await Task.sleep(nanoseconds: UInt64(charged / bytesPerSecond * 1e9))
            }
            return .good
        } catch is CancellationError {
            return .notChecked
        } catch let error as TYDFSError where error.code == .checksumMismatch || error.code == .protocolViolation {
            logger.error("chunk failed verification", metadata: ["chunk.id": "\(chunk)", "error": "\(error)"])
            await reportBad(chunk)
            return .bad
        } catch {
            // Not evidence about the chunk (an I/O error reading the volume): try again next pass.
            logger.error("chunk could not be read for verification", metadata: ["chunk.id": "\(chunk)", "error": "\(error)"])
            return .notChecked
        }
    }

    private func verifyOwnFile(_ chunk: ChunkID, path: String, bytesPerSecond: Double) async -> Verification {
        let file: LocalFile
        do {
            file = try await LocalFile.openForReading(path)
        } catch let error as TYDFSError where error.code == .notFound {
            if await store.forgetMissing(chunk) {
                logger.error("chunk file missing", metadata: ["chunk.id": "\(chunk)"])
                events.bad(chunk)
            }
            return .bad
        } catch {
            // Not evidence about the chunk (too many open files, permissions): try again next pass.
            logger.error("chunk could not be opened for verification", metadata: ["chunk.id": "\(chunk)", "error": "\(error)"])
            return .notChecked
        }
        defer { try? file.close() }
        let started = DispatchTime.now().uptimeNanoseconds
        do {
            let frameBytes = try await file.size()
            guard let dataBytes = ChunkFrame.dataBytes(frameBytes: frameBytes) else {
                throw TYDFSError(.checksumMismatch, "chunk \(chunk) is truncated on disk (\(frameBytes) bytes)")
            }
            var reader = ChunkFrameReader(dataBytes: dataBytes)
            var offset: Int64 = 0
            while offset < frameBytes {
                let count = Int(min(Int64(Limits.ioBufferBytes), frameBytes - offset))
                // The buffer goes back before the pause below: a paced scrub holds none while idle.
                var read = 0
                do {
                    let piece = try await RecycledIOBuffers.read(count: count, at: offset, from: file)
                    try piece.withUnsafeReadableBytes { try reader.consume($0) { _ in } }
                    read = piece.readableBytes
                }
                guard read > 0 else { break }
                offset += Int64(read)
                if bytesPerSecond.isFinite {
                    let due = Double(offset) / bytesPerSecond
                    let spent = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
                    if due > spent { try await Task.sleep(nanoseconds: UInt64((due - spent) * 1e9)) }
                }
            }
            _ = try reader.finish()
            return .good
        } catch is CancellationError {
            return .notChecked
        } catch {
            logger.error("chunk failed verification", metadata: ["chunk.id": "\(chunk)", "error": "\(error)"])
            await reportBad(chunk)
            return .bad
        }
    }
}

/// What a hop hands to the rest of its write pipeline: the buffers, through a bounded channel
/// (so a slow next hop slows this one instead of filling memory), and the clock that tells
/// whether the next hop still takes them. The clock runs only while a buffer waits for the next
/// hop or the answer is due, never while this hop waits for its own sender.
struct PipelineForwarding: Sendable {
    let channel = AsyncThrowingChannel<ByteBuffer, Error>()
    let progress: TransferProgress
    let frameBytes: Int64

    init(frameBytes: Int64, downstreamHops: Int) {
        self.frameBytes = frameBytes
        progress = TransferProgress(stallSeconds: Limits.writeStallSeconds(hops: downstreamHops), paused: true)
    }

    func send(_ buffer: ByteBuffer) async {
        progress.advance()
        await channel.send(buffer)
        progress.pause()
    }

    /// The whole frame went out: the next hop now owes its answer, after its fsync.
    func finish() {
        progress.allow(extraSeconds: Limits.syncAllowanceSeconds(frameBytes: frameBytes))
        channel.finish()
    }

    func fail(_ error: Error) { channel.fail(error) }
}
