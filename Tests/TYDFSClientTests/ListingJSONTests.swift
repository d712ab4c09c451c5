import Foundation
import TYDFSProtocol
import TYDFSTestSupport
import XCTest

@testable import TYDFSClient

/// `ls --json` written page by page is, byte for byte, the document the encoder makes of the
/// whole listing at once, whatever the pages, names and attributes.
final class ListingJSONTests: XCTestCase {
    private let names = ["a", "b c", "quote\"d", "back\\slash", "new\nline", "café", "e\u{301}", "tab\t", "😀", "slash/ed"]

    func testPagesWrittenOneByOneMakeTheWholeListingsDocument() throws {
        var random = SeededGenerator(seed: 7)
        for round in 0..<300 {
            var entries: [ListEntry] = []
            for index in 0..<Int.random(in: 0...12, using: &random) {
                let name = names[Int.random(in: 0..<names.count, using: &random)] + String(index)
                var entry = ListEntry(
                    path: "/dir/" + name, isDirectory: Bool.random(using: &random), sizeBytes: Int64.random(in: 0...1 << 40, using: &random),
                    mtimeMillis: Int64.random(in: 0...2_000_000_000_000, using: &random))
                if Bool.random(using: &random) { entry.checksum = "crc32c:0000abcd" }
                switch Int.random(in: 0..<3, using: &random) {
                case 0: entry.attributes = ["posix.mode": "33188", names.randomElement(using: &random)!: "v\"\n"]
                case 1: entry.attributes = [:]  // an empty object: the encoder writes an empty line in it
                default: break
                }
                entries.append(entry)
            }
            let whole = ListResponse(
                path: "/dir", entries: entries, attributes: round % 3 == 0 ? ["posix.uid": "1000"] : nil,
                mtimeMillis: round % 2 == 0 ? 1_700_000_000_123 : nil, subdirectoryCount: round % 5 == 0 ? 3 : nil)
            // The same listing in pages of random sizes (the first may be empty only if all are).
            var document = ListingJSON()
            var text = ""
            var start = 0
            repeat {
                let count = entries.isEmpty ? 0 : Int.random(in: 1...max(1, entries.count - start), using: &random)
                var page = whole
                page.entries = Array(entries[start..<(start + count)])
                start += count
                page.nextAfter = start < entries.count ? page.entries.last?.path : nil
                text += try document.add(page)
            } while start < entries.count
            text += try document.finish()
            let expected = String(decoding: try OutputJSON.encoder().encode(whole), as: UTF8.self)
            XCTAssertEqual(text, expected, "round \(round)")
            if text != expected { return }
        }
    }
}
