import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import TYDFSClient
import TYDFSCore
import TYDFSProtocol

/// Tells the master, every interval, that this datakeeper is alive, how full and busy it is,
/// and (on the first beat after a start, every report interval, or when asked) every chunk it
/// holds, with the bad chunks found and the copies done since the last beat. Hands the
/// deletions the master orders in its answer to the deletion worker, without waiting for them
/// (a slow disk must not make this datakeeper look dead), and confirms those done in the next
/// beats; queues its copy and verify orders for the repair worker.
struct HeartbeatSender: Service {
    let id: DataKeeperID
    let masterURL: String
    let intervalSeconds: Double
    /// Seconds between full chunk reports (besides the first one and those the master asks for).
    let reportIntervalSeconds: Double
    let address: @Sendable () async -> String
    let store: ChunkStore
    let counters: TransferCounters
    let events: DataKeeperEvents
    let deletions: DeletionQueue
    let repairs: AsyncStream<RepairJob>.Continuation
    let httpClient: HTTPClient
    let logger: Logger

    func run() async throws {
        let address = await address()
        let bootID = hex64(UInt64.random(in: .min ... .max))
        var sendReport = true
        var masterReachable = true
        var lastReport = ContinuousClock.now
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            if ContinuousClock.now - lastReport >= .seconds(reportIntervalSeconds) { sendReport = true }
            let usage = await store.usage()
            let batch = events.drain()
            let deleted = deletions.takeDone()
            let beat = HeartbeatRequest(
                id: id, bootID: bootID, address: address, capacityBytes: usage.capacityBytes, usedBytes: usage.usedBytes,
                chunkCount: usage.chunkCount, inFlight: counters.inFlight, chunksServed: counters.chunksServed,
                chunkReport: sendReport ? await store.chunkIDs() : nil, deletedChunks: deleted,
                badChunks: batch.badChunks, copiesDone: batch.copiesDone, copiesFailed: batch.copiesFailed)
            do {
                let answer = try await send(beat)
                if !masterReachable { logger.info("master reachable again", metadata: ["master": "\(masterURL)"]) }
                masterReachable = true
                if beat.chunkReport != nil { lastReport = ContinuousClock.now }
                sendReport = answer.sendChunkReport
                deletions.enqueue(answer.deleteChunks)
                // A copy ordered in the same answer as a deletion of its chunk waits for the
                // deletion (`DeletionQueue.settled`), so it never finds a chunk about to go.
                for order in answer.copyChunks { repairs.yield(.copy(order)) }
                for chunk in answer.verifyChunks { repairs.yield(.verify(chunk)) }
            } catch {
                events.restore(batch)
                deletions.restoreDone(deleted)
                if masterReachable {
                    logger.warning("heartbeat failed", metadata: ["master": "\(masterURL)", "error": "\(error)"])
                }
                masterReachable = false
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(nanoseconds: UInt64(intervalSeconds * 1e9)) }
        }
    }

    private func send(_ beat: HeartbeatRequest) async throws -> HeartbeatResponse {
        var request = HTTPClientRequest(url: masterURL + Route.heartbeat)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: try JSONEncoder().encode(beat)))
        let response = try await httpClient.execute(request, timeout: .seconds(Limits.controlRequestTimeoutSeconds))
        let body = try await response.body.collect(upTo: Limits.maxControlMessageBytes)
        return try PeerError.decode(HeartbeatResponse.self, status: response.status, payload: body, peer: "the master")
    }
}
