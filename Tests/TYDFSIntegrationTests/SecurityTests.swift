import Foundation
import TYDFSCore
import TYDFSProtocol
import TYDFSSecurity
import TYDFSTestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The cluster locked, tried from outside: requests to the datakeepers with missing, forged,
/// expired and wrongly scoped chunk tokens and with forward headers the master did not choose;
/// clients with no key, a wrong one, a read-only one, one outside its prefix and a revoked one;
/// a datakeeper without the secret. Every attempt is refused and changes nothing. (Every master
/// route against every kind of caller is tried at router depth in MasterStateTests.)
final class SecurityTests: XCTestCase {
    func testDataKeepersMoveChunkBytesOnlyWithAValidTokenAndForwardOnlyWhereTheMasterSaid() throws {
        let cluster = try TestCluster(datakeepers: 3)
        defer { cluster.shutdown() }
        let local = try cluster.makeFile("data", size: 40_000)
        try cluster.succeed(["put", local, "/data"])
        let chunk = try XCTUnwrap(cluster.stat("/data").chunks.first)
        let nodes = try cluster.nodes().nodes.sorted { $0.id < $1.id }
        let (dk1, dk2, dk3) = (nodes[0], nodes[1], nodes[2])
        let secret = try cluster.clusterSecret()
        let url = "http://\(dk1.address)\(Route.chunk(chunk.id.value))"
        func get(_ token: String?) throws -> Int {
            try HTTP.request("GET", url, headers: token.map { [Header.chunkToken: $0] } ?? [:]).status
        }
        let now = UnixClock.now
        let other = ChunkID.random()
        let readCases: [(String, String?, Int)] = [
            ("no token", nil, 401),
            ("garbage", "v1.garbage.garbage", 401),
            ("forged (another secret)", ChunkToken(chunk: chunk.id, operation: .read, expiresAt: now + 60).signed(with: .generate()), 401),
            ("expired", ChunkToken(chunk: chunk.id, operation: .read, expiresAt: now - 5).signed(with: secret), 401),
            ("another chunk's", ChunkToken(chunk: other, operation: .read, expiresAt: now + 60).signed(with: secret), 403),
            ("a write token", ChunkToken(chunk: chunk.id, operation: .write, expiresAt: now + 60,
                                         pipeline: [PipelineHop(id: dk1.id.value, address: dk1.address)]).signed(with: secret), 403),
        ]
        for (name, token, status) in readCases {
            XCTAssertEqual(try get(token), status, name)
        }
        XCTAssertEqual(try get(try cluster.token(.read, chunk.id)), 200, "a genuine read token is served")
        XCTAssertEqual(try get(try cluster.token(.replicate, chunk.id)), 200, "so is a replicate token")

        // Writes: a fresh chunk, refused every wrong way; nothing lands on any datakeeper.
        let fresh = ChunkID.random()
        let frame = Data(ChunkFrame.frame(Array("hostile bytes".utf8)))
        let hop = { (node: NodeInfo) in PipelineHop(id: node.id.value, address: node.address) }
        func put(_ token: String?, forward: String = "") throws -> Int {
            var headers = [Header.dataBytes: "13", Header.forward: forward]
            if let token { headers[Header.chunkToken] = token }
            return try HTTP.request("PUT", "http://\(dk1.address)\(Route.chunk(fresh.value))", bodyData: frame, headers: headers).status
        }
        let write = { (pipeline: [PipelineHop]) in ChunkToken(chunk: fresh, operation: .write, expiresAt: now + 60, pipeline: pipeline).signed(with: secret) }
        let writeCases: [(String, String?, String, Int)] = [
            ("no token", nil, "", 401),
            ("forged", ChunkToken(chunk: fresh, operation: .write, expiresAt: now + 60, pipeline: [hop(dk1)]).signed(with: .generate()), "", 401),
            ("expired", ChunkToken(chunk: fresh, operation: .write, expiresAt: now - 1, pipeline: [hop(dk1)]).signed(with: secret), "", 401),
            ("a read token", try cluster.token(.read, fresh), "", 403),
            ("another chunk's write token", ChunkToken(chunk: other, operation: .write, expiresAt: now + 60, pipeline: [hop(dk1)]).signed(with: secret), "", 403),
            ("a pipeline without this datakeeper", write([hop(dk2), hop(dk3)]), "", 403),
            ("a forward to a host the master did not choose", write([hop(dk1), hop(dk2)]), "\(dk2.id)=127.0.0.1:1", 403),
            ("a forward to a datakeeper the master did not choose", write([hop(dk1), hop(dk2)]), "\(dk3.id)=\(dk3.address)", 403),
            ("a forward longer than the pipeline", write([hop(dk1), hop(dk2)]), "\(dk2.id)=\(dk2.address),\(dk3.id)=\(dk3.address)", 403),
            ("a forward dropping a hop", write([hop(dk1), hop(dk2), hop(dk3)]), "\(dk2.id)=\(dk2.address)", 403),
        ]
        for (name, token, forward, status) in writeCases {
            XCTAssertEqual(try put(token, forward: forward), status, name)
        }
        for node in nodes { XCTAssertFalse(cluster.holds(fresh, on: node.id.value), "a refused write stored the chunk on \(node.id)") }
        // The genuine write goes through, down exactly the chosen pipeline.
        XCTAssertEqual(try put(write([hop(dk1), hop(dk2)]), forward: "\(dk2.id)=\(dk2.address)"), 200)
        XCTAssertTrue(cluster.holds(fresh, on: dk1.id.value) && cluster.holds(fresh, on: dk2.id.value))
        XCTAssertFalse(cluster.holds(fresh, on: dk3.id.value))
        // There is no way to delete a chunk by asking a datakeeper.
        XCTAssertNotEqual(try HTTP.request("DELETE", url, headers: [Header.chunkToken: try cluster.token(.write, chunk.id)]).status, 200)
        XCTAssertTrue(cluster.holds(chunk.id, on: dk1.id.value))
        // Every refusal is logged, with its reason.
        let log = cluster.logs(of: dk1.id.value).joined()
        XCTAssertGreaterThanOrEqual(log.components(separatedBy: "request refused").count - 1, readCases.count + writeCases.count, log)
        XCTAssertTrue(log.contains("expired"), "the reason is logged")
        XCTAssertEqual(try cluster.succeed(["get", "/data", "-"]).stdout, try cluster.contents(local))
    }

