import Foundation
import TYDFSProtocol
import TYDFSTestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// `/healthz` (the process serves) and `/readyz` (ready for work) on the master and on every
/// datakeeper, through safe mode and a master restart.
final class HealthTests: XCTestCase {
    private func status(_ url: String) -> Int { (try? HTTP.request("GET", url).status) ?? 0 }

    func testReadinessFollowsSafeModeAndRegistration() throws {
        // A long heartbeat timeout: a restarted master stays in safe mode until the holders report.
        let cluster = try TestCluster(datakeepers: 3, heartbeatTimeoutSeconds: 10)
        defer {
            for id in ["dk1", "dk2", "dk3"] { cluster.resumeDataKeeper(id) }
            cluster.shutdown()
        }
        try cluster.succeed(["put", try cluster.makeFile("f", size: 1000), "/f"])
        let datakeepers = try cluster.nodes().nodes.map { "http://\($0.address)" }
        XCTAssertEqual(status(cluster.masterURL + Route.healthz), 200)
        try cluster.waitUntil("master ready", timeout: 10) { self.status(cluster.masterURL + Route.readyz) == 200 }
        for url in datakeepers {
            XCTAssertEqual(status(url + Route.healthz), 200)
            try cluster.waitUntil("\(url) ready", timeout: 5) { self.status(url + Route.readyz) == 200 }
        }

        // Master gone: datakeepers stay alive but are no longer ready.
        cluster.killMaster(signal: SIGKILL)
        for url in datakeepers {
            try cluster.waitUntil("\(url) not ready", timeout: 5) { self.status(url + Route.readyz) == 503 }
            XCTAssertEqual(status(url + Route.healthz), 200)
        }

        // A master restarted while every holder is hung is alive but in safe mode: not ready.
        for id in ["dk1", "dk2", "dk3"] { cluster.pauseDataKeeper(id) }
        try cluster.startMaster()
        XCTAssertEqual(status(cluster.masterURL + Route.healthz), 200)
        let waiting = try HTTP.request("GET", cluster.masterURL + Route.readyz)
        XCTAssertEqual(waiting.status, 503)
        XCTAssertTrue(String(decoding: waiting.body, as: UTF8.self).contains("safe mode"))
        // The holders come back and report: the master leaves safe mode, the datakeepers re-register.
        for id in ["dk1", "dk2", "dk3"] { cluster.resumeDataKeeper(id) }
        try cluster.waitUntil("master ready after the reports", timeout: 10) { self.status(cluster.masterURL + Route.readyz) == 200 }
        for url in datakeepers {
            try cluster.waitUntil("\(url) ready again", timeout: 5) { self.status(url + Route.readyz) == 200 }
        }
    }
}
