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
import TYDFSServerSupport

/// The datakeeper's data path: receiving a chunk (storing it and forwarding it down the write
/// pipeline at the same time) and serving a chunk, verifying its checksum on the way out.
struct ChunkTransfer: Sendable {
    let id: DataKeeperID
    let store: ChunkStore
    let counters: TransferCounters
    let events: DataKeeperEvents
    let httpClient: HTTPClient
    let logger: Logger

    // MARK: - Write

    /// Stores the chunk arriving in `body` and forwards it to `downstream`, the rest of the
    /// pipeline. Answers once the chunk is durable here and the next hop has answered.
    func receive(_ chunk: ChunkID, dataBytes: Int64, body: RequestBody, downstream: [PipelineHop]) async throws -> ChunkWriteResult {
        let frameBytes = ChunkFrame.frameBytes(dataBytes: dataBytes)
        let temporaryPath = try await store.reserve(chunk, frameBytes: frameBytes)
        counters.begin()
        defer { counters.end() }
        let forwarding = AsyncThrowingChannel<ByteBuffer, Error>()
        async let downstreamResult = forward(chunk, dataBytes: dataBytes, from: forwarding, to: downstream)
        let crc: UInt32
        do {
            crc = try await writeLocally(body, to: temporaryPath, frameBytes: frameBytes, dataBytes: dataBytes,
                                         forwarding: downstream.isEmpty ? nil : forwarding)
            try await store.commit(chunk, temporaryPath: temporaryPath, frameBytes: frameBytes)
        } catch {
            forwarding.fail(error)
            await store.abandon(chunk, temporaryPath: temporaryPath)
            _ = await downstreamResult
            throw error
        }
        forwarding.finish()
        let next = await downstreamResult
        logger.debug("chunk stored", metadata: ["chunk.id": "\(chunk)", "bytes": "\(dataBytes)"])
        return ChunkWriteResult(stored: [id] + next.stored, dataBytes: dataBytes, crc32c: crc, failures: next.failures)
    }

    /// Writes the frame to `path`, verifying its trailer, and fsyncs it. Every buffer is also
    /// handed to `forwarding`, concurrently with the disk write.
    private func writeLocally<Body: AsyncSequence>(
        _ body: Body, to path: String, frameBytes: Int64, dataBytes: Int64,
        forwarding: AsyncThrowingChannel<ByteBuffer, Error>?
    ) async throws -> UInt32 where Body.Element == ByteBuffer {
        let file = try await LocalFile.create(path)
        defer { try? file.close() }
        var reader = ChunkFrameReader(maxFrameBytes: frameBytes)
        var pending = ByteBuffer()
        for try await buffer in body {
            try buffer.withUnsafeReadableBytes { try reader.consume($0) { _ in } }
            pending.writeImmutableBuffer(buffer)
            if pending.readableBytes >= Limits.ioBufferBytes {
                let full = pending
                pending = ByteBuffer()
                async let written: Void = file.write(full, at: nil)
                if let forwarding { await forwarding.send(buffer) }
                try await written
            } else if let forwarding {
                await forwarding.send(buffer)
            }
        }
        if pending.readableBytes > 0 { try await file.write(pending, at: nil) }
        let crc = try reader.finish(expectedDataBytes: dataBytes)
        try await file.sync()
        return crc
    }

    private struct DownstreamResult: Sendable {
        var stored: [DataKeeperID] = []
        var failures: [String] = []
    }

    /// Sends the chunk to the next datakeeper of the pipeline, which forwards it further.
    /// Never throws: a failure down the pipeline is reported, and this replica still counts.
    private func forward(
        _ chunk: ChunkID, dataBytes: Int64, from source: AsyncThrowingChannel<ByteBuffer, Error>, to hops: [PipelineHop]
    ) async -> DownstreamResult {
        guard let next = hops.first else { return DownstreamResult() }
        defer { source.finish() }
        var request = HTTPClientRequest(url: "http://\(next.address)\(Route.chunk(chunk.value))")
        request.method = .PUT
        request.headers.add(name: Header.dataBytes, value: String(dataBytes))
        request.headers.add(name: Header.forward, value: PipelineHop.encode(Array(hops.dropFirst())))
        request.body = .stream(source, length: .known(ChunkFrame.frameBytes(dataBytes: dataBytes)))
        do {
            let deadline = Limits.transferDeadlineSeconds(frameBytes: ChunkFrame.frameBytes(dataBytes: dataBytes), hops: hops.count)
            let response = try await httpClient.execute(request, timeout: .seconds(deadline))
            let body = try await response.body.collect(upTo: Limits.maxControlMessageBytes)
            let result = try PeerError.decode(ChunkWriteResult.self, status: response.status, payload: body, peer: "datakeeper \(next.id)")
            return DownstreamResult(stored: result.stored, failures: result.failures)
        } catch {
            let message = PeerError.describe(error)
            logger.warning("forwarding failed", metadata: ["chunk.id": "\(chunk)", "datakeeper.address": "\(next.address)", "error": "\(message)"])
            return DownstreamResult(failures: ["\(next.id) (\(next.address)): \(message)"] + hops.dropFirst().map { "\($0.id): not reached" })
        }
    }

    // MARK: - Read