    func testClientsNeedAKeyWithTheRightsAndARevokedKeyStopsWorking() throws {
        let cluster = try TestCluster(datakeepers: 3)
        defer { cluster.shutdown() }
        let local = try cluster.makeFile("f", size: 5000)
        try cluster.succeed(["put", local, "/team/f"])
        try cluster.succeed(["put", local, "/other/f"])
        func key(_ flags: [String]) throws -> [String: String] {
            let made = try XCTUnwrap(JSONSerialization.jsonObject(with: try cluster.succeed(["key", "create", "--json"] + flags).stdout) as? [String: Any])
            return made.compactMapValues { $0 as? String }
        }
        func environment(_ key: [String: String]?, secret: String? = nil) -> [String: String] {
            // An empty config file: the only credentials are the ones given here.
            let empty = cluster.root + "/empty.json"
            try? Data("{}".utf8).write(to: URL(fileURLWithPath: empty))
            var environment = ["TYDFS_CONFIG": empty]
            if let key {
                environment["TYDFS_ACCESS_KEY_ID"] = key["accessKeyId"]
                environment["TYDFS_SECRET_ACCESS_KEY"] = secret ?? key["secretAccessKey"]
            }
            return environment
        }
        let readOnly = try key(["--read-only"])
        let team = try key(["--prefix", "/team"])
        let revoked = try key([])
        XCTAssertTrue(readOnly["accessKeyId"]?.hasPrefix("TK") == true)
        XCTAssertEqual(readOnly["secretAccessKey"]?.count, 40)
        try cluster.succeed(["key", "revoke", revoked["accessKeyId"]!])
        let listed = try cluster.succeed(["key", "list", "--json"]).stdoutText
        XCTAssertFalse(listed.contains(revoked["accessKeyId"]!), "a revoked key is gone from the list")
        XCTAssertFalse(listed.contains(readOnly["secretAccessKey"]!), "the list shows no secret")

        let attempts: [(String, [String: String], [String], String)] = [
            ("no key", environment(nil), ["put", local, "/new"], "needs credentials"),
            ("no key", environment(nil), ["get", "/team/f", "-"], "needs credentials"),
            ("a wrong secret", environment(readOnly, secret: "x"), ["ls", "/"], "signature does not match"),
            ("a revoked key", environment(revoked), ["ls", "/team"], "unknown or revoked"),
            ("a read-only key writing", environment(readOnly), ["put", local, "/new"], "read-only"),
            ("a read-only key removing", environment(readOnly), ["rm", "/team/f"], "read-only"),
            ("a read-only key renaming", environment(readOnly), ["mv", "/team/f", "/team/g"], "read-only"),
            ("a key outside its prefix reading", environment(team), ["get", "/other/f", "-"], "limited to /team"),
            ("a key outside its prefix writing", environment(team), ["put", local, "/other/g"], "limited to /team"),
            ("a key moving a file out of its prefix", environment(team), ["mv", "/team/f", "/other/g"], "limited to /team"),
            ("a read-write key managing keys", environment(team), ["key", "create"], "admin"),
            ("a read-write key draining", environment(team), ["drain", "dk1", "--no-wait"], "admin"),
        ]
        for (name, environment, arguments, message) in attempts {
            let result = try cluster.run(arguments, environment: environment)
            XCTAssertEqual(result.exitCode, 1, "\(name): \(arguments)")
            XCTAssertTrue(result.stderr.contains(message), "\(name): \(result.stderr)")
        }
        // The master logs every refusal, with the key the request claimed ("-" for none; a refusal
        // of scope also names it in the reason) and the reason.
        let refusals = cluster.logs(of: "master").joined().split(separator: "\n").filter { $0.contains("request refused") }
        XCTAssertGreaterThanOrEqual(refusals.count, attempts.count, refusals.joined(separator: "\n"))
        let logged: [(String, [String])] = [
            ("no key", ["key=-", "needs credentials"]),
            ("a wrong secret", ["key=\(readOnly["accessKeyId"]!)", "signature does not match"]),
            ("a revoked key", ["key=\(revoked["accessKeyId"]!)", "unknown or revoked"]),
            ("a read-only key writing", [readOnly["accessKeyId"]!, "is read-only"]),
            ("a key outside its prefix", [team["accessKeyId"]!, "is limited to /team"]),
            ("a read-write key managing keys", [team["accessKeyId"]!, "needs an admin key"]),
        ]
        for (name, words) in logged {
            XCTAssertTrue(refusals.contains { line in words.allSatisfy { line.contains($0) } },
                          "\(name): no refusal logged with \(words) in \(refusals.joined(separator: "\n"))")
        }
        // What the keys may do, they can.
        XCTAssertEqual(try cluster.run(["get", "/other/f", "-"], environment: environment(readOnly)).stdout, try cluster.contents(local))
        XCTAssertEqual(try cluster.run(["put", local, "/team/g"], environment: environment(team)).exitCode, 0)
        // Nothing the refused attempts tried happened.
        let tree = try ["/", "/team", "/other"].map { try cluster.succeed(["ls", $0]).stdoutText }.joined()
        for path in ["/team/f", "/team/g", "/other/f"] { XCTAssertTrue(tree.contains(path), tree) }
        for path in ["/new", "/other/g", "/team/g\n/team/g"] { XCTAssertFalse(tree.contains(path), tree) }
        XCTAssertEqual(try cluster.succeed(["get", "/team/f", "-"]).stdout, try cluster.contents(local))
        XCTAssertEqual(try cluster.nodes().nodes.map(\.state), [.alive, .alive, .alive], "no drain started")
    }

