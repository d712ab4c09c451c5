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
    /// Each chunk is split into block-aligned ranges, one per live replica (none smaller than
    /// `Limits.minimumRangeBytes`), each read first from a different replica, up to
    /// `Limits.parallelRangeDownloads` ranges of the file at once. Every range is verified block
    /// by block, and each chunk as a whole against the checksum the master holds. A range that
    /// fails, hangs or does not verify is read again from the next replica. To a file, ranges are
    /// written at their offsets into a temporary file (a file of at most 1 MiB is gathered in
    /// memory and written in one go) that is renamed into place only when every chunk is
    /// verified, so an interrupted get never leaves a partial file under the target name. To
    /// standard output, or into a device or FIFO (`/dev/null`, a named pipe), which is
    /// written into and never replaced: chunk after chunk, each verified before any of it is
    /// written, in memory (a spool file on disk took a third more time and CPU), or in a spool
    /// file for a chunk larger than `Limits.readPieceBytes`.
    @discardableResult
    public func get(_ remote: RemotePath, to localPath: String) async throws -> FileInfo {
        let info = try await stat(remote)
        TransferMeter.current?.expect(info.sizeBytes)
        let failed = FailedDataKeepers()
        if localPath == "-" || LocalFileSystem.isSpecialFile(localPath) {
            let output = try await Self.writingLocally(localPath) {
                localPath == "-" ? LocalFile.standardStream(1, name: "standard output") : try await LocalFile.openForWriting(localPath)
            }
            defer { try? output.close() }  // a no-op for standard output
            let target = localPath == "-" ? "standard output" : localPath
            // A chunk larger than a read piece (a master allows 4 GiB) is verified in a spool file.
            var spool: ChunkSpool?
            defer { spool?.discard() }
            for chunk in info.chunks {
                if chunk.sizeBytes <= Limits.readPieceBytes {
                    let pieces = try await readWhole(chunk, failed: failed)
                    try await Self.writingLocally(target) { try await output.append(pieces, startingWriteback: false) }
                    TransferMeter.current?.add(Int(chunk.sizeBytes))
                } else {
                    let file: ChunkSpool
                    if let spool {
                        file = spool
                    } else {
                        file = try await ChunkSpool.create()
                        spool = file
                    }
                    try await fetch([chunk], into: DownloadFile(file.writer), at: { _ in 0 }, failed: failed)
                    try await Self.writingLocally(target) { try await file.copy(bytes: chunk.sizeBytes, to: output) }
                }
            }
            return info
        }
        let folder = LocalFileSystem.folder(of: localPath)
        let name = LocalFileSystem.name(of: localPath)
        let temporaryPath = "\(folder == "/" ? "" : folder)/.\(name).tydfs-\(hex64(UInt64.random(in: .min ... .max)))"
        if info.sizeBytes <= Limits.ioBufferBytes {
            // A small file (most of a `get -r`) is read into memory and then written, renamed
            // and all, in one trip to the thread pool: a file pre-sized, written range by range
            // and renamed costs four trips and two more system calls, a third of the client's
            // time per file (perf).
            let memory = MemorySink(sizeBytes: Int(info.sizeBytes))
            try await fetchAll(info, into: memory, failed: failed)
            try await Self.writingLocally(localPath) {
                try await LocalFileSystem.writeAtomically(memory.bytes, to: localPath, through: temporaryPath)
            }
            TransferMeter.current?.add(Int(info.sizeBytes))
            return info
        }
        let output = try await Self.writingLocally(localPath) { try await LocalFile.create(temporaryPath) }
        do {
            try await Self.writingLocally(localPath) { try await output.truncate(to: info.sizeBytes) }
            try await fetchAll(info, into: DownloadFile(output, naming: localPath), failed: failed)
            try await Self.writingLocally(localPath) {
                try output.close()
                // Atomic, not durable: like `cp`, a get leaves flushing the file to the disk to
                // the kernel (run `sync` to wait for it); it never leaves a partial file under
                // the name.
                try await LocalFileSystem.rename(temporaryPath, to: localPath)
            }
        } catch {
            try? output.close()
            // In a task of its own: a get cancelled (SIGTERM) still removes its partial file.
            await Task { _ = try? await LocalFileSystem.remove(temporaryPath) }.value
            throw error
        }
        return info
    }

    /// Runs `step`, a step of writing the local file `target`, so that its error names the
    /// target (`cannot write to TARGET: …`) and not only the temporary file it went to.
    static func writingLocally<T>(_ target: String, _ step: () async throws -> T) async throws -> T {
        do {
            return try await step()
        } catch let error as TYDFSError {
            // A failure of the target itself (its rename, opening a device) names it already.
            let reason = error.message.hasPrefix(target + ": ") ? String(error.message.dropFirst(target.count + 2)) : error.message
            throw TYDFSError(error.code, "cannot write to \(target): \(reason)")
        }
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

    /// Reads the bytes `range` of the file `info` describes (all of it by default), chunk after
    /// chunk, each chunk's part verified before `deliver` gets it, as the pieces it arrived in,
    /// in order: slices of the buffers received from the network, never copied into one, for a
    /// reader that sends them on as they are (an HTTP body, the mount's I/O vectors).
    ///
    /// Memory holds one piece at a time (at most about twice its bytes, see `ReceivedPieces`)
    /// besides what `deliver` has not let go of, whatever the chunk size:
    /// - a chunk of at most `Limits.readPieceBytes` the range covers whole is one piece, read
    ///   whole and checked against the checksum the master holds (a replica that fails it is
    ///   passed over for the next);
    /// - of a chunk the range covers in part, only the checksum blocks holding the range are
    ///   read, each checked against its block checksum (an S3 ranged GET of 8 MiB reads 8 MiB,
    ///   not the whole chunk);
    /// - a larger chunk (a master allows up to 4 GiB) is read in block-aligned pieces of
    ///   `Limits.readPieceBytes`, each checked block by block, and the pieces together against
    ///   the chunk's checksum before the last is delivered: a chunk that does not match it then
    ///   fails the read short of its end (what was delivered cannot be taken back, and no
    ///   replica can be told apart as the wrong one, so none is passed over).
    public func read(_ info: FileInfo, range: Range<Int64>? = nil, asReceived deliver: ([ByteBuffer]) async throws -> Void) async throws {
        try await read(info, range: range, pieceBytes: Limits.readPieceBytes, asReceived: deliver)
    }

    /// `read(_:range:asReceived:)` with pieces of at most `pieceBytes` (a multiple of
    /// `ChunkFrame.blockBytes`), which tests make small.
    func read(_ info: FileInfo, range: Range<Int64>?, pieceBytes: Int64, asReceived deliver: ([ByteBuffer]) async throws -> Void) async throws {
        let block = ChunkFrame.blockBytes
        precondition(pieceBytes > 0 && pieceBytes % block == 0, "pieces of \(pieceBytes) bytes are not whole checksum blocks")
        let range = range ?? 0..<info.sizeBytes
        let failed = FailedDataKeepers()
        for chunk in info.chunks {
            let start = Int64(chunk.index) * info.chunkSizeBytes
            let overlap = range.clamped(to: start..<(start + chunk.sizeBytes))
            if overlap.isEmpty { continue }
            let whole = overlap.count == chunk.sizeBytes
            if whole && chunk.sizeBytes <= pieceBytes {
                try await deliver(try await readWhole(chunk, failed: failed))
                continue
            }
            // Relative to the chunk: the blocks holding the overlap, piece by piece.
            let wanted = (overlap.lowerBound - start)..<(overlap.upperBound - start)
            var from = wanted.lowerBound / block * block
            let to = min((wanted.upperBound + block - 1) / block * block, chunk.sizeBytes)
            var crc: UInt32?
            while from < to {
                let piece = ChunkRange(offset: from, length: min(to, from + pieceBytes) - from)
                let received = ReceivedPieces()
                let pieceCRC = try await fetchSpread(piece, of: chunk, into: received, failed: failed)
                crc = crc.map { CRC32C.combine($0, pieceCRC, length2: piece.length) } ?? pieceCRC
                // The chunk's last piece goes only once the pieces make its checksum: a reader
                // that announced a length (an HTTP body) then ends short, which its peer notices.
                if whole, piece.offset + piece.length == chunk.sizeBytes, let crc, hex32(crc) != chunk.crc32c {
                    throw TYDFSError(.checksumMismatch, "chunk \(chunk.index), read in pieces from its replicas, has crc32c \(hex32(crc)) where the file says \(chunk.crc32c); its last \(piece.length) bytes were not delivered")
                }
                let delivered = max(wanted.lowerBound, from)..<min(wanted.upperBound, from + piece.length)
                try await deliver(try received.pieces(from: delivered.lowerBound - from, count: Int64(delivered.count)))
                from += piece.length
            }
        }
    }

    /// `chunk` whole, checked against the checksum the master holds (a replica that fails that
    /// is passed over for the next), as the pieces it arrived in.
    private func readWhole(_ chunk: ChunkInfo, failed: FailedDataKeepers) async throws -> [ByteBuffer] {
        let received = ReceivedPieces()
        try await fetch([chunk], into: received, at: { _ in 0 }, failed: failed)
        return try received.pieces(from: 0, count: chunk.sizeBytes)
    }

    /// Reads `range` (starting at a block boundary) of `chunk` into `output` at its offset from
    /// the range's start: in block-aligned parts, one per live replica (none smaller than
    /// `Limits.minimumRangeBytes`), fetched at once, each first from a different replica and
    /// verified block by block. Returns the range's CRC32C.
    private func fetchSpread(_ range: ChunkRange, of chunk: ChunkInfo, into output: ReceivedPieces, failed: FailedDataKeepers) async throws -> UInt32 {
        let firstChoice = Int(range.firstBlock)
        let parts = ChunkRange.split(
            dataBytes: range.length, parts: max(1, chunk.replicas.filter(\.alive).count), minimumBytes: Limits.minimumRangeBytes)
        if parts.count == 1 {
            return try await fetch(range, of: chunk, firstChoice: firstChoice, into: output, at: 0, failed: failed)
        }
        var crcs = [UInt32](repeating: 0, count: parts.count)
        try await withThrowingTaskGroup(of: (part: Int, crc: UInt32).self) { group in
            for (position, part) in parts.enumerated() {
                group.addTask {
                    let crc = try await self.fetch(
                        ChunkRange(offset: range.offset + part.offset, length: part.length), of: chunk, firstChoice: firstChoice + position,
                        into: output, at: part.offset, failed: failed)
                    return (position, crc)
                }
            }
            for try await done in group { crcs[done.part] = done.crc }
        }
        return zip(crcs, parts).dropFirst().reduce(crcs[0]) { CRC32C.combine($0, $1.0, length2: $1.1.length) }
    }

    /// Fetches every chunk of `info`, each written at its offset into `output`.
    private func fetchAll(_ info: FileInfo, into output: some ChunkSink, failed: FailedDataKeepers) async throws {
        try await fetch(info.chunks, into: output, at: { Int64($0.index) * info.chunkSizeBytes }, failed: failed)
    }

    /// Fetches `chunks` range by range, up to `Limits.parallelRangeDownloads` ranges at once,
    /// writing each chunk's data at `offset(chunk)` in `output`, and checks each chunk whole.
    private func fetch(
        _ chunks: [ChunkInfo], into output: some ChunkSink, at offset: @escaping @Sendable (ChunkInfo) -> Int64,
        failed: FailedDataKeepers
    ) async throws {
        let ranges = chunks.map { chunk in
            ChunkRange.split(
                dataBytes: chunk.sizeBytes, parts: max(1, chunk.replicas.filter(\.alive).count), minimumBytes: Limits.minimumRangeBytes)
        }
        let pieces = ranges.enumerated().flatMap { position, parts in
            parts.enumerated().map { (chunk: position, part: $0.offset, range: $0.element) }
        }
        var rangeCRCs: [[Int: UInt32]] = Array(repeating: [:], count: chunks.count)
        if pieces.count == 1, let piece = pieces.first {
            // A small file's one range: read in this task, without a task group around it.
            let chunk = chunks[piece.chunk]
            rangeCRCs[piece.chunk][piece.part] = try await fetch(
                piece.range, of: chunk, firstChoice: piece.part, into: output, at: offset(chunk) + piece.range.offset, failed: failed)
        } else {
            try await withThrowingTaskGroup(of: (chunk: Int, part: Int, crc: UInt32).self) { group in
                for (started, piece) in pieces.enumerated() {
                    if started >= Limits.parallelRangeDownloads, let done = try await group.next() {
                        rangeCRCs[done.chunk][done.part] = done.crc
                    }
                    let chunk = chunks[piece.chunk]
                    group.addTask {
                        let crc = try await self.fetch(
                            piece.range, of: chunk, firstChoice: piece.part, into: output, at: offset(chunk) + piece.range.offset, failed: failed)
                        return (piece.chunk, piece.part, crc)
                    }
                }
                for try await done in group { rangeCRCs[done.chunk][done.part] = done.crc }
            }
        }
        // Each range was verified block by block; together they must also be the chunk the file
        // names. If not (a replica holding a self-consistent but different chunk), the chunk is
        // read again whole, replica by replica, until one matches.
        for (position, chunk) in chunks.enumerated() {
            var crc = rangeCRCs[position][0]!
            for (part, range) in ranges[position].enumerated().dropFirst() {
                crc = CRC32C.combine(crc, rangeCRCs[position][part]!, length2: range.length)
            }
            if hex32(crc) != chunk.crc32c { try await refetchWhole(chunk, into: output, at: offset(chunk)) }
        }
    }

    /// Reads `chunk` whole from each replica in turn until one has the checksum the file names;
    /// reports every replica that does not.
    private func refetchWhole(_ chunk: ChunkInfo, into output: some ChunkSink, at offset: Int64) async throws {
        var failures: [String] = []
        for replica in chunk.replicas where !replica.address.isEmpty {
            do {
                let crc = try await fetchWatched(ChunkRange(offset: 0, length: chunk.sizeBytes), of: chunk, from: replica, into: output, at: offset)
                if hex32(crc) == chunk.crc32c { return }
                let message = "replica has crc32c \(hex32(crc)), the file says \(chunk.crc32c)"
                failures.append("\(replica.id): \(message)")
                await reportBadReplica(chunk.id, on: replica.id, message: message)
            } catch let error as LocalWriteFailure {
                throw error.underlying
            } catch {
                failures.append("\(replica.id): \(PeerError.describe(error))")
            }
        }
        throw TYDFSError(.checksumMismatch, "chunk \(chunk.index) has no replica with the checksum the file names: \(failures.joined(separator: "; "))")
    }

    /// Reads `range` of `chunk` from the first replica that delivers it intact, starting with
    /// the `firstChoice`-th live replica (so the ranges of a chunk go to different datakeepers),
    /// and writes its data at `offset`. Returns the range's CRC32C. Replicas that answer slowly
    /// (`ReplicaLatency`) and datakeepers that already failed during this download are asked last.
    /// A replica that has not answered within the hedge delay is not waited for alone: the next
    /// one is asked as well, and the first to answer serves the range.
    private func fetch(
        _ range: ChunkRange, of chunk: ChunkInfo, firstChoice: Int, into output: some ChunkSink, at offset: Int64,
        failed: FailedDataKeepers
    ) async throws -> UInt32 {
        var failures: [String] = []
        let live = chunk.replicas.filter(\.alive)
        let shift = live.isEmpty ? 0 : firstChoice % live.count
        let now = Self.monotonicSeconds()
        var spread = replicaLatency.withLockedValue { $0.ranked(Array(live[shift...] + live[..<shift]), id: \.id, now: now) }
        if Self.isBatchedRead(range, of: chunk) {
            // A small chunk joins the batch forming at a quick replica, if one is: fewer, fuller
            // batches cost the datakeepers and this client less than one request per chunk. Only
            // while every replica has been timed recently: reads gathered on one datakeeper
            // leave the others untimed, and a replica is known slow only beside quicker ones, so
            // once their timings lapse the spread order stands until they are timed again.
            spread = replicaLatency.withLockedValue { latency in
                guard live.allSatisfy({ latency.seconds($0.id, now: now) != nil }) else { return spread }
                return chunkReadBatches.busiestFirst(spread, address: \.address) { !latency.isSlow($0.id, now: now) }
            }
        }
        let ranked = spread + chunk.replicas.filter { !$0.alive && !$0.address.isEmpty }
        let known = await failed.all
        var candidates = ranked.filter { !known.contains($0.id) } + ranked.filter { known.contains($0.id) }
        if candidates.isEmpty {
            throw TYDFSError(.unavailable, "chunk \(chunk.index) of the file has no replica on a live datakeeper")
        }
        while !candidates.isEmpty {
            var refused: Set<DataKeeperID> = []
            let opened = try await openFirst(range, of: chunk, among: candidates, failures: &failures, refused: &refused, failed: failed)
            candidates.removeAll { refused.contains($0.id) || $0.id == opened?.replica.id }
            guard let (replica, response) = opened else { break }
            do {
                return try await receiveWatched(response, range: range, from: replica, into: output, at: offset)
            } catch let error as LocalWriteFailure {
                throw error.underlying
            } catch {
                // A get that was stopped: not the replica's failure.
                try Task.checkCancellation()
                await noteFailure(error, reading: range, of: chunk, from: replica, failures: &failures, failed: failed)
            }
        }
        throw TYDFSError(.unavailable, "chunk \(chunk.index) (\(range)) could not be read from any replica: \(failures.joined(separator: "; "))")
    }

    /// Asks `candidates`, in order, for `range` of `chunk`: the first at once, each next one when
    /// the ones asked have not answered within the hedge delay or have all failed. Returns the
    /// first replica to answer 200 with its response (the others are cancelled; those asked
    /// before it count for `ReplicaLatency` as at least as slow as they proved), or nil when every
    /// candidate failed. The ones that failed are added to `refused` and noted (`noteFailure`)
    /// once the race is over; a hedge that lost did not fail.
    private func openFirst(
        _ range: ChunkRange, of chunk: ChunkInfo, among candidates: [DataKeeperAddress], failures: inout [String],
        refused: inout Set<DataKeeperID>, failed: FailedDataKeepers
    ) async throws -> (replica: DataKeeperAddress, response: RangeAnswer)? {
        enum Event: Sendable {
            case answered(Int, RangeAnswer, seconds: Double)
            case failed(Int, any Error)
            /// The hedge timer armed as the `generation`-th fired.
            case hedgeTimerFired(generation: Int)
        }
        let latency = replicaLatency
        typealias Opened = (replica: DataKeeperAddress, response: RangeAnswer)
        typealias Outcome = (winner: Opened?, attemptsFailed: [(index: Int, error: any Error)])
        let (winner, attemptsFailed) = await withTaskGroup(of: Event.self, returning: Outcome.self) { group -> Outcome in
            var askedAt: [ContinuousClock.Instant] = []
            var asked: Int { askedAt.count }
            var waiting = 0
            var attemptsFailed: [(index: Int, error: any Error)] = []
            // A timer armed for the current wait; a new ask re-arms it, and older ones are ignored.
            var timerGeneration = 0
            var timerArmed = false
            func askNext() {
                let index = asked
                let started = ContinuousClock.now
                askedAt.append(started)
                waiting += 1
                timerArmed = false
                group.addTask {
                    do {
                        let response = try await self.open(range, of: chunk, from: candidates[index])
                        return .answered(index, response, seconds: started.duration(to: .now).inSeconds)
                    } catch {
                        return .failed(index, error)
                    }
                }
            }
            askNext()
            while waiting > 0, !Task.isCancelled {
                if asked < candidates.count, !timerArmed {
                    timerArmed = true
                    timerGeneration += 1
                    let generation = timerGeneration
                    let delay = latency.withLockedValue { $0.hedgeDelaySeconds(now: Self.monotonicSeconds()) }
                    group.addTask {
                        try? await Task.sleep(nanoseconds: UInt64(delay * 1e9))
                        return .hedgeTimerFired(generation: generation)
                    }
                }
                guard let event = await group.next() else { break }
                switch event {
                case .hedgeTimerFired(let generation):
                    guard generation == timerGeneration, !Task.isCancelled, asked < candidates.count else { continue }
                    logger.info("replica slow to answer, asking the next as well", metadata: [
                        "chunk.id": "\(chunk.id)", "range": "\(range)", "datakeeper.id": "\(candidates[asked - 1].id)",
                        "next": "\(candidates[asked].id)",
                    ])
                    askNext()
                case .answered(let index, let response, let seconds):
                    let now = ContinuousClock.now, nowSeconds = Self.monotonicSeconds()
                    let failedIndices = Set(attemptsFailed.map(\.index))
                    // Those asked before the winner and still silent took at least this long.
                    let lost = (0..<index).filter { !failedIndices.contains($0) }
                    latency.withLockedValue { latency in
                        latency.record(candidates[index].id, seconds: seconds, now: nowSeconds)
                        for other in lost {
                            latency.recordAtLeast(candidates[other].id, seconds: askedAt[other].duration(to: now).inSeconds, now: nowSeconds)
                        }
                    }
                    group.cancelAll()
                    return (winner: (replica: candidates[index], response: response), attemptsFailed: attemptsFailed)
                case .failed(let index, let error):
                    waiting -= 1
                    attemptsFailed.append((index, error))
                    if waiting == 0, asked < candidates.count { askNext() }
                }
            }
            group.cancelAll()
            return (winner: nil, attemptsFailed: attemptsFailed)
        }
        try Task.checkCancellation()
        for (index, error) in attemptsFailed {
            refused.insert(candidates[index].id)
            await noteFailure(error, reading: range, of: chunk, from: candidates[index], failures: &failures, failed: failed)
        }
        return winner
    }

    /// Seconds on a clock that never jumps, for `ReplicaLatency`.
    private static func monotonicSeconds() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    /// Records that reading `range` of `chunk` from `replica` failed: in `failures` (for the
    /// error message), in `failed` (tried last from now on), and with the master when the
    /// replica sent data that does not verify.
    private func noteFailure(
        _ error: any Error, reading range: ChunkRange, of chunk: ChunkInfo, from replica: DataKeeperAddress,
        failures: inout [String], failed: FailedDataKeepers
    ) async {
        failures.append("\(replica.id): \(PeerError.describe(error))")
        await failed.add(replica.id)
        if let error = error as? TYDFSError, error.code == .checksumMismatch || error.code == .protocolViolation {
            await reportBadReplica(chunk.id, on: replica.id, message: error.message)
        }
        logger.warning("replica failed, trying the next", metadata: [
            "chunk.id": "\(chunk.id)", "range": "\(range)", "datakeeper.id": "\(replica.id)", "error": "\(error)",
        ])
    }

    /// Reads `range` of `chunk` from `replica`, abandoning it when it sends nothing for
    /// `Limits.readStallSeconds`; returns the range's CRC32C.
    private func fetchWatched(
        _ range: ChunkRange, of chunk: ChunkInfo, from replica: DataKeeperAddress, into output: some ChunkSink, at offset: Int64
    ) async throws -> UInt32 {
        let response = try await open(range, of: chunk, from: replica)
        return try await receiveWatched(response, range: range, from: replica, into: output, at: offset)
    }

    /// Receives `response` (see `receive`), abandoning it when `replica` sends nothing for
    /// `Limits.readStallSeconds`.
    private func receiveWatched(
        _ response: RangeAnswer, range: ChunkRange, from replica: DataKeeperAddress, into output: some ChunkSink, at offset: Int64
    ) async throws -> UInt32 {
        let progress = TransferProgress(stallSeconds: Limits.readStallSeconds)
        // A frame already in memory waits on no peer.
        if case .whole = response { return try await receive(response, range: range, from: replica, into: output, at: offset, progress: progress) }
        return try await StallGuard.run(progress) {
            try await self.receive(response, range: range, from: replica, into: output, at: offset, progress: progress)
        }
    }

    /// Whether reading `range` of `chunk` goes in a batched read (`Route.chunkBatch`): a small
    /// chunk read whole.
    private static func isBatchedRead(_ range: ChunkRange, of chunk: ChunkInfo) -> Bool {
        range.offset == 0 && range.length == chunk.sizeBytes && range.length <= Limits.batchedChunkMaxBytes
    }

    /// Asks `replica` for `range` of `chunk` and returns its answer: the range's frame still
    /// streaming in, or, for a small chunk read whole, the frame itself. Fails when the replica
    /// answers otherwise or sends no answer for `Limits.readStallSeconds`.
    ///
    /// A small chunk read whole waits while a batched read to the same datakeeper is out, and
    /// goes with the others in the next (`GET` of `Route.chunkBatch`). A chunk that batch does
    /// not serve is asked for alone, so its answer is the datakeeper's own, as without batches.
    private func open(_ range: ChunkRange, of chunk: ChunkInfo, from replica: DataKeeperAddress) async throws -> RangeAnswer {
        if Self.isBatchedRead(range, of: chunk), let token = chunk.token,
           let batch = chunkReadBatches.coalescer(for: replica.address, at: replica.address) {
            do {
                let item = BatchedChunk(chunk: chunk.id, dataBytes: range.length, token: token)
                return .whole(try await chunkReadBatches.ask(item, of: batch, at: replica.address) { items in
                    try await self.readBatch(items, from: replica)
                })
            } catch is ChunkNotInBatch {
                // Asked alone below.
            } catch let error as TYDFSError where error.code == .notFound {
                // A datakeeper from before batched reads: this chunk, and every later one, alone.
                chunkReadBatches.withoutRoute.missing(at: replica.address)
            }
        }
        return .streaming(try await openAlone(range, of: chunk, from: replica))
    }

    /// Asks `replica` for `range` of `chunk` alone and returns its 200 response, whose body is the
    /// range's frame.
    private func openAlone(_ range: ChunkRange, of chunk: ChunkInfo, from replica: DataKeeperAddress) async throws -> HTTPClientResponse {
        let whole = range.offset == 0 && range.length == chunk.sizeBytes
        var request = HTTPClientRequest(url: "\(scheme)://\(replica.address)" + (whole ? Route.chunk(chunk.id.value) : Route.chunk(chunk.id.value, range: range)))
        request.method = .GET
        request.carryRequestID()
        if let token = chunk.token { request.headers.add(name: Header.chunkToken, value: token) }
        let deadline = Limits.transferDeadlineSeconds(frameBytes: ChunkFrame.frameBytes(dataBytes: range.length), hops: 1)
        let (http, prepared) = (self.http, request)
        return try await StallGuard.run(TransferProgress(stallSeconds: Limits.readStallSeconds)) {
            let response = try await http.execute(prepared, timeout: .seconds(deadline))
            guard response.status == .ok else {
                let payload = try await response.body.collect(upTo: Limits.maxControlMessageBytes)
                try PeerError.check(status: response.status, payload: payload, peer: "datakeeper \(replica.id)")
                throw TYDFSError(.protocolViolation, "datakeeper \(replica.id) answered HTTP \(response.status.code)")
            }
            return response
        }
    }

    /// One batched read of the whole small chunks `items` from `replica`: each one's frame, or
    /// `ChunkNotInBatch` for one it did not serve. A chunk several callers read at once is asked
    /// for once, and each gets its frame. The exchange gets a single read's stall allowance
    /// (renewed by every piece of the body that arrives) and the deadline of a single read of
    /// all the frames; the body is read up to the frames' size and no further.
    private func readBatch(_ items: [BatchedChunk], from replica: DataKeeperAddress) async throws -> [Result<ByteBuffer, any Error>] {
        var asked: [BatchedChunk] = []
        var position: [ChunkID: Int] = [:]
        for item in items where position[item.chunk] == nil {
            position[item.chunk] = asked.count
            asked.append(item)
        }
        var request = HTTPClientRequest(url: "\(scheme)://\(replica.address)\(Route.chunkBatch)")
        request.method = .GET
        request.carryRequestID()
        request.headers.add(name: Header.chunks, value: BatchedChunk.encode(asked))
        let frameBytes = asked.map { ChunkFrame.frameBytes(dataBytes: $0.dataBytes) }
        let deadline = Limits.transferDeadlineSeconds(frameBytes: frameBytes.reduce(0, +), hops: 1)
        let peer = "datakeeper \(replica.id)"
        let (http, prepared, count) = (self.http, request, asked.count)
        let progress = TransferProgress(stallSeconds: Limits.readStallSeconds)
        let (statuses, body) = try await StallGuard.run(progress) {
            let response = try await http.execute(prepared, timeout: .seconds(deadline))
            guard response.status == .ok else {
                let payload = try await response.body.collect(upTo: Limits.maxControlMessageBytes)
                try PeerError.check(status: response.status, payload: payload, peer: peer)
                throw TYDFSError(.protocolViolation, "\(peer) answered HTTP \(response.status.code)")
            }
            guard let statuses = response.headers.first(name: Header.chunkStatuses).flatMap(ChunkStatusList.decode), statuses.count == count else {
                throw TYDFSError(.protocolViolation, "\(peer) answered a batched read of \(count) chunks without a status for each")
            }
            let served = Int(zip(statuses, frameBytes).filter { $0.0 == 200 }.reduce(Int64(0)) { $0 + $1.1 })
            var body = ByteBuffer()
            body.reserveCapacity(served)
            for try await var piece in ProgressReportingSequence(response.body, progress: progress) {
                guard body.readableBytes + piece.readableBytes <= served else {
                    throw TYDFSError(.protocolViolation, "\(peer) sent more than the \(served) bytes of the chunks it served in a batched read")
                }
                body.writeBuffer(&piece)
            }
            guard body.readableBytes == served else {
                throw TYDFSError(.protocolViolation, "\(peer) sent \(body.readableBytes) bytes for a batched read, not the \(served) of the chunks it served")
            }
            return (statuses, body)
        }
        var offset = body.readerIndex
        let frames: [Result<ByteBuffer, any Error>] = zip(statuses, frameBytes).map { status, bytes in
            guard status == 200 else { return .failure(ChunkNotInBatch()) }
            defer { offset += Int(bytes) }
            return .success(body.getSlice(at: offset, length: Int(bytes))!)
        }
        // An item that names its chunk at another size than the entry listed (metadata that
        // disagrees with itself) is read alone, never handed a frame of the other size.
        return items.map { item in
            let entry = position[item.chunk]!
            return asked[entry].dataBytes == item.dataBytes ? frames[entry] : .failure(ChunkNotInBatch())
        }
    }

    /// Receives the frame of `range` that `replica` answered with, telling `progress` about every
    /// piece (its clock stops while the local disk is written), writes its data at `offset`, and
    /// returns the range's CRC32C.
    private func receive(
        _ answer: RangeAnswer, range: ChunkRange, from replica: DataKeeperAddress, into output: some ChunkSink,
        at offset: Int64, progress: TransferProgress
    ) async throws -> UInt32 {
        var reader = ChunkFrameReader(dataBytes: range.length)
        let response: HTTPClientResponse
        switch answer {
        case .streaming(let streaming):
            response = streaming
        case .whole(let frame):
            try frame.withUnsafeReadableBytes { try reader.consume($0) { _ in } }
            let crc = try reader.finish()
            let data = frame.getSlice(at: frame.readerIndex, length: Int(range.length))!
            try await LocalWriteFailure.wrap { try await output.write([data], at: offset) }
            return crc
        }
        // The data part of each piece, kept as slices (no copy) until an I/O buffer's worth is
        // written in one go.
        var pending: [ByteBuffer] = []
        var pendingBytes: Int64 = 0
        var written: Int64 = 0
        for try await piece in response.body {
            progress.advance()
            let before = reader.dataBytesEmitted
            try piece.withUnsafeReadableBytes { try reader.consume($0) { _ in } }
            let data = Int(reader.dataBytesEmitted - before)
            if data > 0 {
                pending.append(piece.getSlice(at: piece.readerIndex, length: data)!)
                pendingBytes += Int64(data)
            }
            if pendingBytes >= Limits.ioBufferBytes {
                progress.pause()
                try await LocalWriteFailure.wrap { [pending] in try await output.write(pending, at: offset + written) }
                progress.advance()
                written += pendingBytes
                pending.removeAll(keepingCapacity: true)
                pendingBytes = 0
            }
        }
        let crc = try reader.finish()
        if pendingBytes > 0 {
            try await LocalWriteFailure.wrap { [pending] in try await output.write(pending, at: offset + written) }
        }
        return crc
    }
}

