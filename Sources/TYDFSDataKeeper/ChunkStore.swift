import Glibc
import NIOConcurrencyHelpers
import TYDFSCore
import TYDFSFileIO

/// The chunks on one datakeeper's disk: which it holds, how much room is left, and the
/// write-then-rename protocol that makes a chunk appear only once it is whole and durable.
///
/// Layout: `chunks/ab/<chunk id>` (fanned out by the first two hex digits) holds finished
/// chunks as framed bytes (data + CRC32C trailer); `tmp/` holds chunks being written and is
/// emptied at start-up, since anything there was interrupted; `corrupt/` keeps chunks that failed
/// verification, out of service but not destroyed.
actor ChunkStore {
    let directory: String
    private let configuredCapacityBytes: Int64?
    private var sizes: [ChunkID: Int64] = [:]
    private var usedBytes: Int64 = 0
    private var reservations: [ChunkID: Int64] = [:]

    init(directory: String, capacityBytes: Int64?) throws {
        self.directory = directory
        self.configuredCapacityBytes = capacityBytes
        try LocalFileSystem.makeDirectories(directory + "/chunks")
        try LocalFileSystem.makeDirectories(directory + "/tmp")
        try LocalFileSystem.makeDirectories(directory + "/corrupt")
        // All 256 fan-out folders exist before any chunk is acknowledged, and `chunks/` is synced
        // once, so a chunk's rename never depends on a folder created moments before.
        for fan in 0..<256 { try LocalFileSystem.makeDirectories("\(directory)/chunks/\(hex32(UInt32(fan)).suffix(2))") }
        try LocalFileSystem.syncDirectory(directory + "/chunks")
        for name in try LocalFileSystem.list(directory + "/tmp") {
            _ = unlink(directory + "/tmp/" + name)
        }
        var found: [ChunkID: Int64] = [:]
        for fan in try LocalFileSystem.list(directory + "/chunks") {
            for name in try LocalFileSystem.list(directory + "/chunks/" + fan) {
                guard let id = try? ChunkID(name), let size = LocalFileSystem.fileSize("\(directory)/chunks/\(fan)/\(name)") else { continue }
                found[id] = size
            }
        }
        sizes = found
        usedBytes = found.values.reduce(0, +)
    }

    nonisolated func path(of id: ChunkID) -> String {
        "\(directory)/chunks/\(id.value.prefix(2))/\(id.value)"
    }

    var capacityBytes: Int64 {
        configuredCapacityBytes ?? (usedBytes + (LocalFileSystem.availableBytes(at: directory) ?? 0))
    }

    struct Usage: Sendable {
        var capacityBytes: Int64
        var usedBytes: Int64
        var chunkCount: Int
    }

    func usage() -> Usage {
        Usage(capacityBytes: capacityBytes, usedBytes: usedBytes, chunkCount: sizes.count)
    }

    func chunkIDs() -> [ChunkID] { sizes.keys.sorted() }

    func contains(_ id: ChunkID) -> Bool { sizes[id] != nil }

    /// Claims room for a chunk about to be written and returns the temporary path to write it to.
    func reserve(_ id: ChunkID, frameBytes: Int64) throws -> String {
        guard sizes[id] == nil, reservations[id] == nil else {
            throw TYDFSError(.alreadyExists, "chunk \(id) is already stored or being written here")
        }
        let free = capacityBytes - usedBytes - reservations.values.reduce(0, +)
        guard free >= frameBytes else {
            throw TYDFSError(.insufficientSpace, "no room for a \(ByteSize.format(frameBytes)) chunk: \(ByteSize.format(max(0, free))) free")
        }
        reservations[id] = frameBytes
        return "\(directory)/tmp/\(id.value).\(hex64(UInt64.random(in: .min ... .max)))"
    }

    /// Moves a fully written and fsynced temporary file into place; the chunk now exists.
    func commit(_ id: ChunkID, temporaryPath: String, frameBytes: Int64) async throws {
        try await LocalFileSystem.renameDurably(temporaryPath, to: path(of: id))
        reservations[id] = nil
        sizes[id] = frameBytes
        usedBytes += frameBytes
    }

    /// Gives up a reservation and removes the partial file.
    func abandon(_ id: ChunkID, temporaryPath: String) async {
        reservations[id] = nil
        _ = try? await LocalFileSystem.remove(temporaryPath)
    }

    /// Takes a chunk that failed verification out of service: moved to `corrupt/`, no longer held.
    /// Returns false when the chunk was not held (already deleted or quarantined).
    @discardableResult
    func quarantine(_ id: ChunkID) async -> Bool {
        guard let size = sizes.removeValue(forKey: id) else { return false }
        usedBytes -= size
        _ = try? await LocalFileSystem.renameDurably(path(of: id), to: "\(directory)/corrupt/\(id.value)")
        return true
    }

    /// Forgets a chunk whose file has disappeared. Returns false when it was not held anyway.
    @discardableResult
    func forgetMissing(_ id: ChunkID) -> Bool {
        guard let size = sizes.removeValue(forKey: id) else { return false }
        usedBytes -= size
        return true
    }

    /// Deletes a chunk. Returns false when it was not here.
    @discardableResult
    func delete(_ id: ChunkID) async throws -> Bool {
        guard sizes[id] != nil else { return false }
        try await LocalFileSystem.remove(path(of: id))
        // Re-read after the await: a scrubber or a second deletion may have forgotten it meanwhile.
        if let size = sizes.removeValue(forKey: id) { usedBytes -= size }
        return true
    }
}

/// Counters the heartbeat reports: transfers in progress and chunks served.
final class TransferCounters: Sendable {
    private struct Values {
        var inFlight = 0
        var chunksServed: Int64 = 0
    }
    private let values = NIOLockedValueBox(Values())

    func begin() { values.withLockedValue { $0.inFlight += 1 } }
    func end() { values.withLockedValue { $0.inFlight -= 1 } }
    func served() { values.withLockedValue { $0.chunksServed += 1 } }
    var inFlight: Int { values.withLockedValue { $0.inFlight } }
    var chunksServed: Int64 { values.withLockedValue { $0.chunksServed } }
}
