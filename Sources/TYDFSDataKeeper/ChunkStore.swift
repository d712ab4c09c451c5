import Glibc
import Logging
import NIOConcurrencyHelpers
import NIOCore
import TYDFSCore
import TYDFSFileIO

/// The chunks on one datakeeper's disk: which it holds, where, how much room is left, and the
/// two ways a chunk becomes durable before it is acknowledged.
///
/// - **Small chunks** (frame ≤ `Limits.volumeChunkMaxBytes`) are appended as records to the
///   active volume, `volumes/<n>.vol` (see `VolumeRecord`), and acknowledged once an
///   `fdatasync` that started after their record was written has ended. Concurrent writers
///   share those syncs (`GroupCommit`): no rename, no folder fsync, one sync for a whole batch.
///   A deletion appends a tombstone, synced the same way. A volume is created (and its folder
///   fsynced) once and rolls over at `Limits.volumeMaxBytes`. At start-up every volume is
///   scanned to rebuild the index and a torn tail is cut off (`VolumeScanner`).
/// - **Large chunks** keep a file each, `chunks/ab/<chunk id>` (fanned out by the first two hex
///   digits), written in `tmp/`, fsynced, renamed into place and the folder fsynced; `tmp/` is
///   emptied at start-up, since anything there was interrupted.
///
/// `corrupt/` keeps chunks of either kind that failed verification, out of service but not destroyed.
///
/// Space freed in volumes by deletions is not reclaimed: there is no compaction yet.
actor ChunkStore {
    /// Where a chunk in a volume is: 12 bytes, so 3,000,000 chunks index in ≈ 120 MiB.
    struct VolumeLocation: Equatable {
        let volume: UInt32
        /// Offset of the record's header (volumes end before 4 GiB, see `Limits.volumeMaxBytes`).
        let recordOffset: UInt32
        let frameBytes: UInt32
    }

    /// Where a held chunk's frame is, for readers.
    enum Placement: Equatable {
        case ownFile(path: String)
        case volume(frameBytes: Int64)

        /// The chunk's size on disk (0 for a file gone meanwhile).
        var frameBytes: Int64 {
            switch self {
            case .ownFile(let path): return LocalFileSystem.fileSize(path) ?? 0
            case .volume(let frameBytes): return frameBytes
            }
        }
    }

    /// A writer waiting for the sync that covers its record.
    private struct SyncWaiter {
        let volume: LocalFile
        let continuation: CheckedContinuation<Void, Error>
    }

    let directory: String
    private let configuredCapacityBytes: Int64?
    private let logger: Logger
    /// Makes a volume's appended records durable; `fdatasync` unless a test counts or slows it.
    private let syncVolume: @Sendable (LocalFile) async throws -> Void
    /// Chunks in files of their own, with their frame sizes (large chunks: few).
    private var ownFiles: [ChunkID: Int64] = [:]
    /// Chunks in volumes (small chunks: possibly millions).
    private var inVolumes: [ChunkID: VolumeLocation] = [:]
    private var usedBytes: Int64 = 0
    private var reservations: [ChunkID: Int64] = [:]
    private var reservedBytes: Int64 = 0
    private var changes = ChunkChangeLog()
    private var volumes: [UInt32: LocalFile] = [:]
    /// The volume taking appends, and where its next record goes.
    private var active: (number: UInt32, endBytes: Int64)?
    /// The creation of the next volume, awaited by every writer that finds the active one full.
    private var creatingVolume: Task<LocalFile, Error>?
    private var groupCommit = GroupCommit<SyncWaiter>()

    init(
        directory: String, capacityBytes: Int64?, logger: Logger = Logger(label: "tydfs.chunkstore"),
        syncVolume: @escaping @Sendable (LocalFile) async throws -> Void = { try await $0.dataSync() }
    ) throws {
        self.directory = directory
        self.configuredCapacityBytes = capacityBytes
        self.logger = logger
        self.syncVolume = syncVolume
        try LocalFileSystem.makeDirectories(directory + "/chunks")
        try LocalFileSystem.makeDirectories(directory + "/tmp")
        try LocalFileSystem.makeDirectories(directory + "/corrupt")
        try LocalFileSystem.makeDirectories(directory + "/volumes")
        // All 256 fan-out folders exist before any chunk is acknowledged, and `chunks/` and
        // `volumes/` are synced once, so no chunk depends on a folder created moments before.
        for fan in 0..<256 { try LocalFileSystem.makeDirectories("\(directory)/chunks/\(hex32(UInt32(fan)).suffix(2))") }
        try LocalFileSystem.syncDirectory(directory + "/chunks")
        try LocalFileSystem.syncDirectory(directory + "/volumes")
        for name in try LocalFileSystem.list(directory + "/tmp") {
            _ = unlink(directory + "/tmp/" + name)
        }
        var found: [ChunkID: Int64] = [:]
        for fan in try LocalFileSystem.list(directory + "/chunks") {
            for name in try LocalFileSystem.list(directory + "/chunks/" + fan) {
                guard let id = try? ChunkID(name), let size = LocalFileSystem.fileSize("\(directory)/chunks/\(fan)/\(name)") else { continue }
                // Longer than any chunk's frame (damage, or a file made by hand): not a chunk,
                // and its size must not reach the space counted.
                guard size <= ChunkFrame.frameBytes(dataBytes: Limits.maxChunkSizeBytes) else {
                    logger.error("file longer than any chunk ignored", metadata: ["path": "\(directory)/chunks/\(fan)/\(name)", "bytes": "\(size)"])
                    continue
                }
                found[id] = size
            }
        }
        let loaded = try Self.loadVolumes(in: directory + "/volumes", logger: logger)
        ownFiles = found
        inVolumes = loaded.index
        volumes = loaded.files
        active = loaded.active
        usedBytes = found.values.reduce(0, +) + loaded.usedBytes
    }

    /// What start-up learns from the volumes.
    private struct LoadedVolumes {
        var index: [ChunkID: VolumeLocation] = [:]
        var files: [UInt32: LocalFile] = [:]
        var active: (number: UInt32, endBytes: Int64)?
        var usedBytes: Int64 = 0
    }

    /// Scans every volume, oldest first (so a later record of a chunk overrides an earlier one),
    /// into the index, cutting off torn tails.
    private static func loadVolumes(in folder: String, logger: Logger) throws -> LoadedVolumes {
        var loaded = LoadedVolumes()
        for number in try LocalFileSystem.list(folder).compactMap(volumeNumber(fileName:)).sorted() {
            let file = try LocalFile.openForUpdatingBlocking("\(folder)/\(number).vol")
            let size = try file.sizeBlocking()
            let result = try VolumeScanner.scan(
                volumeBytes: size, blockBytes: Limits.volumeScanBlockBytes, read: { try file.readBlocking(count: $1, at: $0) }
            ) { record in
                let old: VolumeLocation?
                switch record.header.kind {
                case .chunk:
                    // Volumes end near `Limits.volumeMaxBytes`; a record past 4 GiB is damage.
                    guard let offset = UInt32(exactly: record.offset) else {
                        logger.error("volume record past 4 GiB skipped", metadata: ["volume": "\(file.path)", "offset": "\(record.offset)"])
                        return
                    }
                    let location = VolumeLocation(volume: number, recordOffset: offset, frameBytes: UInt32(record.header.frameBytes))
                    old = loaded.index.updateValue(location, forKey: record.header.chunk)
                    loaded.usedBytes += record.header.frameBytes
                case .tombstone:
                    old = loaded.index.removeValue(forKey: record.header.chunk)
                }
                if let old { loaded.usedBytes -= Int64(old.frameBytes) }
            }
            for range in result.damaged {
                logger.error("damaged volume bytes skipped; the chunks in them are lost here", metadata: [
                    "volume": "\(file.path)", "offset": "\(range.lowerBound)", "bytes": "\(range.count)",
                ])
            }
            if result.validBytes < size {
                logger.warning("torn volume tail cut off", metadata: [
                    "volume": "\(file.path)", "offset": "\(result.validBytes)", "bytes": "\(size - result.validBytes)",
                ])
                try file.truncateDurablyBlocking(to: result.validBytes)
            }
            loaded.files[number] = file
            loaded.active = (number, result.validBytes)
        }
        return loaded
    }

    static func volumeNumber(fileName: String) -> UInt32? {
        guard fileName.hasSuffix(".vol") else { return nil }
        // Digits only, as `volumePath` writes them ("+5" or "05" would name another file), and
        // never the last number, which no volume may take (`claimSpace`).
        let stem = fileName.dropLast(4)
        guard let number = UInt32(stem), String(number) == stem, number < .max else { return nil }
        return number
    }

    nonisolated func volumePath(_ number: UInt32) -> String { "\(directory)/volumes/\(number).vol" }

    nonisolated func path(of id: ChunkID) -> String {
        "\(directory)/chunks/\(id.value.prefix(2))/\(id.value)"
    }

    /// A fresh temporary path for writing a large chunk's file.
    nonisolated func temporaryPath(for id: ChunkID) -> String {
        "\(directory)/tmp/\(id.value).\(hex64(UInt64.random(in: .min ... .max)))"
    }

    var capacityBytes: Int64 {
        configuredCapacityBytes ?? (usedBytes + (LocalFileSystem.availableBytes(at: directory) ?? 0))
    }

    struct Usage: Sendable {
        var capacityBytes: Int64
        var usedBytes: Int64
        var chunkCount: Int
    }

    /// Frame bytes of the chunks held (space of deleted volume records is not counted: it is
    /// reclaimable, not held).
    func usage() -> Usage {
        Usage(capacityBytes: capacityBytes, usedBytes: usedBytes, chunkCount: ownFiles.count + inVolumes.count)
    }

    func chunkIDs() -> [ChunkID] { (Array(ownFiles.keys) + Array(inVolumes.keys)).sorted() }

    func contains(_ id: ChunkID) -> Bool { ownFiles[id] != nil || inVolumes[id] != nil }

    /// Where a held chunk is, or nil.
    func placement(of id: ChunkID) -> Placement? {
        if ownFiles[id] != nil { return .ownFile(path: path(of: id)) }
        return inVolumes[id].map { .volume(frameBytes: Int64($0.frameBytes)) }
    }

    /// Where a chunk's record is in its volume (for tests that damage it).
    func volumeLocation(of id: ChunkID) -> VolumeLocation? { inVolumes[id] }

    // MARK: - Change log

    /// Takes the chunks that appeared (stored, copied) and disappeared (deleted, quarantined,
    /// found missing) since the last call; see `ChunkChangeLog`.
    func drainChanges() -> (added: [ChunkID], removed: [ChunkID]) { changes.drain() }

    /// Puts back a drained batch whose heartbeat failed; newer changes of the same chunks win.
    func restoreChanges(added: [ChunkID], removed: [ChunkID]) { changes.restore(added: added, removed: removed) }

    /// Every chunk held, as a full report's snapshot, with the change log emptied in the same
    /// step: later changes go out as changes, earlier ones are in the snapshot.
    func snapshotForReport() -> [ChunkID] {
        changes = ChunkChangeLog()
        // One array, unsorted (the master needs no order): with millions of chunks, every extra
        // copy is tens of MiB.
        var held: [ChunkID] = []
        held.reserveCapacity(ownFiles.count + inVolumes.count)
        held.append(contentsOf: ownFiles.keys)
        held.append(contentsOf: inVolumes.keys)
        return held
    }

    /// Whether the change log forgot changes since the last call, so that only a full chunk
    /// report can bring the master up to date.
    func takeChangeLogOverflow() -> Bool { changes.takeOverflow() }

    // MARK: - Writing

    /// Claims room for a chunk about to be written.
    func reserve(_ id: ChunkID, frameBytes: Int64) throws {
        guard !contains(id), reservations[id] == nil else {
            throw TYDFSError(.alreadyExists, "chunk \(id) is already stored or being written here")
        }
        let free = capacityBytes - usedBytes - reservedBytes
        guard free >= frameBytes else {
            throw TYDFSError(.insufficientSpace, "no room for a \(ByteSize.format(frameBytes)) chunk: \(ByteSize.format(max(0, free))) free")
        }
        reservations[id] = frameBytes
        reservedBytes += frameBytes
    }

    private func release(_ id: ChunkID) {
        if let bytes = reservations.removeValue(forKey: id) { reservedBytes -= bytes }
    }

    /// Moves a fully written and fsynced temporary file into place; the large chunk now exists.
    func commitOwnFile(_ id: ChunkID, temporaryPath: String, frameBytes: Int64) async throws {
        do {
            try await LocalFileSystem.renameDurably(temporaryPath, to: path(of: id))
        } catch {
            // The rename may have happened and only the folder's fsync failed: the chunk is then
            // neither durable nor tracked, and must not stay in place for the next start to find.
            _ = try? await LocalFileSystem.remove(path(of: id))
            throw error
        }
        release(id)
        ownFiles[id] = frameBytes
        usedBytes += frameBytes
        changes.added(id)
    }

    /// Appends a verified small chunk's record (its header, then its frame) to the active volume
    /// and returns once it is durable; the chunk now exists. On failure it is not held and its
    /// reservation is given back.
    func commitToVolume(_ id: ChunkID, record: ByteBuffer) async throws {
        let frameBytes = Int64(record.readableBytes - VolumeRecord.headerBytes)
        precondition(frameBytes <= Limits.volumeChunkMaxBytes, "a large chunk cannot go into a volume")
        hold([(id, frameBytes)], from: try await appendReleasing([id], record))
    }

    /// Appends the records of several verified, reserved small chunks (a chunk batch's) to the
    /// active volume one after another, in one write made durable by one `fdatasync`, and
    /// returns once they are durable; the chunks now exist. Written one by one, the first would
    /// start a sync of its own and the others wait for the next. On failure none is held and
    /// their reservations are given back.
    func commitToVolume(frames: [(id: ChunkID, frame: ByteBuffer)]) async throws {
        guard !frames.isEmpty else { return }
        var records = ByteBuffer()
        records.reserveCapacity(frames.reduce(0) { $0 + VolumeRecord.headerBytes + $1.frame.readableBytes })
        for (id, frame) in frames {
            precondition(Int64(frame.readableBytes) <= Limits.volumeChunkMaxBytes, "a large chunk cannot go into a volume")
            records.writeBytes(VolumeRecord.chunkHeader(id, frameBytes: Int64(frame.readableBytes)))
            records.writeImmutableBuffer(frame)
        }
        hold(frames.map { ($0.id, Int64($0.frame.readableBytes)) }, from: try await appendReleasing(frames.map(\.id), records))
    }

    /// `append`, giving back the reservations of `chunks` if it fails: none of them is held.
    private func appendReleasing(_ chunks: [ChunkID], _ records: ByteBuffer) async throws -> (volume: UInt32, recordOffset: UInt32) {
        do {
            return try await append(records)
        } catch {
            for id in chunks { release(id) }
            throw error
        }
    }

    /// Records chunks whose records lie one after another from `location` as held.
    private func hold(_ chunks: [(id: ChunkID, frameBytes: Int64)], from location: (volume: UInt32, recordOffset: UInt32)) {
        var offset = location.recordOffset
        for (id, frameBytes) in chunks {
            release(id)
            inVolumes[id] = VolumeLocation(volume: location.volume, recordOffset: offset, frameBytes: UInt32(frameBytes))
            usedBytes += frameBytes
            changes.added(id)
            offset += UInt32(VolumeRecord.headerBytes) + UInt32(frameBytes)
        }
    }

    /// Gives up a reservation and removes the partial file, if any.
    func abandon(_ id: ChunkID, temporaryPath: String?) async {
        release(id)
        if let temporaryPath { _ = try? await LocalFileSystem.remove(temporaryPath) }
    }

    // MARK: - Reading

    /// The frame of a chunk held in a volume, read with its header checked; nil when the chunk
    /// is not in a volume here. A damaged header is a checksum mismatch like damaged data.
    func readVolumeFrame(_ id: ChunkID) async throws -> ByteBuffer? {
        guard let location = inVolumes[id], let file = volumes[location.volume] else { return nil }
        var record = try await file.read(count: VolumeRecord.headerBytes + Int(location.frameBytes), at: Int64(location.recordOffset))
        let header = record.getBytes(at: record.readerIndex, length: min(record.readableBytes, VolumeRecord.headerBytes)) ?? []
        guard VolumeRecord.decode(header) == VolumeRecord.Header(kind: .chunk, chunk: id, frameBytes: Int64(location.frameBytes)),
              record.readableBytes == VolumeRecord.headerBytes + Int(location.frameBytes)
        else {
            throw TYDFSError(.checksumMismatch, "chunk \(id): its record header in \(file.path) at offset \(location.recordOffset) is damaged")
        }
        record.moveReaderIndex(forwardBy: VolumeRecord.headerBytes)
        return record
    }

    // MARK: - Removing

    /// Takes a chunk that failed verification out of service: its frame is kept in `corrupt/`,
    /// and it is no longer held. Returns false when the chunk was not held (already deleted or
    /// quarantined).
    @discardableResult
    func quarantine(_ id: ChunkID) async -> Bool {
        let kept = "\(directory)/corrupt/\(id.value)"
        if let size = ownFiles.removeValue(forKey: id) {
            usedBytes -= size
            changes.removed(id)
            _ = try? await LocalFileSystem.renameDurably(path(of: id), to: kept)
            return true
        }
        guard let location = inVolumes.removeValue(forKey: id) else { return false }
        usedBytes -= Int64(location.frameBytes)
        changes.removed(id)
        if let volume = volumes[location.volume] {
            // The raw frame, damaged header or not: kept for inspection, best effort.
            let offset = Int64(location.recordOffset) + Int64(VolumeRecord.headerBytes)
            if let frame = try? await volume.read(count: Int(location.frameBytes), at: offset),
               let copy = try? await LocalFile.create(kept, truncate: true) {
                try? await copy.write(frame, at: 0)
                try? copy.close()
            }
        }
        do {
            _ = try await append(ByteBuffer(bytes: VolumeRecord.tombstone(id)))
        } catch {
            logger.error("quarantined chunk not marked in its volume; it returns after a restart", metadata: [
                "chunk.id": "\(id)", "error": "\(error)",
            ])
        }
        return true
    }

    /// Forgets a chunk whose file has disappeared. Returns false when it was not held anyway.
    @discardableResult
    func forgetMissing(_ id: ChunkID) -> Bool {
        guard let size = ownFiles.removeValue(forKey: id) else { return false }
        usedBytes -= size
        changes.removed(id)
        return true
    }

    /// Deletes a chunk durably: its file is removed, or a tombstone is appended to the active
    /// volume and synced. Returns false when it was not here.
    @discardableResult
    func delete(_ id: ChunkID) async throws -> Bool {
        if ownFiles[id] != nil {
            try await LocalFileSystem.remove(path(of: id))
            // Re-read after the await: a scrubber or a second deletion may have forgotten it meanwhile.
            if let size = ownFiles.removeValue(forKey: id) {
                usedBytes -= size
                changes.removed(id)
            }
            return true
        }
        // Out of the index before the tombstone is appended, in one actor step: a new copy of the
        // chunk can then only be reserved, and appended, after the tombstone.
        guard let location = inVolumes.removeValue(forKey: id) else { return false }
        usedBytes -= Int64(location.frameBytes)
        changes.removed(id)
        do {
            _ = try await append(ByteBuffer(bytes: VolumeRecord.tombstone(id)))
        } catch {
            // Not durably deleted: the chunk is still whole in its volume, so it stays held.
            if !contains(id), reservations[id] == nil {
                inVolumes[id] = location
                usedBytes += Int64(location.frameBytes)
                changes.added(id)
            }
            throw error
        }
        return true
    }

    // MARK: - Volumes

    /// Appends a record to the active volume and returns once an fdatasync covering it ended.
    private func append(_ record: ByteBuffer) async throws -> (volume: UInt32, recordOffset: UInt32) {
        let (file, location) = try await claimSpace(recordBytes: Int64(record.readableBytes))
        try await file.write(record, at: Int64(location.recordOffset))
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            if let batch = groupCommit.requestSync(SyncWaiter(volume: file, continuation: continuation)) { startSync(batch) }
        }
        return location
    }

    /// Where the next record goes: the end of the active volume, or of a new one when it is full.
    /// The offset is claimed in one actor step, so concurrent writers never overlap.
    private func claimSpace(recordBytes: Int64) async throws -> (LocalFile, (volume: UInt32, recordOffset: UInt32)) {
        while true {
            if let current = active, current.endBytes < Limits.volumeMaxBytes, let file = volumes[current.number] {
                active = (current.number, current.endBytes + recordBytes)
                return (file, (current.number, UInt32(current.endBytes)))
            }
            // Every writer that finds the volume full awaits the same creation, and whichever
            // resumes first installs the new volume: waiting for the creator to do it could spin,
            // since a finished task's value is returned without letting the creator run.
            let number = (active?.number ?? 0) + 1
            guard number < .max else {
                throw TYDFSError(.io, "the datakeeper has used every volume number (its last volume is \(number - 1)); compact or move its data")
            }
            let path = volumePath(number)
            let creation = creatingVolume ?? Task { try await LocalFile.createDurably(path) }
            creatingVolume = creation
            let file: LocalFile
            do {
                file = try await creation.value
            } catch {
                if creatingVolume == creation { creatingVolume = nil }
                throw error
            }
            if volumes[number] == nil {
                volumes[number] = file
                active = (number, 0)
                creatingVolume = nil
                logger.info("volume started", metadata: ["volume": "\(path)"])
            }
        }
    }

    private func startSync(_ batch: [SyncWaiter]) {
        var files: [ObjectIdentifier: LocalFile] = [:]
        for waiter in batch { files[ObjectIdentifier(waiter.volume)] = waiter.volume }
        let syncVolume = self.syncVolume
        Task {
            var result: Result<Void, Error> = .success(())
            for file in files.values {
                do { try await syncVolume(file) } catch {
                    result = .failure(error)
                    break
                }
            }
            self.syncFinished(result)
        }
    }

    private func syncFinished(_ result: Result<Void, Error>) {
        let (done, next) = groupCommit.syncFinished()
        for waiter in done { waiter.continuation.resume(with: result) }
        if let next { startSync(next) }
    }
}