/// A replica's answer to a range read: the range's frame still streaming in, or a small chunk's
/// whole frame, read in a batch with others.
enum RangeAnswer: Sendable {
    case streaming(HTTPClientResponse)
    case whole(ByteBuffer)
}

/// A chunk a batched read did not serve (it answered its own status for it): it is then asked
/// for alone, whose answer says why.
struct ChunkNotInBatch: Error {}

/// Where a download's verified chunk data goes: a local file or memory. Ranges arrive in
/// parallel, each at its own offset, as runs of buffers received from the network.
protocol ChunkSink: Sendable {
    func write(_ pieces: [ByteBuffer], at offset: Int64) async throws
}

/// A download's local file. Writes of parallel ranges take turns, each run of buffers in one
/// trip to the thread pool: two `pwrite`s into one file at once contend for the kernel's inode
/// lock, which spins (7 % of a 1 GiB get's CPU, measured with perf). After each run the disk's
/// writeback is started, so the data reaches the disk while the download goes on instead of
/// all at the end.
final class DownloadFile: ChunkSink {
    private let file: LocalFile
    /// What a failed write names (`cannot write to TARGET: …`), when not the file itself.
    private let target: String?
    private let turn = NIOLock()
    private let meter = TransferMeter.current

    init(_ file: LocalFile, naming target: String? = nil) {
        self.file = file
        self.target = target
    }