    func testADataKeeperWithoutTheClusterSecretCannotJoin() throws {
        let cluster = try TestCluster(datakeepers: 1, replication: 1)
        defer { cluster.shutdown() }
        let strangerSecret = cluster.root + "/stranger.secret"
        XCTAssertEqual(try cluster.run(["keygen", "--out", strangerSecret], master: false).exitCode, 0)
        let mode = try FileManager.default.attributesOfItem(atPath: strangerSecret)[.posixPermissions] as? Int
        XCTAssertEqual(mode, 0o600)
        XCTAssertNotEqual(try cluster.run(["keygen", "--out", strangerSecret], master: false).exitCode, 0, "keygen never replaces a secret")
        // The last --secret-file wins: the stranger's.
        try cluster.startDataKeeper("stranger", extraArguments: ["--secret-file", strangerSecret])
        Thread.sleep(forTimeInterval: 2)
        XCTAssertEqual(try cluster.aliveDataKeepers(), ["dk1"], "a datakeeper with another secret joined")
        XCTAssertTrue(cluster.logs(of: "master").joined().contains("signature does not match"))
        // Without any secret, a datakeeper does not start, and says why.
        let bare = try cluster.run(["datakeeper", "--data", cluster.root + "/bare", "--listen", "127.0.0.1:0", "--master", cluster.masterURL], master: false,
                                   environment: ["TYDFS_SECRET_FILE": ""])
        XCTAssertEqual(bare.exitCode, 1)
        XCTAssertTrue(bare.stderr.contains("--secret-file"), bare.stderr)
    }

