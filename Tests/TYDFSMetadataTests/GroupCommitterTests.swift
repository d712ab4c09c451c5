import Foundation
import Logging
import NIOConcurrencyHelpers
import TYDFSCore
import TYDFSMetadata
import TYDFSTestSupport
import XCTest

/// Group commit on a real SQLite file: concurrent commits share batches, each is answered once
/// durable, and a failed batch fails everything after it and asks for a rollback.
final class GroupCommitterTests: XCTestCase {
    private var folder = ""

    override func setUp() {
        folder = NSTemporaryDirectory() + "tydfs-commit-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: folder)
    }

    func testConcurrentCommitsShareBatchesAndAreAllDurable() async throws {
        let store = CountingMetadataStore(try await SQLMetadataStore.openSQLite(path: folder + "/m.sqlite", logger: Logger(label: "test")))
        let committer = GroupCommitter(store: store)
        let writer = Task { await committer.run { _, error in XCTFail("no batch should fail: \(error)") } }
        let count = 64
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<count {
                group.addTask { try await committer.commit([.putFile(Fixture.file("/g/f\(index)"))], sequence: UInt64(index + 1)) }
            }
            try await group.waitForAll()
        }
        let batches = store.batches
        XCTAssertLessThan(batches, count, "commits waiting behind a write share the next batch")
        XCTAssertGreaterThanOrEqual(committer.durableSequence, 1)
        committer.stop()
        await writer.value
        try await store.close()
        let reopened = try await SQLMetadataStore.openSQLite(path: folder + "/m.sqlite", logger: Logger(label: "test"))
        let namespace = try await reopened.loadNamespace()
        try await reopened.close()
        XCTAssertEqual(namespace.fileCount, count)
    }

    func testAFailedBatchFailsItsCallersAndRefusesEditsUntilRolledBack() async throws {
        let store = try await SQLMetadataStore.openSQLite(path: folder + "/m.sqlite", logger: Logger(label: "test"))
        let committer = GroupCommitter(store: store)
        let rollBacks = NIOLockedValueBox<[UInt64]>([])
        let writer = Task {
            await committer.run { durable, _ in
                rollBacks.withLockedValue { $0.append(durable) }
                committer.resume()
            }
        }
        try await committer.commit([.putFile(Fixture.file("/once"))], sequence: 1)
        do {
            try await committer.commit([.putFile(Fixture.file("/once"))], sequence: 2)
            XCTFail("a second put of one path must fail in the store")
        } catch let error as TYDFSError {
            XCTAssertEqual(error.code, .io)
        }
        let deadline = ContinuousClock.now + .seconds(5)
        while rollBacks.withLockedValue({ $0.isEmpty }) && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        XCTAssertEqual(rollBacks.withLockedValue { $0 }, [1], "the rollback is told the last durable sequence")
        try await committer.commit([.putFile(Fixture.file("/after"))], sequence: 3)
        XCTAssertEqual(committer.durableSequence, 3)
        committer.stop()
        await writer.value
        do {
            try await committer.commit([.putFile(Fixture.file("/late"))], sequence: 4)
            XCTFail("a stopped committer refuses edits")
        } catch let error as TYDFSError {
            XCTAssertEqual(error.code, .unavailable)
        }
        try await store.close()
    }
}
