import NIOCore
import TYDFSTestSupport
import XCTest

import TYDFSClient

/// Bytes kept as the pieces they arrived in (a mount's read window): any span of them comes out
/// as slices of those pieces that join to the bytes there, with nothing copied and nothing empty.
final class PlacedBytesTests: XCTestCase {
    func testEverySpanIsTheWindowsBytesThere() {
        var random = SeededGenerator(seed: 5)
        for _ in 0..<25 {
            var whole: [UInt8] = []
            var pieces: [ByteBuffer] = []
            for _ in 0..<Int.random(in: 1...8, using: &random) {
                let bytes = (0..<Int.random(in: 1...30, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
                whole += bytes
                // A slice that does not start at its storage's first byte, as received pieces.
                pieces.append(ByteBuffer(bytes: [9] + bytes).getSlice(at: 1, length: bytes.count)!)
            }
            let window = PlacedBytes(contiguous: pieces)
            XCTAssertEqual(window.end, Int64(whole.count))
            for from in 0..<whole.count {
                for to in (from + 1)...whole.count where Bool.random(using: &random) || to == whole.count {
                    let slices = window.slices(from: Int64(from), count: Int64(to - from))
                    XCTAssertEqual(slices.flatMap { Array($0.readableBytesView) }, Array(whole[from..<to]), "\(from)..<\(to)")
                    XCTAssertFalse(slices.contains { $0.readableBytes == 0 })
                    XCTAssertLessThanOrEqual(slices.count, pieces.count)
                }
            }
        }
    }
}
