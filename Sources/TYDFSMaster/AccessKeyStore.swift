import Foundation
import NIOConcurrencyHelpers
import TYDFSCore
import TYDFSSecurity

/// The master's client keys, in `<data>/access-keys.json` (mode 0600), rewritten whole and
/// fsynced on each change. Keys change rarely and are looked up on every request, so they are
/// held in memory behind a lock; a revoked key is removed from the file and refused at once.
final class AccessKeyStore: Sendable {
    private struct File: Codable {
        var keys: [AccessKey]
    }

    let path: String
    private let keys: NIOLockedValueBox<[String: AccessKey]>

    /// Opens the store in `directory`; `created` is true when there was none (a first start).
    init(directory: String) throws {
        path = directory + "/access-keys.json"
        guard FileManager.default.fileExists(atPath: path) else {
            keys = NIOLockedValueBox([:])
            try Self.save([:], to: path, replacing: false)
            return
        }
        guard let data = FileManager.default.contents(atPath: path) else { throw TYDFSError(.io, "cannot read \(path)") }
        do {
            let file = try JSONDecoder().decode(File.self, from: data)
            keys = NIOLockedValueBox(Dictionary(file.keys.map { ($0.accessKeyID, $0) }, uniquingKeysWith: { first, _ in first }))
        } catch {
            throw TYDFSError(.invalidArgument, "\(path) is not a list of access keys: \(error)")
        }
    }

    var isEmpty: Bool { keys.withLockedValue { $0.isEmpty } }

    func lookup(_ id: String) -> AccessKey? {
        guard AccessKey.isWellFormedID(id) else { return nil }
        return keys.withLockedValue { $0[id] }
    }

    func list() -> [AccessKey] { keys.withLockedValue { $0.values.sorted { $0.createdMillis < $1.createdMillis } } }

    func create(access: AccessLevel, prefix: RemotePath?) throws -> AccessKey {
        let key = AccessKey.generate(access: access, prefix: prefix, nowMillis: Int64(Date().timeIntervalSince1970 * 1000))
        try keys.withLockedValue { keys in
            var changed = keys
            changed[key.accessKeyID] = key
            try Self.save(changed, to: path, replacing: true)
            keys = changed
        }
        return key
    }

    /// Removes key `id`; false if there was none.
    func revoke(_ id: String) throws -> Bool {
        try keys.withLockedValue { keys in
            guard keys[id] != nil else { return false }
            var changed = keys
            changed[id] = nil
            try Self.save(changed, to: path, replacing: true)
            keys = changed
            return true
        }
    }

    private static func save(_ keys: [String: AccessKey], to path: String, replacing: Bool) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(File(keys: keys.values.sorted { $0.createdMillis < $1.createdMillis }))
        try SecretFile.create(path, contents: String(decoding: data, as: UTF8.self) + "\n", replacing: replacing)
    }
}
