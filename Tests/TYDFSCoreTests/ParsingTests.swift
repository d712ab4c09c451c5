import TYDFSCore
import TYDFSProtocol
import XCTest

final class ByteSizeTests: XCTestCase {
    func testParsesPlainNumbersAndBinaryAndDecimalSuffixes() throws {
        XCTAssertEqual(try ByteSize.parse("0"), 0)
        XCTAssertEqual(try ByteSize.parse("4096"), 4096)
        XCTAssertEqual(try ByteSize.parse("64MiB"), 64 * 1024 * 1024)
        XCTAssertEqual(try ByteSize.parse("64mib"), 64 * 1024 * 1024)
        XCTAssertEqual(try ByteSize.parse("1.5GiB"), 1536 * 1024 * 1024)
        XCTAssertEqual(try ByteSize.parse("4KiB"), 4096)
        XCTAssertEqual(try ByteSize.parse("4k"), 4096)
        XCTAssertEqual(try ByteSize.parse("10GB"), 10_000_000_000)
        XCTAssertEqual(try ByteSize.parse(" 2 TiB "), 2 * 1024 * 1024 * 1024 * 1024)
        XCTAssertEqual(try ByteSize.parse("12B"), 12)
    }

    func testRejectsWhatIsNotASize() {
        for text in ["", "MiB", "-1", "12 apples", "1e3", "0x10", "1..2MiB", "99999999999TiB"] {
            XCTAssertThrowsError(try ByteSize.parse(text), text) { error in
                XCTAssertEqual((error as? TYDFSError)?.code, .invalidArgument)
            }
        }
    }

    func testFormatsWithTheLargestFittingUnit() {
        XCTAssertEqual(ByteSize.format(0), "0 B")
        XCTAssertEqual(ByteSize.format(1023), "1023 B")
        XCTAssertEqual(ByteSize.format(1024), "1 KiB")
        XCTAssertEqual(ByteSize.format(1536 * 1024 * 1024), "1.5 GiB")
    }

    func testDurations() throws {
        XCTAssertEqual(try DurationText.parseSeconds("5s"), 5)
        XCTAssertEqual(try DurationText.parseSeconds("500ms"), 0.5)
        XCTAssertEqual(try DurationText.parseSeconds("2m"), 120)
        XCTAssertEqual(try DurationText.parseSeconds("1.5"), 1.5)
        XCTAssertThrowsError(try DurationText.parseSeconds("soon"))
        XCTAssertThrowsError(try DurationText.parseSeconds("-1s"))
        XCTAssertThrowsError(try DurationText.parseSeconds("3e10s"), "beyond 30 days")
        XCTAssertThrowsError(try DurationText.parseSeconds("31d"))
        XCTAssertEqual(try DurationText.parseSeconds("720h"), 30 * 24 * 3600)
    }
}

final class RemotePathTests: XCTestCase {
    func testAcceptsAbsoluteUTF8Paths() throws {
        for text in ["/", "/a", "/a/b.txt", "/dir with space/ünïcödé/文件", "/.hidden", "/a/...", "/" + String(repeating: "x", count: 4095)] {
            XCTAssertEqual(try RemotePath(text).value, text)
        }
    }

    func testRejectsMalformedPathsWithAMessageNamingTheRule() {
        let cases: [(String, String)] = [
            ("", "empty"), ("a/b", "not absolute"), ("/a//b", "empty segment"), ("/a/", "empty segment"),
            ("/a/../b", ".."), ("/./a", "."), ("/a\u{0}b", "NUL"), ("/" + String(repeating: "x", count: 8000), "8000"),
        ]
        for (text, fragment) in cases {
            XCTAssertThrowsError(try RemotePath(text)) { error in
                let error = error as? TYDFSError
                XCTAssertEqual(error?.code, .invalidArgument)
                XCTAssertTrue(error?.message.contains(fragment) ?? false, "\(error?.message ?? "") should mention \(fragment)")
            }
        }
    }

    func testNamesAndChildren() throws {
        XCTAssertEqual(try RemotePath("/a/b.txt").name, "b.txt")
        XCTAssertEqual(RemotePath.root.name, "")
        XCTAssertEqual(try RemotePath("/a/b.txt").names, [EntryName("a"), EntryName("b.txt")])
        XCTAssertEqual(RemotePath.root.names, [])
        let a = try RemotePath("/a")
        XCTAssertTrue(try RemotePath("/a/b/c").isBelow(a))
        XCTAssertTrue(a.isBelow(.root))
        XCTAssertFalse(try RemotePath("/ab").isBelow(a))
        XCTAssertFalse(a.isBelow(a))
        XCTAssertEqual(try RemotePath("/a/b/c").moved(from: a, to: try RemotePath("/x/y")).value, "/x/y/b/c")
        XCTAssertEqual(try a.moved(from: a, to: try RemotePath("/z")).value, "/z")
    }

