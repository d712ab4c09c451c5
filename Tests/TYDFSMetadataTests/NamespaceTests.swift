import TYDFSCore
import TYDFSMetadata
import XCTest

/// The in-memory namespace: paths, listings, directory sizes, and undo.
final class NamespaceTests: XCTestCase {
    private func path(_ text: String) -> RemotePath { try! RemotePath(text) }

    func testAFileCannotStandWhereADirectoryIsAndViceVersa() {
        let namespace = Namespace()
        namespace.apply(.putFile(Fixture.file("/a/b")), sequence: 1)
        XCTAssertEqual(namespace.conflict(for: path("/a/b/c"))?.value, "/a/b")
        XCTAssertEqual(namespace.conflict(for: path("/a"))?.value, "/a/b")
        XCTAssertEqual(namespace.conflict(for: path("/a/b"))?.value, "/a/b", "a file conflicts with itself")
        XCTAssertNil(namespace.conflict(for: path("/ab")))
        XCTAssertNil(namespace.conflict(for: path("/a/c")))
    }

    /// Pages, each asked for after the `nextAfter` of the one before, add up to the whole
    /// listing, and only the last has none, whether or not the page size divides the count.
    func testPagesAddUpToTheWholeListing() {
        let namespace = Namespace()
        let names = (0..<50).map { String(format: "f%03d", $0) }
        for name in names.shuffled() { namespace.apply(.putFile(Fixture.file("/d/" + name)), sequence: 1) }
        namespace.apply(.makeDirectory(path("/d/sub"), mtimeMillis: 1, attributes: [:]), sequence: 1)
        for limit in [1, 7, 17, 51, 100] {
            var listed: [String] = []
            var after: String?
            var pages = 0
            while pages <= 51 {
                let page = namespace.page(of: path("/d"), after: after, limit: limit)!
                pages += 1
                XCTAssertLessThanOrEqual(page.entries.count, limit)
                listed += page.entries.map(\.path)
                guard let next = page.nextAfter else { break }
                XCTAssertEqual(page.entries.count, limit, "only a full page is followed by another")
                XCTAssertEqual("/d/" + next, page.entries.last?.path, "a page goes on from its last name")
                after = next
            }
            XCTAssertEqual(listed, namespace.list(path("/d"))!.map(\.path), "limit \(limit)")
            XCTAssertEqual(listed, names.map { "/d/" + $0 } + ["/d/sub"])
            XCTAssertEqual(pages, (51 + limit - 1) / limit, "limit \(limit): no empty last page")
        }
        XCTAssertEqual(namespace.page(of: path("/d/f001"), after: "zzz", limit: 1)?.entries.map(\.path), ["/d/f001"], "a file lists as itself")
        XCTAssertEqual(namespace.page(of: path("/d"), after: "zzz", limit: 5), NamespacePage(entries: [], nextAfter: nil))
        XCTAssertNil(namespace.page(of: path("/none"), after: nil, limit: 5))
        // A byte budget ends a page early, but never before its first entry.
        let one = namespace.page(of: path("/d"), after: nil, limit: 100, maxBytes: 1)!
        XCTAssertEqual(one.entries.map(\.path), ["/d/f000"])
        XCTAssertEqual(one.nextAfter, "f000")
        let some = namespace.page(of: path("/d"), after: "f000", limit: 100, maxBytes: 300)!
        XCTAssertEqual(some.entries.map(\.path), ["/d/f001", "/d/f002", "/d/f003", "/d/f004"], "about 70 bytes an entry")
        XCTAssertEqual(some.nextAfter, "f004")
        XCTAssertEqual(namespace.anyChild(of: path("/d/sub")), nil, "an empty directory")
        XCTAssertEqual(namespace.anyChild(of: path("/d/f001")), nil, "a file")
        XCTAssertTrue((names + ["sub"]).map { "/d/" + $0 }.contains(namespace.anyChild(of: path("/d")) ?? ""), "any of its entries, the made directory /d/sub included")
    }

