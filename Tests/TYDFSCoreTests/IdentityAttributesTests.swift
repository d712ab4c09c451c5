import TYDFSCore
import XCTest

final class IdentityAttributesTests: XCTestCase {
    func testAPutKeepsTheIdentityAttributesItDoesNotGiveAndNothingElse() {
        let replaced = ["posix-mode": "100600", "posix-uid": "7", "content-type": "text/plain", "s3-etag": "abc"]
        // None given: the mode and owner stay; what described the old bytes goes.
        XCTAssertEqual(IdentityAttributes.carried(from: replaced, into: [:]), ["posix-mode": "100600", "posix-uid": "7"])
        // Given: they win, one by one.
        XCTAssertEqual(
            IdentityAttributes.carried(from: replaced, into: ["posix-mode": "100644", "content-type": "image/png"]),
            ["posix-mode": "100644", "posix-uid": "7", "content-type": "image/png"])
        XCTAssertEqual(IdentityAttributes.carried(from: [:], into: ["k": "v"]), ["k": "v"])
    }
}
