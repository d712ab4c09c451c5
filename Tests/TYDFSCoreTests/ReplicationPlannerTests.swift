import TYDFSCore
import XCTest

final class ReplicationPlannerTests: XCTestCase {
    private func id(_ text: String) -> DataKeeperID { try! DataKeeperID(text) }

    private func registry(alive: [String], dead: [String] = [], free: [String: Int64] = [:], used: [String: Int64] = [:]) -> NodeRegistry {
        var registry = NodeRegistry(heartbeatTimeoutSeconds: 5)
        for name in alive + dead {
            let capacity: Int64 = 1_000_000
            registry.heartbeat(DataKeeperState(
                id: id(name), address: "\(name):1", capacityBytes: capacity,
                usedBytes: free[name].map { capacity - $0 } ?? used[name] ?? 0, chunkCount: 0, reportedInFlight: 0,
                chunksServed: 0, lastHeartbeatSeconds: 0), now: dead.contains(name) ? -100 : 0)
        }
        return registry
    }

    private func chunk(_ seed: UInt8, on replicas: [String], factor: Int = 3, bytes: Int64 = 100) -> ChunkReplicaState {
        ChunkReplicaState(
            id: try! ChunkID(String(repeating: String(format: "%02x", seed), count: 16)), frameBytes: bytes, crc32c: 1,
            replicas: replicas.map(id), replication: factor)
    }

    private func plan(_ chunks: [ChunkReplicaState], _ registry: NodeRegistry, inFlight: [ChunkID: Set<DataKeeperID>] = [:],
                      busy: [DataKeeperID: Int] = [:], limit: Int = 10, leaving: Set<String> = []) -> ReplicationPlan {
        ReplicationPlanner.plan(chunks: chunks, registry: registry, now: 1, inFlight: inFlight, busyCopies: busy, maxCopiesPerDataKeeper: limit,
                                leaving: Set(leaving.map(id)))
    }

    func testADrainingReplicaDoesNotCountAndIsASourceOnlyAsALastResort() {
        // a drains: its chunk is short by one, copied to d (never to a), from b or c first.
        let shared = plan([chunk(1, on: ["a", "b", "c"])], registry(alive: ["a", "b", "c", "d"]), leaving: ["a"])
        XCTAssertEqual(shared.copies.map(\.destination.value), ["d"])
        XCTAssertEqual(Set(shared.copies[0].sources.prefix(2).map(\.value)), ["b", "c"])
        XCTAssertEqual(shared.copies[0].sources.last?.value, "a", "the draining replica is the last source")
        // A chunk held only by a draining datakeeper is not missing: it is copied from there.
        let alone = plan([chunk(2, on: ["a"], factor: 2)], registry(alive: ["a", "b", "c"]), leaving: ["a"])
        XCTAssertTrue(alone.missing.isEmpty)
        XCTAssertEqual(alone.copies.count, 2)
        XCTAssertTrue(alone.copies.allSatisfy { $0.sources == [id("a")] && $0.destination != id("a") })
        // A dead draining datakeeper is no source: with no other replica, the chunk is missing.
        let dead = plan([chunk(3, on: ["a"], factor: 2)], registry(alive: ["b", "c"], dead: ["a"]), leaving: ["a"])
        XCTAssertEqual(dead.missing.count, 1)
    }

    func testExtraReplicasAreTrimmedAmongServingDataKeepersOnly() {
        // At its factor without the retired a: nothing to do, and a's replica is never trimmed
        // in place of a serving one.
        let settled = plan([chunk(1, on: ["a", "b", "c", "d"])], registry(alive: ["a", "b", "c", "d"]), leaving: ["a"])
        XCTAssertEqual(settled, ReplicationPlan())
        let extra = plan([chunk(1, on: ["a", "b", "c", "d", "e"])], registry(alive: ["a", "b", "c", "d", "e"]), leaving: ["a"])
        XCTAssertEqual(extra.trims.count, 1)
        XCTAssertNotEqual(extra.trims.first?.datakeeper.value, "a")
    }

    func testAHealthyChunkNeedsNothing() {
        let result = plan([chunk(1, on: ["a", "b", "c"])], registry(alive: ["a", "b", "c", "d"]))
        XCTAssertEqual(result, ReplicationPlan())
    }

    func testAChunkOnADeadDataKeeperIsCopiedFromALiveReplicaToADataKeeperWithoutIt() {
        let result = plan([chunk(1, on: ["a", "b", "c"])], registry(alive: ["a", "b", "d", "e"], dead: ["c"]))
        XCTAssertEqual(result.copies.count, 1)
        let copy = result.copies[0]
        XCTAssertTrue(["d", "e"].contains(copy.destination.value))
        XCTAssertEqual(Set(copy.sources.map(\.value)), ["a", "b"], "only live replicas are sources")
        XCTAssertTrue(result.trims.isEmpty)
    }

    func testADeadDataKeeperThatHoldsTheChunkIsNeverTheDestination() {
        // c is dead but holds a replica: if it came back, copying to it would be pointless.
        let result = plan([chunk(1, on: ["a", "c"])], registry(alive: ["a", "b"], dead: ["c"]))
        XCTAssertEqual(result.copies.map(\.destination.value), ["b"])
    }