    /// Between two pages, entries come and go: every entry that stays is listed exactly once, an
    /// entry added after the cursor is listed, one added before it or removed after it is not,
    /// and when only removed names were left, the page says nothing follows.
    func testAPagedListingSeesEveryEntryThatStaysExactlyOnce() {
        let namespace = Namespace()
        let put = { (name: String) in _ = namespace.apply(.putFile(Fixture.file("/d/" + name)), sequence: 1) }
        let remove = { (name: String) in _ = namespace.apply(.removeFile(self.path("/d/" + name)), sequence: 1) }
        for name in ["b", "c", "d", "e", "f", "g", "h"] { put(name) }
        let first = namespace.page(of: path("/d"), after: nil, limit: 3)!
        XCTAssertEqual(first.entries.map(\.path), ["/d/b", "/d/c", "/d/d"])
        XCTAssertEqual(first.nextAfter, "d")
        remove("c")  // before the cursor
        put("c")  // back again
        remove("f")  // after the cursor
        put("a")  // a new name before the cursor
        put("e")  // an overwrite after it
        put("ee")  // a new name after it
        let second = namespace.page(of: path("/d"), after: "d", limit: 3)!
        XCTAssertEqual(second.entries.map(\.path), ["/d/e", "/d/ee", "/d/g"])
        XCTAssertEqual(second.nextAfter, "g")
        remove("h")
        XCTAssertEqual(namespace.page(of: path("/d"), after: "g", limit: 3), NamespacePage(entries: [], nextAfter: nil))
        XCTAssertEqual(namespace.list(path("/d"))!.map(\.path), ["/d/a", "/d/b", "/d/c", "/d/d", "/d/e", "/d/ee", "/d/g"])
        let last = namespace.page(of: path("/d"), after: "d", limit: 2)!
        remove("g")
        XCTAssertEqual(last.entries.map(\.path), ["/d/e", "/d/ee"])
        XCTAssertEqual(namespace.page(of: path("/d"), after: last.nextAfter, limit: 2), NamespacePage(entries: [], nextAfter: nil),
                       "names removed since they were ordered are not more entries")
    }

    /// Thousands of names added and removed while a listing is paged through (more than are
    /// kept apart before they are merged in, and more removed than kept): the pages still list
    /// exactly the entries that stayed, plus those added after the cursor.
    func testAPagedListingOfADirectoryThatChangesAlotStaysExact() {
        let namespace = Namespace()
        let put = { (name: String) in _ = namespace.apply(.putFile(Fixture.file("/d/" + name)), sequence: 1) }
        let remove = { (name: String) in _ = namespace.apply(.removeFile(self.path("/d/" + name)), sequence: 1) }
        for index in 0..<3000 { put(String(format: "b%05d", index)) }
        var listed = namespace.page(of: path("/d"), after: nil, limit: 1000)!.entries.map(\.path)
        var after = "b00999"
        for index in 0..<6000 { put(String(format: "a%05d", index)) }  // before the cursor: not listed
        for index in 0..<6000 { put(String(format: "c%05d", index)) }  // after it: listed unless removed
        for index in stride(from: 0, to: 6000, by: 2) { remove(String(format: "c%05d", index)) }
        for index in 1000..<2500 { remove(String(format: "b%05d", index)) }
        var pages = 1
        while pages < 100, let page = namespace.page(of: path("/d"), after: after, limit: 700) {
            pages += 1
            listed += page.entries.map(\.path)
            guard let next = page.nextAfter else { break }
            after = next
            if pages == 3 { for index in 0..<5000 { put(String(format: "d%05d", index)) } }
        }
        let expected = (0..<1000).map { String(format: "/d/b%05d", $0) } + (2500..<3000).map { String(format: "/d/b%05d", $0) }
            + stride(from: 1, to: 6000, by: 2).map { String(format: "/d/c%05d", $0) } + (0..<5000).map { String(format: "/d/d%05d", $0) }
        XCTAssertEqual(listed, expected)
    }

