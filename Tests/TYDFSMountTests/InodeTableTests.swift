import Glibc
import TYDFSCore
import TYDFSMount
import XCTest

final class InodeTableTests: XCTestCase {
    func testNumbersStayWithTheirPathUntilForgottenAndAreNeverReused() {
        var table = InodeTable()
        XCTAssertEqual(table.path(of: InodeTable.rootInode), "/")
        let a = table.remember("/a")
        XCTAssertEqual(table.remember("/a"), a, "a second lookup gives the same number")
        let b = table.remember("/a/b")
        XCTAssertNotEqual(a, b)
        XCTAssertNotEqual(a, InodeTable.rootInode)

        table.forget(a, count: 1)
        XCTAssertEqual(table.path(of: a), "/a", "still held once")
        table.forget(a, count: 1)
        XCTAssertNil(table.path(of: a))
        XCTAssertNil(table.inode(of: "/a"))
        let again = table.remember("/a")
        XCTAssertNotEqual(again, a, "a retired number is not handed out again")
        XCTAssertGreaterThan(again, b)

        table.forget(InodeTable.rootInode, count: 5)
        XCTAssertEqual(table.path(of: InodeTable.rootInode), "/", "the root is never forgotten")
        table.forget(9999, count: 1)
        XCTAssertEqual(table.count, 3)
    }

    /// Two spellings of one name (é as one character; e and a combining accent) are two files
    /// to Linux, so two numbers here, and a rename moves only the one it names, with a name
    /// below it that begins with a combining accent.
    func testTwoSpellingsOfOneNameHaveTwoNumbers() {
        var table = InodeTable()
        let composed = table.remember("/caf\u{E9}")
        let decomposed = table.remember("/cafe\u{301}")
        let below = table.remember("/caf\u{E9}/\u{301}x")
        XCTAssertNotEqual(composed, decomposed)
        XCTAssertEqual(table.inode(of: "/cafe\u{301}"), decomposed)
        table.moved(from: "/caf\u{E9}", to: "/t")
        XCTAssertEqual(table.path(of: composed), "/t")
        XCTAssertEqual(table.path(of: below).map { Array($0.utf8) }, Array("/t/\u{301}x".utf8))
        XCTAssertEqual(table.path(of: decomposed).map { Array($0.utf8) }, Array("/cafe\u{301}".utf8), "the other spelling stays")
        table.removed("/cafe\u{301}")
        XCTAssertNil(table.path(of: decomposed))
        XCTAssertEqual(table.inode(of: "/t"), composed)
    }

    func testARenameCarriesEveryNumberBelowItAndRetiresTheReplacedOne() {
        var table = InodeTable()
        let folder = table.remember("/d")
        let file = table.remember("/d/f")
        let deep = table.remember("/d/e/g")
        let sibling = table.remember("/dx")
        let replaced = table.remember("/t")

        table.moved(from: "/d", to: "/t")
        XCTAssertEqual(table.path(of: folder), "/t")
        XCTAssertEqual(table.path(of: file), "/t/f")
        XCTAssertEqual(table.path(of: deep), "/t/e/g")
        XCTAssertEqual(table.path(of: sibling), "/dx", "a name that only starts the same does not move")
        XCTAssertNil(table.path(of: replaced), "the file that stood at the target is gone")
        XCTAssertEqual(table.inode(of: "/t/f"), file)
        XCTAssertNil(table.inode(of: "/d/f"))

        // The replaced number's late forget must not retire the moved folder's path.
        table.forget(replaced, count: 1)
        XCTAssertEqual(table.inode(of: "/t"), folder)
    }

    func testARemovedPathNamesNothingAndALateForgetIsHarmless() {
        var table = InodeTable()
        let file = table.remember("/f")
        table.removed("/f")
        XCTAssertNil(table.path(of: file))
        let recreated = table.remember("/f")
        XCTAssertNotEqual(recreated, file)
        table.forget(file, count: 1)
        XCTAssertEqual(table.inode(of: "/f"), recreated)
        XCTAssertEqual(table.path(of: recreated), "/f")
    }

    func testErrnosProgramsSee() throws {
        XCTAssertEqual(MountErrno.of(TYDFSError(.notFound, "x")), ENOENT)
        XCTAssertEqual(MountErrno.of(TYDFSError(.alreadyExists, "x")), EEXIST)
        XCTAssertEqual(MountErrno.of(TYDFSError(.directoryNotEmpty, "x")), ENOTEMPTY)
        XCTAssertEqual(MountErrno.of(TYDFSError(.insufficientSpace, "x")), ENOSPC)
        XCTAssertEqual(MountErrno.of(TYDFSError(.forbidden, "x")), EACCES)
        XCTAssertEqual(MountErrno.of(TYDFSError(.unauthenticated, "x")), EACCES)
        XCTAssertEqual(MountErrno.of(TYDFSError(.unreachable, "x")), EIO)
        XCTAssertEqual(MountErrno.of(TYDFSError(.unavailable, "x")), EIO)
        XCTAssertEqual(MountErrno.of(MountError(EXDEV, "x")), EXDEV)
        XCTAssertEqual(MountErrno.of(CancellationError()), EIO)

        XCTAssertEqual(try MountErrno.child("b", of: "/").value, "/b")
        XCTAssertEqual(try MountErrno.child("b", of: "/a").value, "/a/b")
        XCTAssertNoThrow(try MountErrno.child(String(repeating: "n", count: 255), of: "/"))
        XCTAssertThrowsError(try MountErrno.child(String(repeating: "n", count: 256), of: "/")) {
            XCTAssertEqual(($0 as? MountError)?.errno, ENAMETOOLONG)
        }
        let deep = "/" + String(repeating: "d", count: 7900)
        XCTAssertThrowsError(try MountErrno.child(String(repeating: "n", count: 200), of: deep)) {
            XCTAssertEqual(($0 as? MountError)?.errno, ENAMETOOLONG)
        }
    }
}
