import Foundation
import TYDFSProtocol
import TYDFSTestSupport
import XCTest

/// The S3 gateway driven by real S3 clients, boto3 and awscli (`scripts/s3-clients-check.py`):
/// buckets, objects, ranges, listings, multipart, copies, presigned URLs and errors, each answer
/// checked; and the objects it stores read back with `tydfs get`, and the reverse.
final class S3GatewayTests: XCTestCase {
    private static let script = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/s3-clients-check.py").path

    /// Runs the client script against `endpoint`; returns its exit code and output.
    private func runClients(_ cluster: TestCluster, endpoint: String, extra: [String] = []) throws -> (Int32, String) {
        let key = try cluster.adminKey()
        let result = try cluster.runUntilExit(
            "/usr/bin/env", ["python3", Self.script, "--endpoint", endpoint, "--key", key.id, "--secret", key.secret] + extra, seconds: 300)
        return (result.status, result.output)
    }

    /// Runs a Python program; returns its standard output.
    private func python(_ program: String) throws -> Data {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", program]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        return data
    }

    /// Over HTTPS, botocore sends every upload as aws-chunked with its CRC32 in a trailer.
    func testBoto3OverTLSWithAwsChunkedUploads() throws {
        let cluster = try TestCluster(datakeepers: 3, chunkSize: "8MiB", tls: true)
        defer { cluster.shutdown() }
        let endpoint = try cluster.startS3Gateway()
        XCTAssertTrue(endpoint.hasPrefix("https://"))
        let (code, output) = try runClients(cluster, endpoint: endpoint, extra: ["--ca-file", cluster.root + "/tls/ca.pem", "--skip-awscli"])
        XCTAssertEqual(code, 0, output)
        XCTAssertTrue(output.contains(" checks passed"), output)
        // The body came aws-chunked, and what was stored is the payload alone, with its checksum.
        let stored = try cluster.stat("/alpha/small")
        XCTAssertEqual(stored.sizeBytes, 1000)
        XCTAssertNotNil(stored.attributes?["x-amz-checksum-crc32"])
        XCTAssertNil(stored.attributes?["content-encoding"])
    }

    func testAnAbandonedMultipartUploadIsRemoved() throws {
        let cluster = try TestCluster(datakeepers: 3)
        defer { cluster.shutdown() }
        let endpoint = try cluster.startS3Gateway(extraArguments: ["--multipart-expiry", "2s", "--multipart-sweep-interval", "300ms"])
        let key = try cluster.adminKey()
        let listed = try python("""
            import boto3, time
            from botocore.config import Config
            s3 = boto3.client("s3", endpoint_url="\(endpoint)", aws_access_key_id="\(key.id)", aws_secret_access_key="\(key.secret)",
                              region_name="us-east-1", config=Config(s3={"addressing_style": "path"}))
            s3.create_bucket(Bucket="bucket")
            upload = s3.create_multipart_upload(Bucket="bucket", Key="never finished")["UploadId"]
            s3.upload_part(Bucket="bucket", Key="never finished", UploadId=upload, PartNumber=1, Body=b"x" * 1000)
            print(len(s3.list_multipart_uploads(Bucket="bucket").get("Uploads", [])))
            """)
        XCTAssertEqual(String(decoding: listed, as: UTF8.self), "1\n")
        try cluster.waitUntil("the abandoned upload removed", timeout: 15) {
            try cluster.json(ListResponse.self, ["ls", "/bucket", "--json"]).entries.isEmpty
        }
        XCTAssertTrue(cluster.logs(of: "s3").joined().contains("abandoned multipart upload removed"))
    }

    func testBoto3AndAwscliAgainstTheGateway() throws {
        let cluster = try TestCluster(datakeepers: 3, chunkSize: "8MiB")
        defer { cluster.shutdown() }
        let endpoint = try cluster.startS3Gateway()
        let (code, output) = try runClients(cluster, endpoint: endpoint)
        XCTAssertEqual(code, 0, output)
        XCTAssertTrue(output.contains(" checks passed"), output)

        // What S3 stored is a file like any other, and the reverse.
        let local = try cluster.makeFile("via-cli", size: 300_000)
        try cluster.succeed(["put", local, "/alpha/from-cli"])
        let key = try cluster.adminKey()
        let fetch = try python("""
            import boto3, sys
            from botocore.config import Config
            s3 = boto3.client("s3", endpoint_url="\(endpoint)", aws_access_key_id="\(key.id)", aws_secret_access_key="\(key.secret)",
                              region_name="us-east-1", config=Config(s3={"addressing_style": "path"}))
            sys.stdout.buffer.write(s3.get_object(Bucket="alpha", Key="from-cli")["Body"].read())
            """)
        XCTAssertEqual(fetch, try cluster.contents(local), "a file put with tydfs reads back through S3")
        XCTAssertEqual(try cluster.succeed(["get", "/alpha/small", "-"]).stdout.count, 1000, "an object put through S3 reads back with tydfs get")
        // An object joined from parts moved their chunks: one chunk per part, no copy.
        let joined = try cluster.stat("/alpha/mp-even")
        XCTAssertEqual(joined.chunks.map(\.sizeBytes), [5 << 20, 5 << 20, 1 << 20])
    }