    /// Two spellings of one name (é as one character; e and a combining accent) are two
    /// entries, as on a Linux disk and in the store: put, listed in byte order, paged, renamed
    /// and removed each on its own, folders included. A `/` followed by a combining accent
    /// still separates two names.
    func testTwoSpellingsOfOneNameAreTwoEntries() throws {
        let namespace = Namespace()
        let composed = "/d/caf\u{E9}", decomposed = "/d/cafe\u{301}"
        namespace.apply(.putFile(Fixture.file(composed, chunks: 1)), sequence: 1)
        namespace.apply(.putFile(Fixture.file(decomposed, chunks: 2)), sequence: 1)
        namespace.apply(.putFile(Fixture.file("/d/caff", chunks: 1)), sequence: 1)
        XCTAssertEqual(namespace.fileCount, 3)
        XCTAssertEqual(namespace.file(at: path(composed))?.chunks.count, 1)
        XCTAssertEqual(namespace.file(at: path(decomposed))?.chunks.count, 2)
        let inByteOrder = [decomposed, "/d/caff", composed].map { Array($0.utf8) }
        XCTAssertEqual(namespace.list(path("/d"))?.map { Array($0.path.utf8) }, inByteOrder)
        var paged: [[UInt8]] = []
        var after: String?
        repeat {
            let page = try XCTUnwrap(namespace.page(of: path("/d"), after: after, limit: 1))
            paged += page.entries.map { Array($0.path.utf8) }
            after = page.nextAfter
        } while after != nil
        XCTAssertEqual(paged, inByteOrder, "a page after one spelling does not skip the other")

        let renamed = try namespace.renameEdits(from: path(composed), to: path("/e/caf\u{E9}"))
        for edit in renamed.edits { namespace.apply(edit, sequence: 2) }
        XCTAssertNil(namespace.file(at: path(composed)))
        XCTAssertEqual(namespace.file(at: path(decomposed))?.chunks.count, 2, "the other spelling stays")
        namespace.apply(.removeFile(path(decomposed)), sequence: 3)
        XCTAssertEqual(namespace.list(path("/d"))?.map(\.path), ["/d/caff"])
        XCTAssertEqual(namespace.fileCount, 2)

        namespace.apply(.makeDirectory(path("/f/cafe\u{301}"), mtimeMillis: 1, attributes: [:]), sequence: 4)
        namespace.apply(.putFile(Fixture.file("/f/caf\u{E9}/x", chunks: 1)), sequence: 4)
        XCTAssertEqual(namespace.list(path("/f"))?.map(\.isDirectory), [true, true])
        XCTAssertEqual(namespace.list(path("/f/cafe\u{301}")), [], "made and empty: the file went into the other folder")
        XCTAssertNil(namespace.conflict(for: path("/f/cafe\u{301}/x")))

        namespace.apply(.putFile(Fixture.file("/g/\u{301}h/i", chunks: 1)), sequence: 5)
        XCTAssertEqual(namespace.list(path("/g"))?.map(\.path), ["/g/\u{301}h"])
        XCTAssertEqual(namespace.list(path("/g/\u{301}h"))?.map(\.path), ["/g/\u{301}h/i"])
    }

    /// A store written before names were split at every `/` byte may hold a file `/a` and
    /// `/a/\u{301}b` (then one name of its own). Loading them, in either order and as a file or
    /// a made directory, fails with both paths named and changes nothing; it trapped, or
    /// replaced a directory by a file with everything below it.
    func testLoadingAFileWhereAFolderIsFailsNamingBoth() throws {
        let file = Fixture.file("/a"), below = Fixture.file("/a/\u{301}b")
        let folder = MadeDirectory(path: path("/a/\u{301}c"), mtimeMillis: 1, attributes: [:])
        for order in [[file, below], [below, file]] {
            let namespace = Namespace()
            try namespace.load(order[0])
            XCTAssertThrowsError(try namespace.load(order[1])) { error in
                let conflict = error as? NamespaceConflict
                XCTAssertEqual(conflict.map { Set([$0.path, $0.other]) }, [file.path, below.path])
                XCTAssertTrue("\(error)".contains("rename one of them"), "\(error)")
            }
            XCTAssertEqual(namespace.fileCount, 1)
            XCTAssertEqual(namespace.list(.root)?.map(\.path), ["/a"])
            XCTAssertEqual(namespace.list(.root)?.first?.isDirectory, order[0] == below)
        }
        let namespace = Namespace()
        try namespace.load(file)
        XCTAssertThrowsError(try namespace.loadDirectory(folder)) { error in
            XCTAssertEqual(error as? NamespaceConflict, NamespaceConflict(path: folder.path, other: file.path))
        }
        XCTAssertNil(namespace.list(path("/a/\u{301}c")))
        // An empty made directory at a file's path: the message names the two, not one twice.
        let emptyFirst = Namespace()
        try emptyFirst.loadDirectory(MadeDirectory(path: path("/e/f"), mtimeMillis: 1, attributes: [:]))
        XCTAssertThrowsError(try emptyFirst.load(Fixture.file("/e"))) { error in
            XCTAssertEqual(error as? NamespaceConflict, NamespaceConflict(path: path("/e"), other: path("/e/f")))
        }
        try namespace.load(Fixture.file("/d/x"))
        try namespace.loadDirectory(MadeDirectory(path: path("/d"), mtimeMillis: 1, attributes: [:]))
        XCTAssertTrue(namespace.isMadeDirectory(path("/d")))
    }

