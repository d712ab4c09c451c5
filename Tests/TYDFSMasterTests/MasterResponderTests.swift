import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
@testable import TYDFSMaster
import TYDFSCore
import TYDFSProtocol
import XCTest

/// What a master answers in each role, at Hummingbird's router depth (no socket): a standby
/// redirects to the leader, answers liveness and its role, and never serves the namespace.
final class MasterResponderTests: XCTestCase {
    private static let url = "http://10.0.0.2:9333", leaderURL = "http://10.0.0.1:9333"
    private let url = MasterResponderTests.url, leaderURL = MasterResponderTests.leaderURL

    private static func role(_ response: TestResponse) throws -> MasterRole {
        try JSONDecoder().decode(MasterRole.self, from: response.body)
    }

    func testAStandbyRedirectsEveryOtherRequestToTheLeaderWithItsPathAndQuery() async throws {
        let board = MasterRoleBoard()
        board.set(.standby(leader: leaderURL, epoch: LeaderEpoch(7)))
        try await Application(responder: MasterResponder(board: board, url: url)).test(.router) { client in
            for (method, uri) in [(HTTPRequest.Method.get, Route.list + "?path=%2Fdocs"), (.post, Route.heartbeat), (.delete, Route.files + "?path=%2Fa"), (.get, Route.readyz)] {
                try await client.execute(uri: uri, method: method) { response in
                    XCTAssertEqual(response.status, .temporaryRedirect, uri)
                    XCTAssertEqual(response.headers[.location], Self.leaderURL + uri)
                    XCTAssertEqual(response.headers[HTTPField.Name(Header.leader)!], Self.leaderURL)
                    let error = try JSONDecoder().decode(ErrorResponse.self, from: response.body)
                    XCTAssertEqual(error.error.code, "not_leader")
                }
            }
            try await client.execute(uri: Route.role, method: .get) { response in
                XCTAssertEqual(response.status, .ok)
                XCTAssertEqual(try Self.role(response), MasterRole(url: Self.url, role: "standby", epoch: LeaderEpoch(7), leader: Self.leaderURL))
            }
            for uri in [Route.healthz, Route.health] {
                try await client.execute(uri: uri, method: .get) { XCTAssertEqual($0.status, .ok, uri) }
            }
        }
    }

    func testWhileNoOneLeadsEveryRequestGets503NotLeader() async throws {
        let board = MasterRoleBoard()
        for view in [MasterRoleView.standby(leader: nil, epoch: LeaderEpoch(3)), MasterRoleView.starting(LeaderEpoch(4), nil), .standby(leader: url, epoch: LeaderEpoch(3))] {
            board.set(view)
            try await Application(responder: MasterResponder(board: board, url: url)).test(.router) { client in
                try await client.execute(uri: Route.uploads, method: .post, body: ByteBuffer(string: "{}")) { response in
                    XCTAssertEqual(response.status, .serviceUnavailable, "\(view)")
                    XCTAssertNil(response.headers[.location], "never a redirect to itself or nowhere")
                    XCTAssertEqual(try JSONDecoder().decode(ErrorResponse.self, from: response.body).error.code, "not_leader")
                }
            }
        }
        board.set(.starting(LeaderEpoch(4), nil))
        try await Application(responder: MasterResponder(board: board, url: url)).test(.router) { client in
            try await client.execute(uri: Route.role, method: .get) { response in
                XCTAssertEqual(try Self.role(response), MasterRole(url: Self.url, role: "starting", epoch: LeaderEpoch(4), leader: Self.url))
            }
        }
    }

    func testANewLeaderServesDataKeepersBeforeClients() async throws {
        let router = Router()
        router.post(RouterPath(Route.heartbeat)) { _, _ in "beat taken" }
        router.get(RouterPath(Route.list)) { _, _ in "listed" }
        let board = MasterRoleBoard()
        board.set(.starting(LeaderEpoch(5), router.buildResponder()))
        try await Application(responder: MasterResponder(board: board, url: url)).test(.router) { client in
            try await client.execute(uri: Route.heartbeat, method: .post) { response in
                XCTAssertEqual(response.status, .ok)
                XCTAssertEqual(String(buffer: response.body), "beat taken")
            }
            try await client.execute(uri: Route.list, method: .get) { response in
                XCTAssertEqual(response.status, .serviceUnavailable, "clients wait until the datakeepers checked in")
                XCTAssertEqual(try JSONDecoder().decode(ErrorResponse.self, from: response.body).error.code, "not_leader")
            }
        }
    }

    func testALeaderServesItsRoutesAndSwitchingRolesTakesEffectOnTheNextRequest() async throws {
        let router = Router()
        router.get(RouterPath(Route.list)) { _, _ in "the leader's routes" }
        let board = MasterRoleBoard()
        board.set(.leading(LeaderEpoch(9), router.buildResponder()))
        try await Application(responder: MasterResponder(board: board, url: url)).test(.router) { client in
            try await client.execute(uri: Route.list, method: .get) { response in
                XCTAssertEqual(response.status, .ok)
                XCTAssertEqual(String(buffer: response.body), "the leader's routes")
            }
            try await client.execute(uri: Route.role, method: .get) { response in
                XCTAssertEqual(try Self.role(response), MasterRole(url: Self.url, role: "leader", epoch: LeaderEpoch(9), leader: Self.url))
            }
            // Stepping down: the same listener now redirects.
            board.set(.standby(leader: Self.leaderURL, epoch: LeaderEpoch(10)))
            try await client.execute(uri: Route.list, method: .get) { XCTAssertEqual($0.status, .temporaryRedirect) }
        }
    }
}