    /// Certificates are verified: a client or a datakeeper trusting another CA (a second throwaway
    /// one) refuses the master's certificate, says so, and gets nothing done.
    func testAClientOrADataKeeperTrustingAnotherCARefusesTheMaster() throws {
        let cluster = try TestCluster(datakeepers: 1, replication: 1, tls: true)
        defer { cluster.shutdown() }
        let made = try cluster.run(["keygen", "--tls", cluster.root + "/other-tls"], master: false)
        XCTAssertEqual(made.exitCode, 0, made.stderr)
        let rightCA = cluster.root + "/tls/ca.pem", wrongCA = cluster.root + "/other-tls/ca.pem"
        XCTAssertNotEqual(try cluster.contents(wrongCA), try cluster.contents(rightCA), "keygen --tls made the same CA twice")
        func aboutTheCertificate(_ text: String) -> Bool {
            let said = text.lowercased()
            return said.contains("certificate") || said.contains("tls") || said.contains("ssl")
        }
        // A client given the other CA on the command line.
        let listed = try cluster.run(["ls", "/", "--ca-file", wrongCA])
        XCTAssertEqual(listed.exitCode, 1, listed.stderr)
        XCTAssertTrue(aboutTheCertificate(listed.stderr), listed.stderr)
        // A client whose config file names the other CA: its put fails and stores nothing.
        var settings = try XCTUnwrap(JSONSerialization.jsonObject(with: cluster.contents(cluster.adminConfigFile)) as? [String: Any])
        XCTAssertNotNil(settings["ca-file"], "the admin config names the cluster's CA")
        settings["ca-file"] = wrongCA
        let wrongConfig = cluster.root + "/wrong-ca.conf"
        try JSONSerialization.data(withJSONObject: settings).write(to: URL(fileURLWithPath: wrongConfig))
        let local = try cluster.makeFile("payload", size: 20_000)
        let put = try cluster.run(["put", local, "/wrong-ca"], environment: ["TYDFS_CONFIG": wrongConfig])
        XCTAssertEqual(put.exitCode, 1, put.stderr)
        XCTAssertTrue(aboutTheCertificate(put.stderr), put.stderr)
        XCTAssertNotEqual(try cluster.run(["stat", "/wrong-ca"]).exitCode, 0, "a put that could not verify the master stored a file")
        XCTAssertEqual(cluster.storedChunkCount(), 0, "a put that could not verify the master stored chunks")
        // With the cluster's own CA the same commands work.
        XCTAssertEqual(try cluster.run(["ls", "/", "--ca-file", rightCA]).exitCode, 0)
        try cluster.succeed(["put", local, "/right-ca"])
        XCTAssertEqual(try cluster.succeed(["get", "/right-ca", "-"]).stdout, try cluster.contents(local))

        // A datakeeper trusting the other CA (the last --ca-file wins) cannot heartbeat, so it
        // never joins, and its log says why.
        try cluster.startDataKeeper("wrong-ca", extraArguments: ["--ca-file", wrongCA])
        try cluster.waitUntil("the datakeeper trusting another CA to log a failed heartbeat", timeout: 15) {
            XCTAssertFalse(try cluster.nodes().nodes.contains { $0.id.value == "wrong-ca" }, "a datakeeper that cannot verify the master joined")
            return cluster.logs(of: "wrong-ca").joined().contains("heartbeat failed")
        }
        let failures = cluster.logs(of: "wrong-ca").joined().split(separator: "\n").filter { $0.contains("heartbeat failed") }.joined(separator: "\n")
        XCTAssertTrue(aboutTheCertificate(failures), failures)
        Thread.sleep(forTimeInterval: 1)
        XCTAssertFalse(try cluster.nodes().nodes.contains { $0.id.value == "wrong-ca" }, "a datakeeper that cannot verify the master joined")
        XCTAssertEqual(try cluster.aliveDataKeepers(), ["dk1"])
    }

