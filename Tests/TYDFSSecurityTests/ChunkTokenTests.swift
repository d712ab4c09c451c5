import Foundation
import TYDFSCore
import TYDFSProtocol
import XCTest
@testable import TYDFSSecurity

final class ChunkTokenTests: XCTestCase {
    let secret = ClusterSecret.generate()
    let chunk = ChunkID(high: 1, low: 2)
    let pipeline = [
        PipelineHop(id: "dk1", address: "10.0.0.1:7000"),
        PipelineHop(id: "dk2", address: "10.0.0.2:7000"),
        PipelineHop(id: "dk3", address: "10.0.0.3:7000"),
    ]

    private func refusal(_ text: String?, chunk: ChunkID? = nil, operations: Set<ChunkToken.Operation> = [.read], now: Int64 = 1000) -> TYDFSError? {
        do {
            _ = try ChunkToken.verify(text, secret: secret, chunk: chunk ?? self.chunk, operations: operations, now: now)
            return nil
        } catch {
            return error as? TYDFSError
        }
    }

    func testAGenuineTokenVerifiesAndKeepsItsClaims() throws {
        let token = ChunkToken(chunk: chunk, operation: .write, expiresAt: 2000, pipeline: pipeline)
        let verified = try ChunkToken.verify(token.signed(with: secret), secret: secret, chunk: chunk, operations: [.write], now: 1999)
        XCTAssertEqual(verified, token)
        XCTAssertEqual(try verified.downstream(of: try DataKeeperID("dk1")), Array(pipeline.dropFirst()))
        XCTAssertEqual(try verified.downstream(of: try DataKeeperID("dk3")), [])
        XCTAssertThrowsError(try verified.downstream(of: try DataKeeperID("dk9")))
    }

    func testEveryKindOfBadTokenIsRefusedWithTheRightStatus() {
        let read = ChunkToken(chunk: chunk, operation: .read, expiresAt: 2000).signed(with: secret)
        // Missing, malformed: 401.
        for text in [nil, "", "v1", "v1.a.b.c", "v2." + read.dropFirst(3), "v1.!!!.???"] {
            let refused = refusal(text)
            XCTAssertNotNil(refused, "\(String(describing: text))")
            XCTAssertEqual(refused?.code, .unauthenticated)
        }
        // Forged: another secret's signature, or claims changed after signing: 401.
        let other = ChunkToken(chunk: chunk, operation: .read, expiresAt: 2000).signed(with: ClusterSecret.generate())
        XCTAssertEqual(refusal(other)?.code, .unauthenticated)
        let parts = read.split(separator: ".").map(String.init)
        let wider = ChunkToken(chunk: chunk, operation: .read, expiresAt: 9_999_999).signed(with: secret).split(separator: ".").map(String.init)
        XCTAssertEqual(refusal([parts[0], wider[1], parts[2]].joined(separator: "."))?.code, .unauthenticated, "claims swapped under an old signature")
        // Expired: 401.
        XCTAssertNil(refusal(read, now: 2000))
        XCTAssertEqual(refusal(read, now: 2001)?.code, .unauthenticated)
        // Genuine but for another chunk or operation: 403.
        XCTAssertEqual(refusal(read, chunk: ChunkID(high: 1, low: 3))?.code, .forbidden)
        XCTAssertEqual(refusal(read, operations: [.write])?.code, .forbidden)
        let write = ChunkToken(chunk: chunk, operation: .write, expiresAt: 2000, pipeline: pipeline).signed(with: secret)
        XCTAssertEqual(refusal(write, operations: [.read, .replicate])?.code, .forbidden)
        let replicate = ChunkToken(chunk: chunk, operation: .replicate, expiresAt: 2000).signed(with: secret)
        XCTAssertNil(refusal(replicate, operations: [.read, .replicate]))
        XCTAssertEqual(refusal(replicate, operations: [.write])?.code, .forbidden)
    }

    func testSecretFileIsPrivateAndNeverReplaced() throws {
        let folder = NSTemporaryDirectory() + "tydfs-secret-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/cluster.secret"
        let (made, created) = try ClusterSecret.readOrCreate(at: path)
        XCTAssertTrue(created)
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        XCTAssertEqual(mode, 0o600)
        let (again, createdAgain) = try ClusterSecret.readOrCreate(at: path)
        XCTAssertFalse(createdAgain)
        XCTAssertEqual(again.text, made.text)
        XCTAssertThrowsError(try ClusterSecret.generate().write(to: path)) { error in
            XCTAssertEqual((error as? TYDFSError)?.code, .alreadyExists)
        }
        XCTAssertEqual(try ClusterSecret.read(from: path).text, made.text)
        chmod(path, 0o644)
        XCTAssertThrowsError(try ClusterSecret.read(from: path), "a secret others can read is refused")
        XCTAssertThrowsError(try ClusterSecret(text: "abcd"), "too short")
        XCTAssertThrowsError(try ClusterSecret(text: String(repeating: "zz", count: 32)), "not hex")
    }

    func testBase64URLMatchesFoundationsBase64AndRefusesWhatNoEncodingMakes() {
        var generator = SystemRandomNumberGenerator()
        for length in 0..<70 {
            let bytes = (0..<length).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
            let expected = Data(bytes).base64EncodedString()
                .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
            XCTAssertEqual(Base64URL.encode(bytes), expected)
            XCTAssertEqual(Base64URL.decode(expected), bytes)
        }
        for text in ["A", "AAAAA", "ab+c", "ab/c", "ab=c", "abc=", "ab c", "AB", "AAB"] {
            XCTAssertNil(Base64URL.decode(text), "'\(text)'")  // "AB", "AAB": leftover bits not zero
        }
        XCTAssertEqual(Base64URL.decode(""), [])
        XCTAssertEqual(Base64URL.decode("AA"), [0])
    }
}
