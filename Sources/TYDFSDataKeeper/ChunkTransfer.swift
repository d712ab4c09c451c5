import AsyncAlgorithms
import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
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
    private func writeLocally(
        _ body: RequestBody, to path: String, frameBytes: Int64, dataBytes: Int64,
        forwarding: AsyncThrowingChannel<ByteBuffer, Error>?
    ) async throws -> UInt32 {
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
            let response = try await httpClient.execute(request, timeout: .seconds(Limits.idleTransferTimeoutSeconds * 10))
            let body = try await response.body.collect(upTo: Limits.maxControlMessageBytes)
            guard response.status == .ok else {
                let message = (try? JSONDecoder().decode(ErrorResponse.self, from: Data(body.readableBytesView)))?.error.message
                    ?? "HTTP \(response.status.code)"
                return DownstreamResult(failures: ["\(next.id): \(message)"] + hops.dropFirst().map { "\($0.id): not reached" })
            }
            let result = try JSONDecoder().decode(ChunkWriteResult.self, from: Data(body.readableBytesView))
            return DownstreamResult(stored: result.stored, failures: result.failures)
        } catch {
            logger.warning("forwarding failed", metadata: ["chunk.id": "\(chunk)", "datakeeper.address": "\(next.address)", "error": "\(error)"])
            return DownstreamResult(failures: ["\(next.id) (\(next.address)): \(error)"] + hops.dropFirst().map { "\($0.id): not reached" })
        }
    }

    // MARK: - Read

    /// A response streaming the chunk's frame. The trailer is checked before the last piece is
    /// sent, so a corrupt replica ends in a cut-off response the client detects, never in bad
    /// bytes passed off as good.
    func serve(_ chunk: ChunkID) async throws -> Response {
        guard await store.contains(chunk) else { throw TYDFSError(.notFound, "chunk \(chunk) is not on this datakeeper") }
        let file = try await LocalFile.openForReading(store.path(of: chunk))
        let frameBytes = try await file.size()
        guard frameBytes >= Int64(Limits.chunkTrailerBytes) else {
            try? file.close()
            throw TYDFSError(.checksumMismatch, "chunk \(chunk) is truncated on disk")
        }
        counters.begin()
        let counters = self.counters
        let logger = self.logger
        let body = ResponseBody(contentLength: Int(frameBytes)) { writer in
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
}
