import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
@testable import TYDFSDataKeeper
import TYDFSCore
import TYDFSSecurity
import TYDFSFileIO
import XCTest

/// A datakeeper data folder in a temporary directory, with a chunk store and the data path on
/// top of it, for tests that exercise storage without HTTP. Removes its folder on `tearDown`.
/// Sendable by hand: concurrent tasks only read it; `reopen` runs between them.
final class StoreFixture: @unchecked Sendable {
    let directory: String
    let httpClient = HTTPClient(eventLoopGroupProvider: .singleton)
    let events = DataKeeperEvents()
    private(set) var store: ChunkStore
    private(set) var transfer: ChunkTransfer
    private let syncVolume: @Sendable (LocalFile) async throws -> Void

    init(syncVolume: @escaping @Sendable (LocalFile) async throws -> Void = { try await $0.dataSync() }) throws {
        directory = NSTemporaryDirectory() + "tydfs-dk-test-" + UUID().uuidString.prefix(8)
        self.syncVolume = syncVolume
        store = try ChunkStore(directory: directory, capacityBytes: nil, syncVolume: syncVolume)
        transfer = ChunkTransfer(
            id: try DataKeeperID("dk-test"), store: store, counters: TransferCounters(datakeeper: try DataKeeperID("dk-test")), events: events, httpClient: httpClient,
            secret: ClusterSecret.generate(), scheme: "http", logger: Logger(label: "test"))
    }

    /// A new store on the same folder: what a restart sees.
    func reopen() throws {
        store = try ChunkStore(directory: directory, capacityBytes: nil, syncVolume: syncVolume)
        transfer = ChunkTransfer(
            id: transfer.id, store: store, counters: TransferCounters(datakeeper: transfer.id), events: events, httpClient: httpClient,
            secret: transfer.secret, scheme: transfer.scheme, logger: transfer.logger)
    }

    func tearDown() async throws {
        try await httpClient.shutdown()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Stores `data` as chunk `chunk` through the data path, the frame arriving in `pieces` parts.
    @discardableResult
    func put(_ chunk: ChunkID, _ data: [UInt8], pieces: Int = 3) async throws -> UInt32 {
        try await store.reserve(chunk, frameBytes: ChunkFrame.frameBytes(dataBytes: Int64(data.count)))
        return try await transfer.storeReserved(chunk, dataBytes: Int64(data.count), from: Self.body(Self.frame(data), pieces: pieces), forwarding: nil)
    }

    /// Whether the store holds `chunk` with exactly `data`, verified.
    func holdsIntact(_ chunk: ChunkID, _ data: [UInt8]) async throws -> Bool {
        guard let frame = try await store.readVolumeFrame(chunk) else { return false }
        _ = try ChunkTransfer.verifyFrame(frame)
        return frame.getBytes(at: frame.readerIndex, length: data.count) == data
    }

    /// Path of the volume holding `location`.
    func volumePath(_ location: ChunkStore.VolumeLocation) -> String { store.volumePath(location.volume) }

    static func frame(_ data: [UInt8]) -> [UInt8] { ChunkFrame.frame(data) }

    static func body(_ bytes: [UInt8], pieces: Int) -> AsyncStream<ByteBuffer> {
        let size = max(1, (bytes.count + pieces - 1) / pieces)
        return AsyncStream { continuation in
            for start in stride(from: 0, to: bytes.count, by: size) {
                continuation.yield(ByteBuffer(bytes: bytes[start..<min(bytes.count, start + size)]))
            }
            continuation.finish()
        }
    }

    /// `count` pseudo-random bytes from `seed`.
    static func data(_ count: Int, seed: UInt64) -> [UInt8] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        return (0..<count).map { _ in
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return UInt8(truncatingIfNeeded: state)
        }
    }

    static func flipBit(in path: String, at offset: Int, bit: Int) throws {
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(offset))
        var byte = try handle.read(upToCount: 1)!
        byte[byte.startIndex] ^= UInt8(1 << bit)
        try handle.seek(toOffset: UInt64(offset))
        try handle.write(contentsOf: byte)
    }
}