    func testListingShowsOneLevelSortedWithDirectoryTotals() {
        let namespace = Namespace()
        for (name, size) in [("/b/x", Int64(10)), ("/b/y/z", 20), ("/bc", 5), ("/a", 1)] {
            var file = Fixture.file(name, chunks: 1, sizeBytes: size)
            file.mtimeMillis = size
            namespace.apply(.putFile(file), sequence: 1)
        }
        let root = namespace.list(.root)!
        XCTAssertEqual(root.map(\.path), ["/a", "/b", "/bc"])
        XCTAssertEqual(root.map(\.isDirectory), [false, true, false])
        XCTAssertEqual(root[1].sizeBytes, 30)
        XCTAssertEqual(root[1].mtimeMillis, 20)
        XCTAssertEqual(namespace.list(path("/b"))!.map(\.path), ["/b/x", "/b/y"])
        XCTAssertEqual(namespace.list(path("/b/x"))!.map(\.path), ["/b/x"], "a file lists as itself")
        XCTAssertNil(namespace.list(path("/nope")))
        XCTAssertEqual(namespace.list(.root)!.count, 3)
        XCTAssertEqual(Namespace().list(.root)!, [], "an empty namespace has an empty root")
        XCTAssertEqual(namespace.files(under: path("/b")).map(\.path.value), ["/b/x", "/b/y/z"])
        XCTAssertEqual(namespace.subdirectoryCount(at: .root), 1, "/b; files are not counted")
        XCTAssertEqual(namespace.subdirectoryCount(at: path("/b")), 1)
        XCTAssertEqual(namespace.subdirectoryCount(at: path("/b/y")), 0)
        XCTAssertNil(namespace.subdirectoryCount(at: path("/b/x")), "a file holds no directories")
        XCTAssertNil(namespace.subdirectoryCount(at: path("/nope")))
    }

    func testRenameMovesFilesAndDirectoriesWithTheirChunksAndRefusesTakenPaths() throws {
        let namespace = Namespace()
        for name in ["/a/x", "/a/sub/y", "/b/z", "/f"] { namespace.apply(.putFile(Fixture.file(name, chunks: 2)), sequence: 1) }
        let chunksBefore = namespace.chunks

        // A file to a new name, then a directory into an existing directory.
        let file = try namespace.renameEdits(from: path("/f"), to: path("/g"))
        XCTAssertEqual(file.target.value, "/g")
        for edit in file.edits { namespace.apply(edit, sequence: 2) }
        let directory = try namespace.renameEdits(from: path("/a"), to: path("/b"))
        XCTAssertEqual(directory.target.value, "/b/a", "into an existing directory, as mv does")
        for edit in directory.edits { namespace.apply(edit, sequence: 3) }
        XCTAssertEqual(namespace.files(under: .root).map(\.path.value), ["/b/a/sub/y", "/b/a/x", "/b/z", "/g"])
        XCTAssertEqual(namespace.chunks, chunksBefore, "the same chunks, with the same replicas: no byte moves")
        XCTAssertEqual(namespace.fileCount, 4)
        XCTAssertNil(namespace.list(path("/a")), "the old directory is gone")
        XCTAssertEqual(namespace.list(path("/b/a"))!.map(\.path), ["/b/a/sub", "/b/a/x"])

        // Refused, changing nothing.
        func refused(_ from: String, _ to: String, _ code: TYDFSError.Code, _ line: UInt = #line) {
            XCTAssertThrowsError(try namespace.renameEdits(from: path(from), to: path(to)), line: line) { error in
                XCTAssertEqual((error as? TYDFSError)?.code, code, "\(error)", line: line)
            }
        }
        refused("/missing", "/x", .notFound)
        refused("/g", "/b/z", .alreadyExists)  // a file is there
        refused("/b/z", "/g/inside", .alreadyExists)  // /g is a file, not a folder
        refused("/b", "/b/a/deeper", .invalidArgument)  // a directory into itself
        refused("/g", "/g", .invalidArgument)
        refused("/", "/r", .invalidArgument)
        XCTAssertEqual(namespace.files(under: .root).map(\.path.value), ["/b/a/sub/y", "/b/a/x", "/b/z", "/g"])

        // Undone exactly, as a failed batch would be.
        var inverses: [[MetadataEdit]] = []
        let back = try namespace.renameEdits(from: path("/b"), to: path("/c"))
        for edit in back.edits { inverses.append(namespace.apply(edit, sequence: 4)) }
        XCTAssertEqual(namespace.files(under: .root).map(\.path.value), ["/c/a/sub/y", "/c/a/x", "/c/z", "/g"])
        for inverse in inverses.reversed() { for edit in inverse { namespace.apply(edit, sequence: 0) } }
        XCTAssertEqual(namespace.files(under: .root).map(\.path.value), ["/b/a/sub/y", "/b/a/x", "/b/z", "/g"])
        XCTAssertEqual(namespace.chunks, chunksBefore)
    }

