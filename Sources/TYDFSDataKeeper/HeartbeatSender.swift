import AsyncHTTPClient
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle
import TYDFSClient
import TYDFSCore
import TYDFSProtocol
import TYDFSSecurity

/// Tells the master, every interval, that this datakeeper is alive, how full and busy it is,
/// and what changed since the last beat: chunks stored and gone, bad chunks found, copies done.
/// When the master asks (after either of them starts, or when the report interval has passed or
/// the change log overflowed and this datakeeper offered one), it snapshots every chunk held and
/// sends the snapshot in pages beside the heartbeats. Hands the deletions the master orders to the
/// deletion worker without waiting for them (a slow disk must not make this datakeeper look dead),
/// confirms those done in the next beats, and queues copy and verify orders for the repair worker.
struct HeartbeatSender: Service {
    let id: DataKeeperID
    /// The masters given; beats go to the one that leads (a failed beat moves to the next).
    let masters: MasterDirectory
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
    /// Signs every request to the master with the cluster secret.
    let signer: RequestSigner
    /// Whether the master answered the last heartbeat (the datakeeper's readiness).
    let registered: NIOLockedValueBox<Bool>
    /// `--maintenance`: ask to be drained, and return (ending the datakeeper) once drained.
    let maintenance: Bool
    let logger: Logger