    /// S3 credentials carry their key's rights: a read-only key reads but cannot write, and a key
    /// limited to /team writes into bucket `team` and nowhere else. Each refusal is S3's
    /// AccessDenied (403), and stores nothing.
    func testS3KeysKeepTheirReadOnlyRightAndTheirPrefix() throws {
        let cluster = try TestCluster(datakeepers: 3)
        defer { cluster.shutdown() }
        let endpoint = try cluster.startS3Gateway()
        func key(_ flags: [String]) throws -> (id: String, secret: String) {
            let made = try XCTUnwrap(JSONSerialization.jsonObject(with: try cluster.succeed(["key", "create", "--json"] + flags).stdout) as? [String: Any])
            return (try XCTUnwrap(made["accessKeyId"] as? String), try XCTUnwrap(made["secretAccessKey"] as? String))
        }
        let admin = try cluster.adminKey()
        let readOnly = try key(["--read-only"])
        let team = try key(["--prefix", "/team"])
        let answers = try python("""
            import boto3, json
            from botocore.config import Config
            from botocore.exceptions import ClientError
            def client(key, secret):
                return boto3.client("s3", endpoint_url="\(endpoint)", aws_access_key_id=key, aws_secret_access_key=secret,
                                    region_name="us-east-1", config=Config(s3={"addressing_style": "path"}))
            def attempt(call):
                try:
                    call()
                    return "ok"
                except ClientError as error:
                    return "%s %d" % (error.response["Error"]["Code"], error.response["ResponseMetadata"]["HTTPStatusCode"])
            admin = client("\(admin.id)", "\(admin.secret)")
            read_only = client("\(readOnly.id)", "\(readOnly.secret)")
            team = client("\(team.id)", "\(team.secret)")
            admin.create_bucket(Bucket="team")
            admin.create_bucket(Bucket="other")
            admin.put_object(Bucket="other", Key="seed", Body=b"seed bytes")
            print(json.dumps({
                "read-only get": read_only.get_object(Bucket="other", Key="seed")["Body"].read().decode(),
                "read-only put": attempt(lambda: read_only.put_object(Bucket="other", Key="by-read-only", Body=b"r" * 1000)),
                "team put": attempt(lambda: team.put_object(Bucket="team", Key="by-team", Body=b"t" * 1000)),
                "team put elsewhere": attempt(lambda: team.put_object(Bucket="other", Key="by-team", Body=b"o" * 1000)),
            }))
            """)
        let results = try XCTUnwrap(JSONSerialization.jsonObject(with: answers) as? [String: String], String(decoding: answers, as: UTF8.self))
        XCTAssertEqual(results["read-only get"], "seed bytes", "a read-only key reads")
        XCTAssertEqual(results["read-only put"], "AccessDenied 403", "a read-only key writing")
        XCTAssertEqual(results["team put"], "ok", "a /team key writing into bucket team")
        XCTAssertEqual(results["team put elsewhere"], "AccessDenied 403", "a /team key writing into another bucket")
        // What the keys may do went through; what they may not left nothing: no file, and no
        // chunk on any disk but the two stored objects'.
        XCTAssertEqual(try cluster.succeed(["get", "/team/by-team", "-"]).stdout, Data(repeating: UInt8(ascii: "t"), count: 1000))
        for refused in ["/other/by-read-only", "/other/by-team"] {
            XCTAssertNotEqual(try cluster.run(["stat", refused]).exitCode, 0, "\(refused) was stored")
        }
        let kept = Set(try ["/other/seed", "/team/by-team"].flatMap { try cluster.stat($0).chunks.map(\.id) })
        for id in ["dk1", "dk2", "dk3"] {
            XCTAssertTrue(cluster.storedChunks(on: id).isSubset(of: kept), "\(id) holds chunks of a refused put")
        }
    }
}