    /// Auth and TLS both on: put, get, a repair after a datakeeper dies, a scrub that finds a
    /// corrupt replica, rm, and a datakeeper restart.
    func testEverythingWorksWithTLSAndAuthOn() throws {
        let cluster = try TestCluster(datakeepers: 4, tls: true)
        defer { cluster.shutdown() }
        XCTAssertTrue(cluster.masterURL.hasPrefix("https://"))
        let local = try cluster.makeFile("payload", size: 300_000)
        try cluster.succeed(["put", local, "/tls"])
        XCTAssertEqual(try cluster.succeed(["get", "/tls", "-"]).stdout, try cluster.contents(local))
        // Plain HTTP is not served.
        XCTAssertThrowsError(try HTTP.request("GET", cluster.masterURL.replacingOccurrences(of: "https://", with: "http://") + Route.nodes))
        // Repair: a holder dies; the chunks are copied back to three live replicas.
        let first = try XCTUnwrap(cluster.stat("/tls").chunks.first)
        let victim = first.replicas[0].id.value
        cluster.killDataKeeper(victim)
        try cluster.waitUntil("repaired to 3 live replicas", timeout: 30) {
            try cluster.stat("/tls").chunks.allSatisfy { $0.replicas.filter(\.alive).count == 3 }
        }
        // A restart of the dead datakeeper: it rejoins over TLS with its secret.
        try cluster.startDataKeeper(victim)
        try cluster.waitUntil("4 alive", timeout: 20) { try cluster.aliveDataKeepers().count == 4 }
        // Scrub: a corrupted replica nobody reads is found, set aside and replaced.
        let holder = try XCTUnwrap(cluster.stat("/tls").chunks.first?.replicas.first { $0.alive }).id.value
        try cluster.flipByte(of: first.id, on: holder, at: 10)
        try cluster.waitUntil("the corrupt replica set aside", timeout: 30) {
            FileManager.default.fileExists(atPath: cluster.dataDirectory(of: holder) + "/corrupt/\(first.id.value)")
        }
        try cluster.waitUntil("3 intact live replicas of every chunk", timeout: 30) {
            try cluster.stat("/tls").chunks.allSatisfy { chunk in chunk.replicas.filter { $0.alive && cluster.isIntact(chunk.id, on: $0.id.value) }.count >= 3 }
        }
        XCTAssertEqual(try cluster.succeed(["get", "/tls", "-"]).stdout, try cluster.contents(local))
        try cluster.succeed(["rm", "/tls"])
        XCTAssertNotEqual(try cluster.run(["stat", "/tls"]).exitCode, 0)
    }