    func write(_ pieces: [ByteBuffer], at offset: Int64) async throws {
        defer { meter?.add(pieces.reduce(0) { $0 + $1.readableBytes }) }
        guard let target else { return try await writeBlocking(pieces, at: offset) }
        try await TYDFSClient.writingLocally(target) { try await writeBlocking(pieces, at: offset) }
    }

    private func writeBlocking(_ pieces: [ByteBuffer], at offset: Int64) async throws {
        try await LocalFile.blocking { [file, turn] in
            try turn.withLock {
                var position = offset
                for piece in pieces {
                    try file.writeBlocking(piece, at: position)
                    position += Int64(piece.readableBytes)
                }
                file.startWritebackBlocking()
            }
        }
    }
}

/// A whole file in memory, filled range by range by parallel fetches.
final class MemorySink: ChunkSink {
    private let buffer: NIOLockedValueBox<ByteBuffer>

    /// Room for `sizeBytes`, not zeroed: every byte is written by a fetched range (and checked)
    /// before anyone reads it.
    init(sizeBytes: Int) {
        var bytes = ByteBufferAllocator().buffer(capacity: sizeBytes)
        bytes.moveWriterIndex(forwardBy: sizeBytes)
        buffer = NIOLockedValueBox(bytes)
    }

    func write(_ pieces: [ByteBuffer], at offset: Int64) async throws {
        buffer.withLockedValue { bytes in
            var position = Int(offset)
            for piece in pieces { position += bytes.setBuffer(piece, at: position) }
        }
    }

