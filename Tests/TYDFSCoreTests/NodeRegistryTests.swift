import TYDFSCore
import XCTest

final class NodeRegistryTests: XCTestCase {
    private func node(_ id: String, inFlight: Int = 0, capacity: Int64 = 1000, used: Int64 = 0) -> DataKeeperState {
        DataKeeperState(
            id: try! DataKeeperID(id), address: "127.0.0.1:\(1000 + id.count)", capacityBytes: capacity, usedBytes: used,
            chunkCount: 0, reportedInFlight: inFlight, chunksServed: 0, lastHeartbeatSeconds: 0)
    }

    private func ids(_ states: [DataKeeperState]) -> [String] { states.map(\.id.value) }

    func testADataKeeperIsAliveUntilItsHeartbeatIsOlderThanTheTimeout() {
        var registry = NodeRegistry(heartbeatTimeoutSeconds: 5)
        XCTAssertTrue(registry.heartbeat(node("a"), now: 100), "a first heartbeat brings a datakeeper to life")
        XCTAssertFalse(registry.heartbeat(node("a"), now: 101), "a second one does not")
        XCTAssertTrue(registry.isAlive(try! DataKeeperID("a"), now: 105.9))
        XCTAssertFalse(registry.isAlive(try! DataKeeperID("a"), now: 106))
        XCTAssertEqual(registry.alive(now: 106).count, 0)
        XCTAssertEqual(registry.nodes.count, 1, "dead datakeepers stay listed")
        XCTAssertTrue(registry.heartbeat(node("a"), now: 200), "a heartbeat after death is a return")
        XCTAssertFalse(registry.isAlive(try! DataKeeperID("unknown"), now: 200))
    }

    func testTargetsAreTheLeastBusyThenTheEmptiestLiveDataKeepers() {
        var registry = NodeRegistry(heartbeatTimeoutSeconds: 5)
        registry.heartbeat(node("a", inFlight: 2), now: 0)
        registry.heartbeat(node("b", inFlight: 0, used: 500), now: 0)
        registry.heartbeat(node("c", inFlight: 0, used: 100), now: 0)
        registry.heartbeat(node("d", inFlight: 1), now: 0)
        XCTAssertEqual(ids(registry.chooseTargets(count: 3, chunkBytes: 10, excluding: [], now: 1)), ["c", "b", "d"])
        XCTAssertEqual(ids(registry.chooseTargets(count: 10, chunkBytes: 10, excluding: [], now: 1)), ["c", "b", "d", "a"])
    }

    func testTargetsSkipDeadExcludedAndFullDataKeepersAndAreDistinct() {
        var registry = NodeRegistry(heartbeatTimeoutSeconds: 5)
        registry.heartbeat(node("old"), now: 0)
        registry.heartbeat(node("a"), now: 10)
        registry.heartbeat(node("full", capacity: 1000, used: 995), now: 10)
        registry.heartbeat(node("b"), now: 10)
        registry.heartbeat(node("c"), now: 10)
        let chosen = registry.chooseTargets(count: 3, chunkBytes: 10, excluding: [try! DataKeeperID("b")], now: 11)
        XCTAssertEqual(ids(chosen), ["a", "c"])
        XCTAssertEqual(Set(ids(chosen)).count, chosen.count)
        XCTAssertEqual(registry.chooseTargets(count: 3, chunkBytes: 10, excluding: [], now: 100), [])
    }

    func testAssignedWorkCountsUntilTheNextHeartbeatSoParallelUploadsSpread() {
        var registry = NodeRegistry(heartbeatTimeoutSeconds: 5)
        for id in ["a", "b", "c", "d", "e", "f"] { registry.heartbeat(node(id), now: 0) }
        let first = registry.chooseTargets(count: 3, chunkBytes: 10, excluding: [], now: 1)
        first.forEach { registry.assign($0.id) }
        let second = registry.chooseTargets(count: 3, chunkBytes: 10, excluding: [], now: 1)
        XCTAssertTrue(Set(ids(first)).isDisjoint(with: ids(second)), "\(ids(first)) then \(ids(second))")
        registry.heartbeat(node("a"), now: 2)
        XCTAssertEqual(registry.nodes[try! DataKeeperID("a")]?.load, 0, "a heartbeat replaces the estimate with the report")
    }

    func testReadOrderRotatesAmongEquallyBusyReplicasAndPutsTheIdleFirst() {
        var registry = NodeRegistry(heartbeatTimeoutSeconds: 5)
        for id in ["a", "b", "c"] { registry.heartbeat(node(id), now: 0) }
        let replicas = ["a", "b", "c"].map { try! DataKeeperID($0) }
        let firsts = (0..<6).map { registry.readOrder(of: replicas, spread: $0, now: 1).first!.id.value }
        XCTAssertEqual(firsts, ["a", "b", "c", "a", "b", "c"])
        registry.heartbeat(node("a", inFlight: 3), now: 1)
        XCTAssertEqual(ids(registry.readOrder(of: replicas, spread: 0, now: 1)), ["b", "c", "a"])
        registry.heartbeat(node("b"), now: -10)
        XCTAssertFalse(ids(registry.readOrder(of: replicas, spread: 0, now: 1)).contains("b"), "dead replicas are not offered")
        XCTAssertEqual(registry.readOrder(of: [try! DataKeeperID("zzz")], spread: 0, now: 1).count, 0)
    }

    func testExcludingLeavesOthersUntouched() {
        var registry = NodeRegistry(heartbeatTimeoutSeconds: 5)
        for id in ["a", "b"] { registry.heartbeat(node(id), now: 0) }
        let view = registry.excluding([try! DataKeeperID("a")])
        XCTAssertEqual(ids(view.alive(now: 1)), ["b"])
        XCTAssertEqual(registry.alive(now: 1).count, 2)
    }
}