    /// Limits at the boundary: an oversized header, a chunk body longer than it declares, and one
    /// host opening more connections than a server allows each peer. Each is refused and the
    /// server goes on serving.
    func testOversizedHeadersOverlongBodiesAndConnectionFloodsAreRefused() throws {
        let cluster = try TestCluster(datakeepers: 1, replication: 1)
        defer { cluster.shutdown() }
        let node = try XCTUnwrap(cluster.nodes().nodes.first)
        let admin = try cluster.adminSigner()
        // A 200 KiB header: the HTTP parser refuses it (or drops the connection); nothing breaks.
        let huge = try? HTTP.request("GET", cluster.masterURL + Route.nodes, headers: ["X-Padding": String(repeating: "a", count: 200 * 1024)], signer: admin)
        XCTAssertNotEqual(huge?.status, 200)
        // A body longer than the frame its header declares: refused, nothing stored.
        let chunk = ChunkID.random()
        let long = try HTTP.request("PUT", "http://\(node.address)\(Route.chunk(chunk.value))",
                                    bodyData: Data(ChunkFrame.frame(Array("twelve bytes".utf8)) + [1, 2, 3]),
                                    headers: [Header.dataBytes: "12",
                                              Header.chunkToken: try cluster.token(.write, chunk, pipeline: [PipelineHop(id: node.id.value, address: node.address)])])
        XCTAssertNotEqual(long.status, 200)
        XCTAssertFalse(cluster.holds(chunk, on: node.id.value))
        // Connections past the per-peer limit are closed on arrival; the ones within it stay.
        let (host, port) = (node.address.split(separator: ":")[0], Int(node.address.split(separator: ":")[1])!)
        var sockets: [Int32] = []
        defer { for socket in sockets { close(socket) } }
        for _ in 0..<(Limits.maxConnectionsPerPeer + 20) {
            let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            inet_pton(AF_INET, String(host), &address.sin_addr)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            XCTAssertEqual(connected, 0)
            sockets.append(socket)
        }
        Thread.sleep(forTimeInterval: 1)
        // A closed connection reads end-of-file at once; an open one would wait.
        var closedByServer = 0
        for socket in sockets {
            var byte: UInt8 = 0
            var poller = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
            if poll(&poller, 1, 0) > 0, recv(socket, &byte, 1, Int32(MSG_DONTWAIT)) == 0 { closedByServer += 1 }
        }
        // The datakeeper may still hold a kept-alive connection or two of this test's own requests.
        let open = sockets.count - closedByServer
        XCTAssertLessThanOrEqual(open, Limits.maxConnectionsPerPeer, "more connections than the limit stayed open")
        XCTAssertGreaterThanOrEqual(open, Limits.maxConnectionsPerPeer - 2, "connections within the limit were closed")
        for socket in sockets { close(socket) }
        sockets = []
        Thread.sleep(forTimeInterval: 0.5)
        let local = try cluster.makeFile("after", size: 1000)
        try cluster.succeed(["put", local, "/after"])
        XCTAssertEqual(try cluster.succeed(["get", "/after", "-"]).stdout, try cluster.contents(local))
    }
}
