import TYDFSCore
import XCTest
@testable import TYDFSSecurity

final class RequestSignatureTests: XCTestCase {
    let key = AccessKey.generate(access: .readWrite, prefix: nil, nowMillis: 0)

    private func check(_ header: String, secret: SigningSecret? = nil, method: String = "POST", target: String = "/v1/uploads",
                       body: String = "{}", now: Int64 = 10_000) -> String? {
        guard let claimed = RequestSignature.parse(header) else { return "unparsable" }
        return RequestSignature.verify(
            claimed, secret: secret ?? SigningSecret(accessKeySecret: key.secretAccessKey), method: method, target: target,
            bodyDigest: RequestSignature.digest(Array(body.utf8)), now: now)
    }

    func testASignedRequestVerifiesAndAnyChangeBreaksIt() {
        let signer = RequestSigner(accessKeyID: key.accessKeyID, secret: key.secretAccessKey)
        let header = signer.authorization(method: "POST", target: "/v1/uploads", bodyDigest: RequestSignature.digest(Array("{}".utf8)), date: 10_000)
        XCTAssertEqual(RequestSignature.parse(header)?.keyID, key.accessKeyID)
        XCTAssertNil(check(header))
        XCTAssertNotNil(check(header, method: "DELETE"))
        XCTAssertNotNil(check(header, target: "/v1/uploads?x=1"))
        XCTAssertNotNil(check(header, body: "{ }"))
        XCTAssertNotNil(check(header, secret: SigningSecret(accessKeySecret: "wrong")))
        XCTAssertNotNil(check(header, secret: SigningSecret(cluster: ClusterSecret.generate())))
        XCTAssertNil(check(header, now: 10_000 + Limits.signatureSkewSeconds))
        XCTAssertNotNil(check(header, now: 10_000 + Limits.signatureSkewSeconds + 1), "too old: a replay")
        XCTAssertNotNil(check(header, now: 10_000 - Limits.signatureSkewSeconds - 1), "from the future")
    }

    func testMalformedHeadersDoNotParse() {
        for header in ["", "Bearer abc", "TYDFS-HMAC-SHA256", "TYDFS-HMAC-SHA256 Credential=a, Date=x, Signature=00",
                       "TYDFS-HMAC-SHA256 Credential=, Date=1, Signature=" + String(repeating: "0", count: 64),
                       "TYDFS-HMAC-SHA256 Credential=a, Date=1, Signature=" + String(repeating: "0", count: 62),
                       "TYDFS-HMAC-SHA256 Credential=a, Date=-1, Signature=" + String(repeating: "0", count: 64),
                       "TYDFS-HMAC-SHA256 Credential=a, Date=1, Signature=" + String(repeating: "0", count: 64) + ", Extra=1",
                       "TYDFS-HMAC-SHA256 Credential=a, Credential=b, Date=1, Signature=" + String(repeating: "0", count: 64),
                       "TYDFS-HMAC-SHA256 Credential=a,, Date=1, Signature=" + String(repeating: "0", count: 64),
                       "TYDFS-HMAC-SHA256 Credential=a, Date=1, Signature=" + String(repeating: "g", count: 64)] {
            XCTAssertNil(RequestSignature.parse(header), header)
        }
    }

    func testWellFormedHeadersParseWhateverTheSpacing() {
        let signature = String(repeating: "ab", count: 32)
        for header in ["TYDFS-HMAC-SHA256 Credential=key1, Date=17, Signature=\(signature)",
                       "TYDFS-HMAC-SHA256 Credential=key1,Date=17,Signature=\(signature)",
                       "TYDFS-HMAC-SHA256   Credential=key1 ,  Date=17,Signature=\(signature)  ",
                       "TYDFS-HMAC-SHA256 Signature=\(signature),\tDate=17, Credential=key1"] {
            XCTAssertEqual(RequestSignature.parse(header), RequestSignature.Claimed(keyID: "key1", date: 17, signature: Array(repeating: 0xab, count: 32)), header)
        }
    }

    func testClusterSignerUsesTheClusterKeyID() {
        let secret = ClusterSecret.generate()
        let header = RequestSigner(cluster: secret).authorization(method: "GET", target: "/v1/nodes", bodyDigest: RequestSignature.digest([UInt8]()), date: 5)
        let claimed = RequestSignature.parse(header)!
        XCTAssertEqual(claimed.keyID, RequestSigner.clusterKeyID)
        XCTAssertNil(RequestSignature.verify(claimed, secret: SigningSecret(cluster: secret), method: "GET", target: "/v1/nodes",
                                             bodyDigest: RequestSignature.digest([UInt8]()), now: 5))
    }
}