    func testChunksWithTheFewestLiveReplicasGoFirstWhenCopiesAreLimited() {
        let chunks = [chunk(1, on: ["a", "b"]), chunk(2, on: ["b"]), chunk(3, on: ["a", "b"])]
        let result = plan(chunks, registry(alive: ["a", "b", "c", "d"]), limit: 1)
        // With one copy per datakeeper, b (the only source of chunk 2) is used for chunk 2 first,
        // and a, its destination, is then busy too: everything else waits for the next round.
        XCTAssertEqual(result.copies.map(\.chunk), [chunks[1].id])
        XCTAssertEqual(result.copies.first?.sources.map(\.value), ["b"])
        XCTAssertEqual(Set(result.deferred), Set(chunks.map(\.id)))
    }

    func testNoDataKeeperExceedsTheCopyLimitCountingCopiesInFlight() {
        let chunks = (1...6).map { chunk(UInt8($0), on: ["a"]) }
        let result = plan(chunks, registry(alive: ["a", "b", "c", "d"]), busy: [id("a"): 1], limit: 3)
        var roles: [String: Int] = ["a": 1]
        for copy in result.copies {
            roles[copy.sources[0].value, default: 0] += 1
            roles[copy.destination.value, default: 0] += 1
        }
        XCTAssertTrue(roles.values.allSatisfy { $0 <= 3 }, "\(roles)")
        XCTAssertEqual(result.copies.count, 2, "a can serve only two more")
    }

    func testCopiesInFlightCountTowardsTheFactor() {
        let c = chunk(1, on: ["a", "b"])
        let result = plan([c], registry(alive: ["a", "b", "c", "d"]), inFlight: [c.id: [id("c")]])
        XCTAssertTrue(result.copies.isEmpty)
        XCTAssertTrue(result.trims.isEmpty)
    }

    func testAChunkWithNoLiveReplicaIsMissingAndNotRepaired() {
        let c = chunk(1, on: ["a", "b"])
        let result = plan([c], registry(alive: ["c", "d", "e"], dead: ["a", "b"]))
        XCTAssertEqual(result.missing, [c.id])
        XCTAssertTrue(result.copies.isEmpty)
    }

    func testDestinationsNeedRoomForTheChunk() {
        let c = chunk(1, on: ["a"], factor: 2, bytes: 500)
        let result = plan([c], registry(alive: ["a", "small", "big"], free: ["small": 100, "big": 10_000]))
        XCTAssertEqual(result.copies.map(\.destination.value), ["big"])
        let none = plan([c], registry(alive: ["a", "small"], free: ["small": 100]))
        XCTAssertEqual(none.deferred, [c.id])
    }

    func testExtraReplicasAreTrimmedFromTheFullestDataKeepersNeverBelowTheFactor() {
        let c = chunk(1, on: ["a", "b", "c", "d", "e"])
        let result = plan([c], registry(alive: ["a", "b", "c", "d", "e"], used: ["a": 10, "b": 900, "c": 50, "d": 800, "e": 5]))
        XCTAssertEqual(Set(result.trims.map(\.datakeeper.value)), ["b", "d"])
        // Dead replicas do not count: with two of five dead, three live remain and nothing is trimmed.
        let withDead = plan([c], registry(alive: ["a", "b", "c"], dead: ["d", "e"]))
        XCTAssertTrue(withDead.trims.isEmpty)
        XCTAssertTrue(withDead.copies.isEmpty)
    }

    func testNothingIsTrimmedWhileACopyOfTheChunkIsInFlight() {
        let c = chunk(1, on: ["a", "b", "c", "d"])
        let result = plan([c], registry(alive: ["a", "b", "c", "d", "e"]), inFlight: [c.id: [id("e")]])
        XCTAssertTrue(result.trims.isEmpty)
    }

    func testRandomMapsNeverLoseTheLastReplicaAndNeverCopyFromOrToTheWrongPlace() {
        var generator = SystemRandomNumberGenerator()
        let names = ["a", "b", "c", "d", "e", "f"]
        for _ in 0..<500 {
            let alive = names.filter { _ in Bool.random(using: &generator) }
            let dead = names.filter { !alive.contains($0) }
            let chunks = (0..<8).map { seed in
                chunk(UInt8(seed), on: names.filter { _ in Int.random(in: 0..<3, using: &generator) == 0 },
                      factor: Int.random(in: 1...4, using: &generator))
            }
            let result = plan(chunks, registry(alive: alive, dead: dead), limit: Int.random(in: 1...4, using: &generator))
            for c in chunks {
                let live = c.replicas.filter { alive.contains($0.value) }
                let trimmed = result.trims.filter { $0.chunk == c.id }
                XCTAssertLessThanOrEqual(trimmed.count, max(0, live.count - c.replication))
                XCTAssertTrue(trimmed.allSatisfy { live.contains($0.datakeeper) })
                for copy in result.copies where copy.chunk == c.id {
                    XCTAssertTrue(alive.contains(copy.destination.value))
                    XCTAssertFalse(c.replicas.contains(copy.destination))
                    XCTAssertTrue(copy.sources.allSatisfy { live.contains($0) })
                }
                XCTAssertEqual(Set(result.copies.filter { $0.chunk == c.id }.map(\.destination)).count,
                               result.copies.filter { $0.chunk == c.id }.count, "distinct destinations")
                if live.isEmpty { XCTAssertTrue(result.missing.contains(c.id)) }
            }
        }
    }
}
