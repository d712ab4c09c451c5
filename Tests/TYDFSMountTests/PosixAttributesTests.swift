import TYDFSMount
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class PosixAttributesTests: XCTestCase {
    func testEveryFieldRoundTripsThroughTheKeptAttributes() {
        let link = PosixAttributes(mode: S_IFLNK | 0o777, uid: 65534, gid: 65533, linkTarget: "../ünï target")
        XCTAssertEqual(link.kept, ["posix-mode": "120777", "posix-uid": "65534", "posix-gid": "65533", "posix-link": "../ünï target"])
        XCTAssertEqual(PosixAttributes(kept: link.kept), link)
        let device = PosixAttributes(mode: S_IFCHR | 0o600, deviceNumber: 259)
        XCTAssertEqual(PosixAttributes(kept: device.kept), device)
        XCTAssertEqual(PosixAttributes().kept, [:], "nothing set, nothing kept")
    }

    func testOtherAttributesAndValuesThatDoNotParseCountAsAbsent() {
        let read = PosixAttributes(kept: ["content-type": "text/plain", "posix-mode": "rwx", "posix-uid": "-1", "posix-gid": "12"])
        XCTAssertEqual(read, PosixAttributes(gid: 12))
        XCTAssertEqual(PosixAttributes(kept: nil), PosixAttributes())
    }

    func testTheModeShownFitsWhatTheClusterSaysThePathIs() {
        // Nothing kept: the defaults.
        XCTAssertEqual(PosixAttributes().statusMode(isDirectory: true), S_IFDIR | 0o755)
        XCTAssertEqual(PosixAttributes().statusMode(isDirectory: false), S_IFREG | 0o644)
        // Kept: type and permission bits as kept.
        XCTAssertEqual(PosixAttributes(mode: S_IFDIR | 0o1777).statusMode(isDirectory: true), S_IFDIR | 0o1777)
        for type in [S_IFREG, S_IFLNK, S_IFIFO, S_IFSOCK, S_IFCHR, S_IFBLK] {
            XCTAssertEqual(PosixAttributes(mode: type | 0o4750).statusMode(isDirectory: false), type | 0o4750)
        }
        // A kept type that does not fit: the cluster's word on file or directory wins, the bits stay.
        XCTAssertEqual(PosixAttributes(mode: S_IFREG | 0o600).statusMode(isDirectory: true), S_IFDIR | 0o600)
        XCTAssertEqual(PosixAttributes(mode: S_IFDIR | 0o700).statusMode(isDirectory: false), S_IFREG | 0o700)
        XCTAssertEqual(PosixAttributes(mode: 0o640).statusMode(isDirectory: false), S_IFREG | 0o640)
        XCTAssertTrue(PosixAttributes(mode: S_IFLNK | 0o777).isSymbolicLink)
        XCTAssertFalse(PosixAttributes().isSymbolicLink)
    }
}
