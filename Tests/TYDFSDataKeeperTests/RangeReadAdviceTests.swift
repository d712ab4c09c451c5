import Foundation
import NIOCore
import TYDFSCore
import TYDFSFileIO
import XCTest

/// A datakeeper serves one range of a chunk while another replica serves the next. The advice it
/// gives the kernel before reading (`LocalFile.willRead(only:count:)`) must keep the disk reads
/// to that range: the kernel's read-ahead used to read past every range for nothing.
final class RangeReadAdviceTests: XCTestCase {
    /// Bytes this process has had read from the disk (`read_bytes` in /proc/self/io).
    private func diskReadBytes() throws -> Int {
        let io = try String(contentsOfFile: "/proc/self/io", encoding: .utf8)
        let line = io.split(separator: "\n").first { $0.hasPrefix("read_bytes:") }
        return Int(line?.split(separator: " ").last ?? "") ?? 0
    }

    func testOnlyTheAdvisedRangeIsReadFromTheDisk() async throws {
        let mib = 1 << 20
        let folder = NSTemporaryDirectory() + "tydfs-advice-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/chunk"
        let contents = (0..<32 * mib).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 12) }
        let writer = try await LocalFile.create(path)
        try await writer.write(ByteBuffer(bytes: contents), at: 0)
        try await writer.sync()
        try writer.close()

        let file = try await LocalFile.openForReading(path)
        defer { try? file.close() }
        // Written and fsynced, so every page is clean: this empties the file's page cache.
        await file.dropCachedPages()
        let before = try diskReadBytes()
        await file.willRead(only: Int64(8 * mib), count: Int64(8 * mib))
        var read: [UInt8] = []
        for offset in stride(from: 8 * mib, to: 16 * mib, by: mib) {
            read += Array(try await file.read(count: mib, at: Int64(offset)).readableBytesView)
        }
        let readFromDisk = try diskReadBytes() - before
        guard readFromDisk > 0 else { throw XCTSkip("this file system reports no disk reads in /proc/self/io") }

        XCTAssertEqual(read, Array(contents[(8 * mib)..<(16 * mib)]))
        // The range itself and no more than 64 KiB past it, not the kernel's read-ahead.
        XCTAssertGreaterThanOrEqual(readFromDisk, 8 * mib)
        XCTAssertLessThanOrEqual(readFromDisk, 8 * mib + 64 * 1024, "read \(readFromDisk - 8 * mib) bytes past the range")
    }
}