    func testRemovingTheLastFileOfADirectoryRemovesTheDirectory() {
        let namespace = Namespace()
        namespace.apply(.putFile(Fixture.file("/d/e/f", chunks: 1)), sequence: 1)
        namespace.apply(.putFile(Fixture.file("/d/g", chunks: 1)), sequence: 1)
        namespace.apply(.removeFile(path("/d/e/f")), sequence: 2)
        XCTAssertEqual(namespace.list(path("/d"))!.map(\.path), ["/d/g"])
        XCTAssertEqual(namespace.list(.root)![0].sizeBytes, 100)
        namespace.apply(.removeFile(path("/d/g")), sequence: 3)
        XCTAssertEqual(namespace.list(.root)!, [])
        XCTAssertEqual(namespace.fileCount, 0)
        XCTAssertTrue(namespace.chunks.isEmpty)
        // A file may now stand where the directory was.
        XCTAssertNil(namespace.conflict(for: path("/d")))
    }

    func testARenameReplacingAsRename2DoesReplacesAFileOrAnEmptyDirectoryInTheSameBatch() throws {
        let namespace = Namespace()
        let old = Fixture.file("/d/target", chunks: 2), new = Fixture.file("/d/source", chunks: 1)
        for file in [old, new, Fixture.file("/full/x")] { namespace.apply(.putFile(file), sequence: 1) }
        namespace.apply(.makeDirectory(path("/empty"), mtimeMillis: 1), sequence: 1)
        namespace.apply(.makeDirectory(path("/moving/inner"), mtimeMillis: 1), sequence: 1)

        // A file over a file: the old one's replicas are queued for deletion in the same batch.
        let plan = try namespace.renameEdits(from: path("/d/source"), to: path("/d/target"), replacing: true)
        XCTAssertEqual(plan.target, path("/d/target"))
        let deletions = plan.edits.filter { if case .queueDeletion = $0 { true } else { false } }
        XCTAssertEqual(deletions.count, 2 * 3, "each of the old file's chunks on each of its 3 datakeepers")
        var inverses: [[MetadataEdit]] = []
        for edit in plan.edits { inverses.append(namespace.apply(edit, sequence: 2)) }
        XCTAssertEqual(namespace.file(at: path("/d/target"))?.chunks.map(\.id), new.chunks.map(\.id))
        XCTAssertNil(namespace.file(at: path("/d/source")))
        XCTAssertTrue(old.chunks.allSatisfy { namespace.chunks[$0.id] == nil })
        // Undone exactly, as a failed batch would be.
        for inverse in inverses.reversed() { for edit in inverse { namespace.apply(edit, sequence: 0) } }
        XCTAssertEqual(namespace.file(at: path("/d/target")), old)
        XCTAssertEqual(namespace.file(at: path("/d/source")), new)
        XCTAssertTrue(namespace.pendingDeletions.isEmpty)

        // A directory over an empty directory, never into it.
        for edit in try namespace.renameEdits(from: path("/moving"), to: path("/empty"), replacing: true).edits { namespace.apply(edit, sequence: 3) }
        XCTAssertEqual(namespace.madeDirectories(under: .root).map(\.path.value), ["/empty/inner"])
        XCTAssertNil(namespace.entry(at: path("/moving")))

        // Refused, changing nothing.
        for (from, to, code) in [
            ("/d/target", "/full", TYDFSError.Code.alreadyExists), ("/full", "/d/target", .alreadyExists),
            ("/d", "/full", .directoryNotEmpty), ("/full/x", "/d/target/below", .alreadyExists),
        ] {
            XCTAssertThrowsError(try namespace.renameEdits(from: path(from), to: path(to), replacing: true)) { error in
                XCTAssertEqual((error as? TYDFSError)?.code, code, "\(from) -> \(to): \(error)")
            }
        }
    }