final class PrincipalTests: XCTestCase {
    let inside = try! RemotePath("/team/a.txt")
    let outside = try! RemotePath("/other/b.txt")
    let lookalike = try! RemotePath("/teammate/c.txt")
    let prefix = try! RemotePath("/team")

    private func allowed(_ principal: Principal, _ need: Principal.Need) -> Bool {
        (try? principal.authorize(need)) != nil
    }

    /// Every principal against every kind of need: the whole table.
    func testTheWholeAuthorizationTable() {
        let readOnly = Principal.key(id: "TK1", access: .readOnly, prefix: nil)
        let readWrite = Principal.key(id: "TK2", access: .readWrite, prefix: nil)
        let admin = Principal.key(id: "TK3", access: .admin, prefix: nil)
        let scoped = Principal.key(id: "TK4", access: .readWrite, prefix: prefix)
        let principals: [(Principal, read: Bool, write: Bool, look: Bool, admin: Bool, cluster: Bool)] = [
            (.cluster, true, true, true, true, true),
            (admin, true, true, true, true, false),
            (readWrite, true, true, true, false, false),
            (readOnly, true, false, true, false, false),
            (.anonymous(.readOnly), true, false, true, false, false),
            (.anonymous(.readWrite), true, true, true, false, false),
        ]
        for (principal, read, write, look, isAdmin, cluster) in principals {
            XCTAssertEqual(allowed(principal, .read(outside)), read, "\(principal) read")
            XCTAssertEqual(allowed(principal, .write(outside)), write, "\(principal) write")
            XCTAssertEqual(allowed(principal, .look), look, "\(principal) look")
            XCTAssertEqual(allowed(principal, .admin), isAdmin, "\(principal) admin")
            XCTAssertEqual(allowed(principal, .cluster), cluster, "\(principal) cluster")
        }
        XCTAssertTrue(allowed(scoped, .read(inside)))
        XCTAssertTrue(allowed(scoped, .write(inside)))
        XCTAssertTrue(allowed(scoped, .write(prefix)))
        XCTAssertFalse(allowed(scoped, .read(outside)))
        XCTAssertFalse(allowed(scoped, .write(outside)))
        XCTAssertFalse(allowed(scoped, .read(lookalike)), "a prefix is a folder, not a string prefix")
        XCTAssertFalse(allowed(scoped, .read(.root)))
        XCTAssertThrowsError(try readOnly.authorize(.write(inside))) { error in
            XCTAssertEqual((error as? TYDFSError)?.code, .forbidden)
        }
    }

    /// A key limited to a folder reaches that folder by its bytes: not the folder spelled the
    /// other way (é as one character; e and a combining accent), which Swift's `==` and
    /// `hasPrefix` took for it, and everything below its own spelling, a name that begins
    /// with a combining accent included.
    func testAScopeIsAFolderByItsBytes() throws {
        let composed = try RemotePath("/caf\u{E9}")
        let scoped = Principal.key(id: "TK5", access: .readWrite, prefix: composed)
        XCTAssertTrue(allowed(scoped, .write(try RemotePath("/caf\u{E9}/x"))))
        XCTAssertTrue(allowed(scoped, .write(try RemotePath("/caf\u{E9}/\u{301}x"))))
        XCTAssertFalse(allowed(scoped, .write(try RemotePath("/cafe\u{301}"))))
        XCTAssertFalse(allowed(scoped, .read(try RemotePath("/cafe\u{301}/x"))))
    }

    func testGeneratedKeysAreWellFormedAndDistinct() {
        let keys = (0..<50).map { _ in AccessKey.generate(access: .readOnly, prefix: nil, nowMillis: 0) }
        XCTAssertEqual(Set(keys.map(\.accessKeyID)).count, 50)
        XCTAssertTrue(keys.allSatisfy { AccessKey.isWellFormedID($0.accessKeyID) && $0.secretAccessKey.count == 40 })
        XCTAssertFalse(AccessKey.isWellFormedID("cluster"))
        XCTAssertFalse(AccessKey.isWellFormedID("TK../../etc/passwd00"))
    }
}