    func run() async throws {
        let address = await address()
        let bootID = hex64(UInt64.random(in: .min ... .max))
        var masterReachable = true
        var lastReport = ContinuousClock.now
        // Changes are sent only once a snapshot was taken: before, the coming report covers them.
        var snapshotTaken = false
        var report: Task<Void, Never>?
        // The highest leadership epoch seen: answers below it come from a deposed leader.
        var epoch: LeaderEpoch?
        defer { report?.cancel() }
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let usage = await store.usage()
            let batch = events.drain()
            let deleted = deletions.takeDone()
            let changes: (added: [ChunkID], removed: [ChunkID]) = snapshotTaken ? await store.drainChanges() : ([], [])
            let overflowed = snapshotTaken ? await store.takeChangeLogOverflow() : false
            let beat = HeartbeatRequest(
                id: id, bootID: bootID, address: address, capacityBytes: usage.capacityBytes, usedBytes: usage.usedBytes,
                chunkCount: usage.chunkCount, inFlight: counters.inFlight, chunksServed: counters.chunksServed,
                wantsToReport: overflowed || ContinuousClock.now - lastReport >= .seconds(reportIntervalSeconds),
                addedChunks: changes.added, removedChunks: changes.removed, deletedChunks: deleted,
                badChunks: batch.badChunks, copiesDone: batch.copiesDone, copiesFailed: batch.copiesFailed,
                maintenance: maintenance ? true : nil)
            do {
                let (answer, master) = try await send(beat)
                if let seen = epoch, let given = answer.epoch, given < seen {
                    masters.skip(master)
                    throw TYDFSError(.notLeader, "\(master) answered in epoch \(given), below epoch \(seen): its orders are ignored")
                }
                if let given = answer.epoch, given != epoch {
                    logger.notice("the master leading now", metadata: ["master": "\(master)", "epoch": "\(given)"])
                    epoch = given
                }
                if !masterReachable { logger.info("master reachable again", metadata: ["master": "\(master)"]) }
                masterReachable = true
                registered.withLockedValue { $0 = true }
                if answer.sendChunkReport {
                    // The master asks only when it holds no report of ours under way: a report
                    // still being sent (stuck on a page while the network was cut) is stale, and
                    // would keep this one from ever being sent.
                    report?.cancel()
                    lastReport = ContinuousClock.now
                    let chunks = await store.snapshotForReport()
                    snapshotTaken = true
                    report = Task { await sendReport(chunks, anchor: answer.answerID) }
                }
                deletions.enqueue(answer.deleteChunks)
                // A copy ordered in the same answer as a deletion of its chunk waits for the
                // deletion (`DeletionQueue.settled`), so it never finds a chunk about to go.
                for order in answer.copyChunks { repairs.yield(.copy(order)) }
                for chunk in answer.verifyChunks { repairs.yield(.verify(chunk)) }
                if maintenance, answer.drained == true {
                    logger.notice("drained: every chunk held here is at its factor elsewhere; shutting down")
                    break
                }
            } catch {
                registered.withLockedValue { $0 = false }
                events.restore(batch)
                deletions.restoreDone(deleted)
                await store.restoreChanges(added: changes.added, removed: changes.removed)
                if masterReachable {
                    logger.warning("heartbeat failed", metadata: ["error": "\(error)"])
                }
                masterReachable = false
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(nanoseconds: UInt64(intervalSeconds * 1e9)) }
        }
        if !Task.isCancelled { await leave() }
    }

    /// Tells the master this datakeeper is going away, so it starts repairs at once. Best effort:
    /// a master that does not answer finds out by the heartbeat timeout.
    private func leave() async {
        do {
            let (response, body, _) = try await post(LeaveRequest(id: id), to: Route.leave, timeoutSeconds: Limits.connectTimeoutSeconds)
            try PeerError.check(status: response.status, payload: body, peer: "the master")
            logger.info("told the master this datakeeper is leaving")
        } catch {
            logger.warning("could not tell the master this datakeeper is leaving", metadata: ["error": "\(PeerError.describe(error))"])
        }
    }
    /// Sends `beat` to the leading master; returns its answer and which master gave it.
    private func send(_ beat: HeartbeatRequest) async throws -> (HeartbeatResponse, String) {
        // With several masters a frozen one is left after `masterAnswerSeconds` for the next. A
        // lone master is waited for as long as any control request: an answer that arrives late
        // (a network cut healing) may carry the master's request for a chunk report, which it
        // does not repeat while it waits for that report.
        let timeout = masters.isSeveral ? Limits.masterAnswerSeconds : Limits.controlRequestTimeoutSeconds
        let (response, body, master) = try await post(beat, to: Route.heartbeat, timeoutSeconds: timeout)
        return (try PeerError.decode(HeartbeatResponse.self, status: response.status, payload: body, peer: "the master"), master)
    }

    /// POSTs `message` as JSON, signed with the cluster secret, to `route` of the leading master
    /// (one try; the next call starts at the next master if this one fails); returns the answer,
    /// its body and the master that gave it.
    private func post(
        _ message: some Encodable, to route: String, timeoutSeconds: Int64
    ) async throws -> (HTTPClientResponse, ByteBuffer, String) {
        let payload = try JSONEncoder().encode(message)
        var answeredBy = ""
        let (response, body) = try await masters.send(httpClient, timeout: .seconds(timeoutSeconds), patienceSeconds: 0) { master in
            answeredBy = master
            var request = HTTPClientRequest(url: master + route)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: payload))
            request.sign(with: signer, target: route, body: payload)
            return request
        }
        return (response, body, answeredBy)
    }

    /// Sends a snapshot of every chunk held, page after page. A failure ends the report; the
    /// master asks again.
    private func sendReport(_ chunks: [ChunkID], anchor: UInt64) async {
        let reportID = hex64(UInt64.random(in: .min ... .max))
        let pages = max(1, (chunks.count + Limits.chunksPerReportPage - 1) / Limits.chunksPerReportPage)
        for page in 0..<pages {
            let slice = chunks[min(chunks.count, page * Limits.chunksPerReportPage)..<min(chunks.count, (page + 1) * Limits.chunksPerReportPage)]
            var request = HTTPClientRequest(url: masters.current + Route.chunkReport)
            request.method = .POST
            request.headers.add(name: Header.dataKeeper, value: id.value)
            request.headers.add(name: Header.reportID, value: reportID)
            request.headers.add(name: Header.reportPage, value: String(page))
            request.headers.add(name: Header.reportAnchor, value: String(anchor))
            request.headers.add(name: Header.reportLastPage, value: String(page == pages - 1))
            request.headers.add(name: "Content-Type", value: "application/octet-stream")
            let body = ChunkIDList.encode(slice)
            request.body = .bytes(ByteBuffer(bytes: body))
            request.sign(with: signer, target: Route.chunkReport, body: body)
            do {
                let response = try await httpClient.execute(request, timeout: .seconds(Limits.controlRequestTimeoutSeconds))
                let body = try await response.body.collect(upTo: Limits.maxControlMessageBytes)
                try PeerError.check(status: response.status, payload: body, peer: "the master")
            } catch {
                logger.warning("chunk report failed", metadata: ["page": "\(page)", "error": "\(PeerError.describe(error))"])
                return
            }
        }
        logger.debug("chunk report sent", metadata: ["chunks": "\(chunks.count)", "pages": "\(pages)"])
    }
}