    func testAMadeDirectoryStaysWhileEmptyUntilItIsRemoved() {
        let namespace = Namespace()
        XCTAssertEqual(namespace.apply(.makeDirectory(path("/b/c"), mtimeMillis: 9), sequence: 1), [.removeDirectory(path("/b/c"))])
        XCTAssertEqual(namespace.list(.root)!.map(\.path), ["/b"], "parents exist while the made directory does")
        XCTAssertEqual(namespace.list(path("/b/c"))!, [], "an empty directory lists as empty, not as missing")
        XCTAssertTrue(namespace.isDirectory(path("/b/c")))
        XCTAssertTrue(namespace.isMadeDirectory(path("/b/c")))
        XCTAssertFalse(namespace.isMadeDirectory(path("/b")), "a parent made along the way exists only through its child")
        XCTAssertEqual(namespace.apply(.makeDirectory(path("/b/c"), mtimeMillis: 10), sequence: 1), [], "made twice changes nothing")
        // A file put and removed below it leaves it in place; the implied parent stays with it.
        namespace.apply(.putFile(Fixture.file("/b/c/f")), sequence: 2)
        namespace.apply(.removeFile(path("/b/c/f")), sequence: 3)
        XCTAssertEqual(namespace.list(path("/b/c"))!, [])
        XCTAssertEqual(namespace.list(.root)![0].sizeBytes, 0)
        // A file put below and removed again from an implied directory still removes it.
        namespace.apply(.putFile(Fixture.file("/b/d/g")), sequence: 4)
        namespace.apply(.removeFile(path("/b/d/g")), sequence: 5)
        XCTAssertEqual(namespace.list(path("/b"))!.map(\.path), ["/b/c"])
        // Removed: it and its implied parent go.
        // (Its mtime is that of the last file put below it, 1234.)
        XCTAssertEqual(namespace.apply(.removeDirectory(path("/b/c")), sequence: 6), [.makeDirectory(path("/b/c"), mtimeMillis: 1234)])
        XCTAssertEqual(namespace.list(.root)!, [])
        XCTAssertFalse(namespace.isDirectory(path("/b")))
        XCTAssertEqual(namespace.apply(.removeDirectory(path("/b/c")), sequence: 7), [], "removing a missing directory changes nothing")
        // Made over one that files imply: removing it again only unmakes it; the files keep it.
        namespace.apply(.putFile(Fixture.file("/e/h")), sequence: 8)
        namespace.apply(.makeDirectory(path("/e"), mtimeMillis: 11), sequence: 8)
        namespace.apply(.removeDirectory(path("/e")), sequence: 9)
        XCTAssertEqual(namespace.list(path("/e"))!.map(\.path), ["/e/h"])
        namespace.apply(.removeFile(path("/e/h")), sequence: 10)
        XCTAssertNil(namespace.list(path("/e")), "no longer made, it goes with its last file")
        XCTAssertEqual(namespace.madeDirectories(under: .root).count, 0)
    }