    /// Two spellings of é (one character; e and a combining accent) are one `String` to Swift
    /// but two names to Linux and to the metadata store: paths keep them apart, and a `/`
    /// followed by a combining character still separates (Swift makes one character of the two).
    func testPathsCompareSplitAndOrderByBytes() throws {
        let composed = try RemotePath("/caf\u{E9}")
        let decomposed = try RemotePath("/cafe\u{301}")
        XCTAssertEqual(composed.value, decomposed.value, "Swift's own String equality is canonical")
        XCTAssertNotEqual(composed, decomposed)
        XCTAssertEqual(Set([composed, decomposed]).count, 2)
        XCTAssertTrue(decomposed < composed, "e (0x65) sorts before \u{E9} (0xC3 0xA9) byte-wise")
        XCTAssertFalse(try RemotePath("/cafe\u{301}/x").isBelow(composed))

        let accentFirst = try RemotePath("/a/\u{301}b/c")
        XCTAssertEqual(accentFirst.names.map(\.text), ["a", "\u{301}b", "c"])
        XCTAssertEqual(accentFirst.parent?.value, "/a/\u{301}b")
        XCTAssertEqual(accentFirst.parent?.parent?.value, "/a")
        XCTAssertEqual(accentFirst.parent?.name, "\u{301}b")
        XCTAssertTrue(accentFirst.isBelow(try RemotePath("/a")))
        XCTAssertEqual(try accentFirst.moved(from: try RemotePath("/a"), to: try RemotePath("/d")).value, "/d/\u{301}b/c")
        let topLevel = try RemotePath("/\u{301}b")
        XCTAssertEqual(topLevel.names.map(\.text), ["\u{301}b"])
        XCTAssertEqual(topLevel.parent, .root)
        XCTAssertThrowsError(try RemotePath("/a/\u{301}b//c"))
        XCTAssertThrowsError(try RemotePath("/a/./\u{301}b"))
    }

    func testDecodingValidates() {
        XCTAssertThrowsError(try JSONDecoder().decode([RemotePath].self, from: Data(#"["/a/../b"]"#.utf8)))
        XCTAssertEqual(try JSONDecoder().decode([RemotePath].self, from: Data(#"["/a/b"]"#.utf8)).first?.value, "/a/b")
    }
}

final class IdentifierTests: XCTestCase {
    func testChunkIDsAre32HexDigitsAndRandom() throws {
        let a = ChunkID.random(), b = ChunkID.random()
        XCTAssertNotEqual(a, b)
        XCTAssertEqual(a.value.count, 32)
        XCTAssertEqual(try ChunkID(a.value), a)
        XCTAssertEqual(try ChunkID("0123456789abcdeffedcba9876543210"), ChunkID(high: 0x0123_4567_89ab_cdef, low: 0xfedc_ba98_7654_3210))
        for bad in [
            "", "xyz", String(repeating: "A", count: 32), String(repeating: "a", count: 31), String(repeating: "a", count: 33),
            "../" + String(repeating: "a", count: 29), String(repeating: "a", count: 30) + "é", String(repeating: "a", count: 31) + "g",
        ] {
            XCTAssertThrowsError(try ChunkID(bad), bad) { XCTAssertEqual(($0 as? TYDFSError)?.code, .invalidArgument) }
        }
    }

    func testDataKeeperIDsAreFileNameSafe() throws {
        XCTAssertEqual(try DataKeeperID("dk-1.rack_a").value, "dk-1.rack_a")
        for bad in ["", "a/b", "a b", "ünï", String(repeating: "a", count: 65), "a,b", "a=b"] {
            XCTAssertThrowsError(try DataKeeperID(bad), bad)
        }
    }

    func testHexFormattingIsZeroPadded() {
        XCTAssertEqual(hex32(0xab), "000000ab")
        XCTAssertEqual(hex64(1), "0000000000000001")
    }

    func testPipelineHeaderRoundTrips() {
        let hops = [PipelineHop(id: "dk2", address: "127.0.0.1:5000"), PipelineHop(id: "dk3", address: "[::1]:6000")]
        XCTAssertEqual(PipelineHop.decode(PipelineHop.encode(hops)), hops)
        XCTAssertEqual(PipelineHop.decode(""), [])
        XCTAssertNil(PipelineHop.decode("dk2"))
        XCTAssertNil(PipelineHop.decode("=addr"))
    }
}
