import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import TYDFSClient
@testable import TYDFSS3Gateway
import XCTest

/// The gateway's answers at Hummingbird's responder depth, for requests refused before any call
/// to the master: each gets S3's XML error with the right code and status, and a request id.
final class S3ResponderTests: XCTestCase {
    private func withGateway(_ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        // Port 9 (discard) on loopback: nothing here may reach a master.
        let cluster = try TYDFSClient(masterURL: "http://127.0.0.1:9")
        let responder = S3Responder(
            cluster: cluster, keys: AccessKeyCache(cluster: cluster), region: "us-east-1", logger: Logger(label: "test"))
        let app = Application(responder: responder)
        do {
            try await app.test(.router, body)
        } catch {
            try await cluster.shutdown()
            throw error
        }
        try await cluster.shutdown()
    }

    private static func assertS3Error(
        _ response: TestResponse, _ status: HTTPResponse.Status, _ code: String, file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertEqual(response.status, status, file: file, line: line)
        XCTAssertEqual(response.headers[.contentType], "application/xml", file: file, line: line)
        XCTAssertNotNil(response.headers[HTTPField.Name("x-amz-request-id")!], file: file, line: line)
        XCTAssertTrue(String(buffer: response.body).contains("<Code>\(code)</Code>"), String(buffer: response.body), file: file, line: line)
    }

    func testRequestsRefusedBeforeAnyCallToTheMaster() async throws {
        try await withGateway { client in
            try await client.execute(uri: "/", method: .get) { Self.assertS3Error($0, .forbidden, "AccessDenied") }
            try await client.execute(uri: "/bucket/key?AWSAccessKeyId=AKIA&Signature=x&Expires=1", method: .get) { response in
                Self.assertS3Error(response, .badRequest, "InvalidRequest")
                XCTAssertTrue(String(buffer: response.body).contains("Signature Version 2 is not supported"))
            }
            try await client.execute(uri: "/bucket/%ZZ", method: .get) { Self.assertS3Error($0, .badRequest, "InvalidArgument") }
            try await client.execute(uri: "/bucket/%C3%28", method: .get) { Self.assertS3Error($0, .badRequest, "InvalidArgument") }
            try await client.execute(
                uri: "/bucket/key", method: .get, headers: [.authorization: "AWS4-HMAC-SHA256 Credential=nonsense"]
            ) { Self.assertS3Error($0, .badRequest, "AuthorizationHeaderMalformed") }
            // A key id that cannot be a TYDFS key is refused without asking the master.
            let date = "20261129T080000Z"
            try await client.execute(uri: "/bucket/key", method: .get, headers: [
                .authorization: "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261129/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=" + String(repeating: "0", count: 64),
                HTTPField.Name("x-amz-date")!: date,
                HTTPField.Name("x-amz-content-sha256")!: "UNSIGNED-PAYLOAD",
                HTTPField.Name("host")!: "127.0.0.1",
            ]) { Self.assertS3Error($0, .forbidden, "InvalidAccessKeyId") }
            // HEAD answers carry no body, errors included.
            try await client.execute(uri: "/bucket/key", method: .head) { response in
                XCTAssertEqual(response.status, .forbidden)
                XCTAssertEqual(response.body.readableBytes, 0)
            }
        }
    }
}