    func testADirectoryKeepsItsAttributesUntilMadeAgainWithOthersAndRenameCarriesThem() throws {
        let namespace = Namespace()
        let mode700 = ["posix-mode": "40700"]
        XCTAssertEqual(namespace.apply(.makeDirectory(path("/d"), mtimeMillis: 1, attributes: mode700), sequence: 1), [.removeDirectory(path("/d"))])
        XCTAssertEqual(namespace.entry(at: path("/d"))?.attributes, mode700)
        XCTAssertEqual(namespace.list(.root)!.map(\.attributes), [mode700], "a parent's listing shows them")
        XCTAssertEqual(namespace.apply(.makeDirectory(path("/d"), mtimeMillis: 2, attributes: mode700), sequence: 2), [], "the same again changes nothing")
        // Made again with others: they replace the old, and the undo brings the old back.
        let undo = namespace.apply(.makeDirectory(path("/d"), mtimeMillis: 3, attributes: ["posix-mode": "40755"]), sequence: 3)
        XCTAssertEqual(undo, [.makeDirectory(path("/d"), mtimeMillis: 1, attributes: mode700)])
        XCTAssertEqual(namespace.entry(at: path("/d"))?.attributes, ["posix-mode": "40755"])
        for edit in undo { namespace.apply(edit, sequence: 4) }
        XCTAssertEqual(namespace.entry(at: path("/d"))?.attributes, mode700)
        // A rename moves them, files' attributes too.
        var file = Fixture.file("/d/f")
        file.attributes = ["posix-mode": "100600"]
        namespace.apply(.putFile(file), sequence: 5)
        for edit in try namespace.renameEdits(from: path("/d"), to: path("/e")).edits { namespace.apply(edit, sequence: 6) }
        XCTAssertNil(namespace.entry(at: path("/d"))?.attributes)
        XCTAssertEqual(namespace.entry(at: path("/e"))?.attributes, mode700)
        XCTAssertEqual(namespace.file(at: path("/e/f"))?.attributes, ["posix-mode": "100600"])
        // Removed, the directory's attributes go with it; its undo restores them.
        namespace.apply(.removeFile(path("/e/f")), sequence: 7)
        XCTAssertEqual(namespace.apply(.removeDirectory(path("/e")), sequence: 8), [.makeDirectory(path("/e"), mtimeMillis: 1234, attributes: mode700)])
        XCTAssertNil(namespace.entry(at: path("/e")))
        XCTAssertNil(namespace.entry(at: .root)?.attributes, "the root keeps none")
    }

    func testRenameCarriesMadeDirectoriesEmptyOrNot() throws {
        let namespace = Namespace()
        namespace.apply(.makeDirectory(path("/src/empty"), mtimeMillis: 3), sequence: 1)
        namespace.apply(.makeDirectory(path("/src"), mtimeMillis: 2), sequence: 1)
        namespace.apply(.putFile(Fixture.file("/src/sub/f")), sequence: 1)
        let plan = try namespace.renameEdits(from: path("/src"), to: path("/dst"))
        for edit in plan.edits { namespace.apply(edit, sequence: 2) }
        XCTAssertNil(namespace.list(path("/src")))
        XCTAssertEqual(namespace.list(path("/dst"))!.map(\.path), ["/dst/empty", "/dst/sub"])
        XCTAssertEqual(namespace.madeDirectories(under: .root).map(\.path.value), ["/dst", "/dst/empty"])
        XCTAssertEqual(namespace.madeDirectories(under: .root).map(\.mtimeMillis)[1], 3, "the mtime moves too")
        // An empty made directory alone can be renamed, and into another directory.
        namespace.apply(.makeDirectory(path("/lone"), mtimeMillis: 4), sequence: 3)
        for edit in try namespace.renameEdits(from: path("/lone"), to: path("/dst")).edits { namespace.apply(edit, sequence: 4) }
        XCTAssertEqual(namespace.list(path("/dst"))!.map(\.path), ["/dst/empty", "/dst/lone", "/dst/sub"])
        XCTAssertEqual(namespace.list(.root)!.map(\.path), ["/dst"])
    }

