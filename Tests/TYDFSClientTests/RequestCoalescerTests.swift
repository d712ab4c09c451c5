import NIOConcurrencyHelpers
import TYDFSCore
import TYDFSProtocol
import XCTest

@testable import TYDFSClient

/// The client's request coalescing (stats here), without processes: a fake master whose answers
/// the test releases, so which stats travel together is certain.
final class RequestCoalescerTests: XCTestCase {
    private typealias StatCoalescer = RequestCoalescer<LookupRequest.Item, FileInfo>

    private func makeCoalescer() -> StatCoalescer {
        StatCoalescer(inFlightLimit: Limits.lookupsInFlight, itemsLimit: Limits.maxLookupsPerRequest)
    }

    /// The client's send: one lookup request, its answers as results.
    private func makeSend(to master: HeldMaster) -> StatCoalescer.Send {
        { items in try await master.send(LookupRequest(items: items)).answers.map { answer in Result { try answer.get() } } }
    }

    /// A master that holds every lookup request until the test releases it, and answers each
    /// path ending in "missing" with not found.
    private final class HeldMaster: Sendable {
        private let state = NIOLockedValueBox((requests: [[String]](), held: [CheckedContinuation<Void, Never>]()))

        var requests: [[String]] { state.withLockedValue { $0.requests } }
        var heldCount: Int { state.withLockedValue { $0.held.count } }

        func send(_ request: LookupRequest) async throws -> LookupResponse {
            await withCheckedContinuation { held in
                state.withLockedValue {
                    $0.requests.append(request.items.map(\.path.value))
                    $0.held.append(held)
                }
            }
            if request.items.contains(where: { $0.path.value == "/fail" }) { throw TYDFSError(.unreachable, "the master went away") }
            return LookupResponse(answers: request.items.map { item in
                item.path.value.hasSuffix("missing")
                    ? .init(.failure(TYDFSError(.notFound, "\(item.path): no such file")))
                    : .init(.success(FileInfo(
                        path: item.path, sizeBytes: item.inspect == true ? 1 : 0, mtimeMillis: 0, checksum: "crc32c:00000000",
                        chunkSizeBytes: 4096, replication: 3, underReplicated: false, chunks: [])))
            })
        }

        func releaseAll() {
            for held in state.withLockedValue({ state in defer { state.held = [] }; return state.held }) { held.resume() }
        }
    }

    private func item(_ path: String, inspect: Bool = false) throws -> LookupRequest.Item {
        LookupRequest.Item(path: try RemotePath(path), inspect: inspect)
    }

    private func waitUntil(_ condition: @Sendable () async -> Bool) async throws {
        for _ in 0..<2000 {
            if await condition() { return }
            try await Task.sleep(for: .milliseconds(1))
        }
        XCTFail("timed out")
    }

    /// Stats asked while `Limits.lookupsInFlight` requests are out wait, then all go in one
    /// request; each caller gets its own answer, a file or its error.
    func testStatsAskedWhileRequestsAreOutGoTogetherAndEachGetsItsOwnAnswer() async throws {
        let coalescer = makeCoalescer()
        let master = HeldMaster()
        let send = makeSend(to: master)
        let firstPaths = (0..<Limits.lookupsInFlight).map { "/first\($0)" }
        let waitingPaths = (0..<10).map { $0 % 3 == 0 ? "/w\($0)-missing" : "/w\($0)" }
        try await withThrowingTaskGroup(of: (String, Result<Int64, TYDFSError>).self) { group in
            func ask(_ path: String, inspect: Bool = false) throws {
                let item = try item(path, inspect: inspect)
                group.addTask {
                    do { return (path, .success(try await coalescer.ask(item, send: send).sizeBytes)) } catch let error as TYDFSError {
                        return (path, .failure(error))
                    }
                }
            }
            for path in firstPaths { try ask(path) }
            try await waitUntil { master.heldCount == Limits.lookupsInFlight }
            XCTAssertEqual(Set(master.requests), Set(firstPaths.map { [$0] }), "a lone stat goes out at once, by itself")
            for (index, path) in waitingPaths.enumerated() { try ask(path, inspect: index == 1) }
            try await waitUntil { await coalescer.waitingCount == waitingPaths.count }
            XCTAssertEqual(master.requests.count, Limits.lookupsInFlight, "nothing more is sent while requests are out")
            master.releaseAll()
            try await waitUntil { master.heldCount == 1 }
            XCTAssertEqual(master.requests.count, Limits.lookupsInFlight + 1)
            XCTAssertEqual(Set(master.requests.last!), Set(waitingPaths), "everything that waited goes in one request")
            master.releaseAll()
            var answers = [String: Result<Int64, TYDFSError>]()
            for try await (path, answer) in group { answers[path] = answer }
            XCTAssertEqual(answers.count, firstPaths.count + waitingPaths.count)
            for path in firstPaths { XCTAssertEqual(answers[path], .success(0)) }
            for (index, path) in waitingPaths.enumerated() {
                if path.hasSuffix("missing") {
                    XCTAssertEqual(answers[path], .failure(TYDFSError(.notFound, "\(path): no such file")))
                } else {
                    XCTAssertEqual(answers[path], .success(index == 1 ? 1 : 0), "\(path): its own answer, inspecting or not")
                }
            }
        }
        let waiting = await coalescer.waitingCount
        XCTAssertEqual(waiting, 0)
    }

