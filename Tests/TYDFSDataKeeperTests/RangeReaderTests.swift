#if canImport(Glibc)
import Glibc
#endif
import Foundation
import NIOCore
import TYDFSCore
import TYDFSFileIO
import XCTest

/// A datakeeper serves one range of a chunk while another replica serves the next: reading it
/// with `RangeReader` must bring the range into the page cache and nothing past it (the kernel's
/// read-ahead used to read 8 MiB past every range for nothing).
final class RangeReaderTests: XCTestCase {
    private let mib = 1 << 20

    /// Which pages of the file at `path` are in the page cache (`mincore` of a map of it).
    private func cachedPages(_ path: String, bytes: Int) throws -> [Bool] {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        defer { close(descriptor) }
        guard let map = mmap(nil, bytes, PROT_READ, MAP_SHARED, descriptor, 0), map != MAP_FAILED else {
            throw POSIXError(.init(rawValue: errno) ?? .EIO)
        }
        defer { munmap(map, bytes) }
        let pageBytes = Int(sysconf(Int32(_SC_PAGESIZE)))
        var residency = [UInt8](repeating: 0, count: (bytes + pageBytes - 1) / pageBytes)
        guard mincore(map, bytes, &residency) == 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        return residency.map { $0 & 1 == 1 }
    }

    func testServedRangesAreReadWholeAndNothingOutsideThemIsCached() async throws {
        let folder = NSTemporaryDirectory() + "tydfs-range-reader-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/chunk"
        let size = 32 * mib
        var generator = SystemRandomNumberGenerator()
        let contents = (0..<size / 8).flatMap { _ in withUnsafeBytes(of: generator.next() as UInt64) { Array($0) } }
        let writer = try await LocalFile.create(path)
        try await writer.write(ByteBuffer(bytes: contents), at: 0)
        try await writer.sync()
        try writer.close()

        let file = try await LocalFile.openForReading(path)
        defer { try? file.close() }
        // Written and fsynced, so every page is clean: this empties the file's page cache.
        await file.dropCachedPages()
        guard try !cachedPages(path, bytes: size).contains(true) else {
            throw XCTSkip("this file system keeps its pages cached (tmpfs?): nothing to measure")
        }

        // One range read with the reader's own read-ahead, one without (every piece then a read
        // the disk serves on demand, where the kernel's read-ahead used to reach past the range).
        let ranges = [(range: 2 * mib..<6 * mib, ahead: 0), (range: 20 * mib..<28 * mib, ahead: Limits.servingReadAheadBytes)]
        for (range, ahead) in ranges {
            var reader = await RangeReader.start(file, range: Int64(range.lowerBound)..<Int64(range.upperBound), aheadBytes: Int64(ahead))
            var read: [UInt8] = []
            while let piece = try await reader.next() {
                XCTAssertGreaterThan(piece.readableBytes, 0)
                read += Array(piece.readableBytesView)
            }
            XCTAssertEqual(reader.position, Int64(range.upperBound))
            XCTAssertTrue(read == Array(contents[range]), "the bytes of \(range), in order")
        }

        let pageBytes = Int(sysconf(Int32(_SC_PAGESIZE)))
        let cached = try cachedPages(path, bytes: size)
        let wanted = Set(ranges.flatMap { ($0.range.lowerBound / pageBytes)..<($0.range.upperBound / pageBytes) })
        XCTAssertEqual(wanted.filter { !cached[$0] }.count, 0, "every page of the ranges was read")
        let extra = cached.indices.filter { cached[$0] && !wanted.contains($0) }
        XCTAssertEqual(extra.count, 0, "pages outside the ranges read, from page \(extra.first ?? 0) on")
    }
}