    func testATouchedDirectoryAndItsAncestorsMoveForwardNeverBack() throws {
        let namespace = Namespace()
        namespace.apply(.makeDirectory(path("/a/b"), mtimeMillis: 10), sequence: 1)
        namespace.apply(.makeDirectory(path("/c"), mtimeMillis: 20), sequence: 1)
        XCTAssertEqual(namespace.apply(.touchDirectory(path("/a/b"), mtimeMillis: 30), sequence: 2), [], "a time is not taken back")
        XCTAssertEqual(namespace.entry(at: path("/a/b"))?.mtimeMillis, 30)
        XCTAssertEqual(namespace.entry(at: path("/a"))?.mtimeMillis, 30, "the latest change at or below it")
        XCTAssertEqual(namespace.entry(at: .root)?.mtimeMillis, 30)
        XCTAssertEqual(namespace.entry(at: path("/c"))?.mtimeMillis, 20, "a sibling does not move")
        namespace.apply(.touchDirectory(path("/a/b"), mtimeMillis: 25), sequence: 3)
        XCTAssertEqual(namespace.entry(at: path("/a/b"))?.mtimeMillis, 30, "an earlier time moves nothing back")
        // A directory that went with the entry removed from it: the deepest one left takes the time.
        namespace.apply(.putFile(Fixture.file("/c/implied/f")), sequence: 4)
        namespace.apply(.removeFile(path("/c/implied/f")), sequence: 4)
        namespace.apply(.touchDirectory(path("/c/implied"), mtimeMillis: 2000), sequence: 4)
        XCTAssertEqual(namespace.list(.root)!.map(\.mtimeMillis), [30, 2000])
        // The edits that follow removals and renames: one per parent, the root's included.
        XCTAssertEqual(
            MetadataEdit.touchingParents(of: [path("/a/b/x"), path("/a/b/y"), path("/c"), .root, path("/a/b")], at: 7),
            [.touchDirectory(path("/a/b"), mtimeMillis: 7), .touchDirectory(.root, mtimeMillis: 7), .touchDirectory(path("/a"), mtimeMillis: 7)])
        XCTAssertEqual(path("/a/b").parent, path("/a"))
        XCTAssertEqual(path("/a").parent, .root)
        XCTAssertNil(RemotePath.root.parent)
    }

    func testEveryEditUndoesExactly() {
        let original = Fixture.file("/u/v", chunks: 2)
        let chunk = original.chunks[0].id
        let edits: [MetadataEdit] = [
            .putFile(Fixture.file("/u/w")), .putFile(Fixture.file("/u/v", chunks: 1)), .removeFile(path("/x")),
            .addReplica(chunk, Fixture.dk("dk7")), .addReplica(chunk, Fixture.dk("dk1")), .removeReplica(chunk, Fixture.dk("dk2")),
            .removeReplica(chunk, Fixture.dk("dk9")), .queueDeletion(chunk, Fixture.dk("dk1")), .queueDeletion(chunk, Fixture.dk("dk4")),
            .cancelDeletion(chunk, Fixture.dk("dk4")), .cancelDeletion(chunk, Fixture.dk("dk5")), .removeFile(path("/u/v")),
            .makeDirectory(path("/m/n"), mtimeMillis: 3), .makeDirectory(path("/u"), mtimeMillis: 4), .makeDirectory(path("/m/n"), mtimeMillis: 5),
            .makeDirectory(path("/m/n"), mtimeMillis: 6, attributes: ["posix-mode": "40700"]), .makeDirectory(path("/a"), mtimeMillis: 7, attributes: ["k": "v"]),
            .removeDirectory(path("/made")), .removeDirectory(path("/u")), .removeFile(path("/u/w")), .removeDirectory(path("/nope")),
        ]
        for count in 1...edits.count {
            let namespace = Namespace()
            namespace.apply(.putFile(original), sequence: 0)
            namespace.apply(.putFile(Fixture.file("/x")), sequence: 0)
            namespace.apply(.queueDeletion(chunk, Fixture.dk("dk1")), sequence: 0)
            namespace.apply(.makeDirectory(path("/made"), mtimeMillis: 1), sequence: 0)
            let before = snapshot(namespace)
            let inverses = edits.prefix(count).map { namespace.apply($0, sequence: 5) }
            for inverse in inverses.reversed() { for edit in inverse { namespace.apply(edit, sequence: 0) } }
            XCTAssertEqual(snapshot(namespace), before, "undoing the first \(count) edits")
        }
    }

    private struct Snapshot: Equatable {
        var files: [StoredFile]
        var chunks: [ChunkID: ChunkRecord]
        var deletions: [DataKeeperID: [ChunkID: UInt64]]
        var root: [NamespaceEntry]
        var made: [String]
    }

    private func snapshot(_ namespace: Namespace) -> Snapshot {
        var files = namespace.files(under: .root)
        for index in files.indices { for chunk in files[index].chunks.indices { files[index].chunks[chunk].replicas.sort() } }
        var chunks = namespace.chunks
        for key in chunks.keys { chunks[key]!.replicas.sort() }
        return Snapshot(
            files: files, chunks: chunks, deletions: namespace.pendingDeletions, root: namespace.list(.root)!,
            made: namespace.madeDirectories(under: .root).map { "\($0.path) \($0.mtimeMillis)" })
    }
}