    /// A response streaming the chunk's frame. The trailer is checked before the last piece is
    /// sent, so a corrupt replica ends in a cut-off response the client detects, never in bad
    /// bytes passed off as good.
    func serve(_ chunk: ChunkID) async throws -> Response {
        let path = store.path(of: chunk)
        guard await store.contains(chunk), let frameBytes = LocalFileSystem.fileSize(path) else {
            throw TYDFSError(.notFound, "chunk \(chunk) is not on this datakeeper")
        }
        guard frameBytes >= Int64(Limits.chunkTrailerBytes) else {
            await reportBad(chunk)
            throw TYDFSError(.checksumMismatch, "chunk \(chunk) is truncated on disk")
        }
        let counters = self.counters
        let logger = self.logger
        let reportBad = self.reportBad
        // The file is opened and the transfer counted only once the body is being written, which
        // Hummingbird does only after the response head went out: a client gone before that leaks nothing.
        let body = ResponseBody(contentLength: Int(frameBytes)) { writer in
            let file = try await LocalFile.openForReading(path)
            counters.begin()
            defer {
                try? file.close()
                counters.end()
            }
            var reader = ChunkFrameReader(maxFrameBytes: frameBytes)
            var offset: Int64 = 0
            while offset < frameBytes {
                let piece = try await file.read(count: Int(min(Int64(Limits.ioBufferBytes), frameBytes - offset)), at: offset)
                guard piece.readableBytes > 0 else { throw TYDFSError(.io, "chunk \(chunk) shrank while being read") }
                try piece.withUnsafeReadableBytes { try reader.consume($0) { _ in } }
                offset += Int64(piece.readableBytes)
                if offset == frameBytes {
                    do {
                        _ = try reader.finish()
                    } catch {
                        logger.error("corrupt chunk not served", metadata: ["chunk.id": "\(chunk)", "error": "\(error)"])
                        await reportBad(chunk)
                        throw error
                    }
                }
                try await writer.write(piece)
            }
            try await writer.finish(nil)
            counters.served()
        }
        var headers = HTTPFields()
        headers[.contentType] = "application/octet-stream"
        headers[.tydfsDataBytes] = String(frameBytes - Int64(Limits.chunkTrailerBytes))
        return Response(status: .ok, headers: headers, body: body)
    }

    // MARK: - Repair

    /// Takes a bad chunk out of service and tells the master (next heartbeat).
    @Sendable func reportBad(_ chunk: ChunkID) async {
        if await store.quarantine(chunk) { events.bad(chunk) }
    }

    /// Carries out a copy order: pulls the chunk from the first source that delivers it intact.
    func copy(_ order: CopyChunkOrder) async {
        if await store.contains(order.chunk) {
            // Already here (e.g. an earlier order whose report was lost): verify instead of copying.
            if await verify(order.chunk) { events.copied(order.chunk) }
            else { events.copyFailed(CopyFailure(chunk: order.chunk, message: "the local copy was bad", badSources: [])) }
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
        var request = HTTPClientRequest(url: "http://\(source.address)\(Route.chunk(order.chunk.value))")
        request.method = .GET
        let deadline = Limits.transferDeadlineSeconds(frameBytes: ChunkFrame.frameBytes(dataBytes: order.dataBytes), hops: 1)
        let response = try await httpClient.execute(request, timeout: .seconds(deadline))
        guard response.status == .ok else {
            throw TYDFSError(.unreachable, "answered HTTP \(response.status.code)")
        }
        let frameBytes = ChunkFrame.frameBytes(dataBytes: order.dataBytes)
        let temporaryPath = try await store.reserve(order.chunk, frameBytes: frameBytes)
        do {
            let crc = try await writeLocally(response.body, to: temporaryPath, frameBytes: frameBytes, dataBytes: order.dataBytes, forwarding: nil)
            guard crc == order.crc32c else {
                throw TYDFSError(.checksumMismatch, "sent a chunk with crc32c \(hex32(crc)), expected \(hex32(order.crc32c))")
            }
            try await store.commit(order.chunk, temporaryPath: temporaryPath, frameBytes: frameBytes)
        } catch {
            await store.abandon(order.chunk, temporaryPath: temporaryPath)
            throw error
        }
    }

    /// Re-reads a chunk and checks its trailer, at most `bytesPerSecond` fast. A missing or
    /// corrupt chunk is taken out of service and reported. Returns whether the chunk is good.
    @discardableResult
    func verify(_ chunk: ChunkID, bytesPerSecond: Double = .infinity) async -> Bool {
        guard await store.contains(chunk) else { return false }
        let file: LocalFile
        do {
            file = try await LocalFile.openForReading(store.path(of: chunk))
        } catch let error as TYDFSError where error.code == .notFound {
            if await store.forgetMissing(chunk) {
                logger.error("chunk file missing", metadata: ["chunk.id": "\(chunk)"])
                events.bad(chunk)
            }
            return false
        } catch {
            // Not evidence about the chunk (too many open files, permissions): try again next pass.
            logger.error("chunk could not be opened for verification", metadata: ["chunk.id": "\(chunk)", "error": "\(error)"])
            return false
        }
        defer { try? file.close() }
        let started = DispatchTime.now().uptimeNanoseconds
        do {
            let frameBytes = try await file.size()
            var reader = ChunkFrameReader(maxFrameBytes: frameBytes)
            var offset: Int64 = 0
            while offset < frameBytes {
                let piece = try await file.read(count: Int(min(Int64(Limits.ioBufferBytes), frameBytes - offset)), at: offset)
                guard piece.readableBytes > 0 else { break }
                try piece.withUnsafeReadableBytes { try reader.consume($0) { _ in } }
                offset += Int64(piece.readableBytes)
                if bytesPerSecond.isFinite {
                    let due = Double(offset) / bytesPerSecond
                    let spent = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
                    if due > spent { try await Task.sleep(nanoseconds: UInt64((due - spent) * 1e9)) }
                }
            }
            _ = try reader.finish()
            return true
        } catch is CancellationError {
            return true
        } catch {
            logger.error("chunk failed verification", metadata: ["chunk.id": "\(chunk)", "error": "\(error)"])
            await reportBad(chunk)
            return false
        }
    }
}