    /// A request that fails fails every stat it carried, and only those: the next ones go out.
    func testAFailedRequestFailsOnlyTheStatsItCarried() async throws {
        let coalescer = makeCoalescer()
        let master = HeldMaster()
        let send = makeSend(to: master)
        let failing = try item("/fail")
        let failed = Task { try await coalescer.ask(failing, send: send) }
        try await waitUntil { master.heldCount == 1 }
        master.releaseAll()
        do {
            _ = try await failed.value
            XCTFail("the stat of a failed request succeeded")
        } catch let error as TYDFSError {
            XCTAssertEqual(error.code, .unreachable)
        }
        let next = try item("/after")
        let after = Task { try await coalescer.ask(next, send: send) }
        try await waitUntil { master.heldCount == 1 }
        master.releaseAll()
        let info = try await after.value
        XCTAssertEqual(info.path.value, "/after")
    }

    /// More stats than one request may carry go in several, none over the limit.
    func testNoRequestCarriesMoreThanTheLimit() async throws {
        let coalescer = makeCoalescer()
        let master = HeldMaster()
        let send = makeSend(to: master)
        let count = Limits.lookupsInFlight + Limits.maxLookupsPerRequest + 5
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<count {
                let item = try item("/f\(index)")
                group.addTask { _ = try await coalescer.ask(item, send: send) }
            }
            // The first requests are out, and everything else waits: more than one request may carry.
            try await waitUntil { master.heldCount == Limits.lookupsInFlight }
            try await waitUntil { await coalescer.waitingCount == count - Limits.lookupsInFlight }
            while master.requests.map(\.count).reduce(0, +) < count {
                master.releaseAll()
                try await Task.sleep(for: .milliseconds(1))
            }
            master.releaseAll()
            try await group.waitForAll()
        }
        XCTAssertEqual(master.requests.map(\.count).reduce(0, +), count)
        XCTAssertLessThanOrEqual(master.requests.map(\.count).max() ?? 0, Limits.maxLookupsPerRequest)
        XCTAssertEqual(Set(master.requests.joined()).count, count, "every stat sent once")
    }

    /// A cancelled caller is answered `CancellationError` at once, whether its stat waits or a
    /// request out already carries it; a cancelled waiting stat never travels, and the other
    /// callers get their answers.
    func testACancelledCallerIsAnsweredAtOnceAndTheOthersAreNot() async throws {
        let coalescer = makeCoalescer()
        let master = HeldMaster()
        let send = makeSend(to: master)
        let (carriedItem, otherItem, waitingItem, staysItem) = (try item("/carried"), try item("/other"), try item("/waiting"), try item("/stays"))
        // Whether each cancelled caller was answered, and with CancellationError.
        let cancelledAnswers = NIOLockedValueBox([String: Bool]())
        @Sendable func askCancellable(_ name: String, _ item: LookupRequest.Item) -> Task<Void, Never> {
            Task {
                do {
                    _ = try await coalescer.ask(item, send: send)
                    cancelledAnswers.withLockedValue { $0[name] = false }
                } catch {
                    cancelledAnswers.withLockedValue { $0[name] = error is CancellationError }
                }
            }
        }
        let carried = askCancellable("carried", carriedItem)
        let other = Task { try await coalescer.ask(otherItem, send: send) }
        try await waitUntil { master.heldCount == 2 }
        let waiting = askCancellable("waiting", waitingItem)
        let stays = Task { try await coalescer.ask(staysItem, send: send) }
        try await waitUntil { await coalescer.waitingCount == 2 }
        waiting.cancel()
        carried.cancel()
        try await waitUntil { cancelledAnswers.withLockedValue { $0.count } == 2 }
        XCTAssertEqual(cancelledAnswers.withLockedValue { $0 }, ["waiting": true, "carried": true], "both answered CancellationError")
        let left = await coalescer.waitingCount
        XCTAssertEqual(left, 1, "the cancelled waiting stat left the queue")
        XCTAssertEqual(master.heldCount, 2, "answered while the master still held every request")
        master.releaseAll()
        try await waitUntil { master.heldCount == 1 }
        XCTAssertEqual(master.requests.last, ["/stays"], "a cancelled waiting stat never travels")
        master.releaseAll()
        let otherInfo = try await other.value
        let staysInfo = try await stays.value
        XCTAssertEqual([otherInfo.path.value, staysInfo.path.value], ["/other", "/stays"])
    }
    /// A small read that several replicas could serve joins the batch forming at a quick one,
    /// and the caller's order stands when no batch is forming or only at a slow replica.
    func testAnItemJoinsTheBusiestQuickDatakeeper() async throws {
        let batches = ChunkBatches<Int, Int>()
        let replicas = ["a", "b", "c"]
        let allQuick: (String) -> Bool = { _ in true }
        XCTAssertEqual(batches.busiestFirst(replicas, address: { $0 }, quick: allQuick), replicas, "nothing under way: the caller's order")
        let held = NIOLockedValueBox([CheckedContinuation<Void, Never>]())
        let send: RequestCoalescer<Int, Int>.Send = { items in
            await withCheckedContinuation { continuation in held.withLockedValue { $0.append(continuation) } }
            return items.map { .success($0 * 10) }
        }
        func ask(_ item: Int, at address: String) -> Task<Int, Error> {
            Task { try await batches.ask(item, of: batches.coalescer(for: address, at: address)!, at: address, send: send) }
        }
        // Two reads under way at c (one carried, one waiting for the next batch), one at b.
        let reads = [ask(1, at: "c"), ask(2, at: "c"), ask(3, at: "b")]
        try await waitUntil { held.withLockedValue { $0.count } == 2 }
        try await waitUntil { await batches.coalescer(for: "c", at: "c")!.waitingCount == 1 }
        XCTAssertEqual(batches.busiestFirst(replicas, address: { $0 }, quick: allQuick), ["c", "a", "b"])
        XCTAssertEqual(batches.busiestFirst(replicas, address: { $0 }, quick: { $0 != "c" }), ["b", "a", "c"], "a slow replica attracts nothing")
        XCTAssertEqual(batches.busiestFirst(replicas, address: { $0 }, quick: { $0 == "a" }), replicas, "none quick is busy: the caller's order")
        // Every request answered: nothing under way any more.
        let collected = Task { () -> [Int] in
            var answers: [Int] = []
            for read in reads { answers.append(try await read.value) }
            return answers
        }
        try await waitUntil {
            for continuation in held.withLockedValue({ list in defer { list = [] }; return list }) { continuation.resume() }
            return batches.busiestFirst(replicas, address: { $0 }, quick: { _ in true }) == replicas
        }
        let answers = try await collected.value
        XCTAssertEqual(answers, [10, 20, 30])
        XCTAssertEqual(batches.busiestFirst(replicas, address: { $0 }, quick: allQuick), replicas, "all answered: the caller's order again")
    }
}