    var bytes: ByteBuffer { buffer.withLockedValue { $0 } }
}

/// Verified data kept as the pieces it arrived in, each at its offset: slices of the buffers
/// received from the network, never copied. A range received again (from another replica, after
/// a failure or a wrong checksum) replaces what it covers, as a write into memory would.
///
/// A slice keeps its buffer's whole storage alive. A piece that would keep more than twice its
/// bytes (a small chunk's slice of a batched read's body, a short read into a TLS buffer that
/// grew) is copied out when it arrives, so what is held is at most about twice the data.
final class ReceivedPieces: ChunkSink {
    private let placed = NIOLockedValueBox(PlacedBytes())

    func write(_ pieces: [ByteBuffer], at offset: Int64) async throws {
        var incoming: [(offset: Int64, bytes: ByteBuffer)] = []
        var end = offset
        for piece in pieces where piece.readableBytes > 0 {
            incoming.append((end, piece.storageCapacity > 2 * piece.readableBytes ? ByteBuffer(buffer: piece) : piece))
            end += Int64(piece.readableBytes)
        }
        placed.withLockedValue { [end] in $0.place(incoming, from: offset, to: end) }
    }

    /// `count` bytes from `start`, as slices of the pieces in order. Throws if some of them
    /// never arrived (a defect: a fetch returns only once its every byte is written).
    func pieces(from start: Int64, count: Int64) throws -> [ByteBuffer] {
        let slices = placed.withLockedValue { $0.slices(from: start, count: count) }
        let held = slices.reduce(Int64(0)) { $0 + Int64($1.readableBytes) }
        guard held == count else { throw TYDFSError(.internal, "bytes \(start + held)..<\(start + count) of a read never arrived") }
        return slices
    }
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
