import TYDFSCore
import XCTest

final class IdentityAttributesTests: XCTestCase {
    func testAPutOverARegularFileKeepsTheModeAndOwnerItDoesNotGiveAndNothingElse() {
        let replaced = ["posix-mode": "100600", "posix-uid": "7", "posix-gid": "8", "content-type": "text/plain", "s3-etag": "abc"]
        // None given: the mode and owner stay; what described the old bytes goes.
        XCTAssertEqual(IdentityAttributes.carried(from: replaced, into: [:]), ["posix-mode": "100600", "posix-uid": "7", "posix-gid": "8"])
        // Given: they win, one by one.
        XCTAssertEqual(
            IdentityAttributes.carried(from: replaced, into: ["posix-mode": "100644", "content-type": "image/png"]),
            ["posix-mode": "100644", "posix-uid": "7", "posix-gid": "8", "content-type": "image/png"])
        XCTAssertEqual(IdentityAttributes.carried(from: [:], into: ["k": "v"]), ["k": "v"])
        // A mode without type bits counts as a regular file's.
        XCTAssertEqual(IdentityAttributes.carried(from: ["posix-mode": "640"], into: [:]), ["posix-mode": "640"])
    }

    func testNewBytesKeepNoSetIDBitUnlessGivenOne() {
        let setuid = ["posix-mode": "106755", "posix-uid": "0"]
        XCTAssertEqual(IdentityAttributes.carried(from: setuid, into: [:]), ["posix-mode": "100755", "posix-uid": "0"])
        XCTAssertEqual(IdentityAttributes.carried(from: setuid, into: ["posix-mode": "104755"])["posix-mode"], "104755")
    }

    func testNothingPassesFromALinkAFIFOOrADevice() {
        for replaced in [
            ["posix-mode": "120777", "posix-link": "target", "posix-uid": "7"],
            ["posix-mode": "10644", "posix-uid": "7"],
            ["posix-mode": "20600", "posix-rdev": "259", "posix-uid": "7"],
        ] {
            XCTAssertEqual(IdentityAttributes.carried(from: replaced, into: ["k": "v"]), ["k": "v"], "\(replaced)")
        }
    }
}
