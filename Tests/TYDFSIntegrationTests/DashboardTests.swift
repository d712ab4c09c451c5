import Foundation
import TYDFSTestSupport
import XCTest

/// The master's dashboard in a real browser: headless Chromium loads the page from a running
/// cluster, the test reads the DOM the page's script rendered, and saves a screenshot.
final class DashboardTests: XCTestCase {
    /// Debian's `chromium` (`.ci/run` installs it).
    private static let browser = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }

    /// Runs headless Chromium on `url` with `arguments`, giving the page's script `budgetMillis`
    /// of virtual time (its fetches and timers) before the result is taken; returns stdout.
    private func chromium(_ url: String, _ arguments: [String], budgetMillis: Int = 3000, scratch: String) throws -> String {
        let browser = try XCTUnwrap(Self.browser, "headless Chromium is needed: apt-get install chromium")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: browser)
        // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        process.arguments = [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
            "--user-data-dir=\(scratch)/chromium-profile", "--virtual-time-budget=\(budgetMillis)",
        ] + arguments + [url]
        let output = scratch + "/chromium-\(UUID().uuidString).out"
        FileManager.default.createFile(atPath: output, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: output) }
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(60)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning { TestCluster.end(process, signal: SIGKILL) }
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "chromium failed on \(url)")
        return try String(contentsOfFile: output, encoding: .utf8)
    }

    private func dom(_ url: String, scratch: String) throws -> String {
        try chromium(url, ["--dump-dom"], scratch: scratch)
    }

    /// The opening tags matching `prefix` (e.g. `<tr class="datakeeper"`) in `html`.
    private func tags(_ prefix: String, in html: String) -> [String] {
        html.components(separatedBy: prefix).dropFirst().map { prefix + $0.prefix { $0 != ">" } + ">" }
    }

    private func text(ofID id: String, in html: String) -> String? {
        guard let start = html.range(of: "id=\"\(id)\"") else { return nil }
        let afterTag = html[start.upperBound...].drop { $0 != ">" }.dropFirst()
        return String(afterTag.prefix { $0 != "<" })
    }

    func testDashboardShowsTheClusterAndADeathInABrowser() throws {
        let cluster = try TestCluster(datakeepers: 3, heartbeatTimeoutSeconds: 2)
        defer { cluster.shutdown() }
        try cluster.succeed(["put", try cluster.makeFile("readme", size: 150_000), "/docs/readme.txt"])
        try cluster.succeed(["put", try cluster.makeFile("<i>odd", size: 10), "/docs/<i>odd"])
        // The key rides in the fragment (never sent to the server); the page signs every request with it.
        let admin = try cluster.adminSigner()
        let settings = try JSONSerialization.jsonObject(with: try Data(contentsOf: URL(fileURLWithPath: cluster.adminConfigFile))) as? [String: String]
        let page = cluster.masterURL + "/#key=\(admin.keyID):\(try XCTUnwrap(settings?["secret-access-key"]))&/docs"
        // Without a key the page asks for one and shows nothing.
        let locked = try dom(cluster.masterURL + "/#/docs", scratch: cluster.root)
        XCTAssertFalse(locked.contains("data-loaded=\"true\""), "the cluster was shown without a key")
        XCTAssertFalse(locked.contains("<form id=\"login\" hidden"), "no sign-in form shown")
        XCTAssertFalse(locked.contains("readme.txt"))

        let first = try dom(page, scratch: cluster.root)
        XCTAssertTrue(first.contains("data-loaded=\"true\""), "the page never rendered the cluster: \(first.prefix(2000))")
        let rows = tags("<tr class=\"datakeeper\"", in: first)
        XCTAssertEqual(rows.count, 3, "\(rows)")
        XCTAssertTrue(rows.allSatisfy { $0.contains("data-state=\"alive\"") }, "\(rows)")
        XCTAssertEqual(text(ofID: "files", in: first), "2")
        XCTAssertEqual(text(ofID: "live-count", in: first), "3")
        XCTAssertEqual(text(ofID: "safe-mode", in: first), "serving")
        // The file browser opened the folder named in the URL; a name with markup stays text.
        XCTAssertTrue(first.contains("data-path=\"/docs/readme.txt\" data-kind=\"file\""), "no readme.txt row")
        XCTAssertFalse(first.contains("<i>odd"), "a file name was rendered as HTML")
        XCTAssertTrue(first.contains("&lt;i&gt;odd"))
        XCTAssertEqual(tags("<li class=\"event\" data-kind=\"datakeeper-joined\"", in: first).count, 3)

        // A killed datakeeper turns dead within the heartbeat timeout (and a poll or two). The
        // table shows a datakeeper dead as soon as its heartbeats are overdue; the feed's death
        // is recorded at the master's next periodic look, so a page loaded in between shows the
        // one without the other: wait for both.
        let killed = Date()
        cluster.killDataKeeper("dk3")
        var latest = ""
        try cluster.waitUntil("dk3 shown dead, and its death in the feed", timeout: cluster.heartbeatTimeoutSeconds + 20, interval: 0.5) {
            latest = try self.dom(page, scratch: cluster.root)
            return self.tags("<tr class=\"datakeeper\" data-id=\"dk3\"", in: latest).first?.contains("data-state=\"dead\"") == true
                && !self.tags("<li class=\"event\" data-kind=\"datakeeper-dead\"", in: latest).isEmpty
        }
        XCTAssertLessThan(Date().timeIntervalSince(killed), cluster.heartbeatTimeoutSeconds + 20)
        XCTAssertEqual(text(ofID: "dead-count", in: latest), "1")
        XCTAssertEqual(tags("<li class=\"event\" data-kind=\"datakeeper-dead\"", in: latest).count, 1, "no death in the event feed")

        // The screenshot the README shows is made the same way.
        let screenshot = ProcessInfo.processInfo.environment["TYDFS_DASHBOARD_SCREENSHOT"] ?? cluster.root + "/dashboard.png"
        _ = try chromium(page, ["--window-size=1280,900", "--screenshot=\(screenshot)"], scratch: cluster.root)
        let png = try Data(contentsOf: URL(fileURLWithPath: screenshot))
        XCTAssertGreaterThan(png.count, 10_000)
        XCTAssertEqual(Array(png.prefix(4)), [0x89, 0x50, 0x4E, 0x47], "not a PNG")
    }
}
