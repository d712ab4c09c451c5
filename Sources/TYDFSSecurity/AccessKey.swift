import Foundation
import TYDFSCore

/// What a client key may do.
public enum AccessLevel: String, Codable, Sendable, CaseIterable, Comparable {
    /// stat, list, get, fsck, and the cluster's state.
    case readOnly = "read-only"
    /// Also put, rm and rename.
    case readWrite = "read-write"
    /// Also manage keys and drain datakeepers.
    case admin

    private var rank: Int {
        switch self {
        case .readOnly: return 0
        case .readWrite: return 1
        case .admin: return 2
        }
    }

    public static func < (lhs: AccessLevel, rhs: AccessLevel) -> Bool { lhs.rank < rhs.rank }
}

/// A client's credentials at the master, as S3's: an id anyone may see and a secret only the
/// client and the master know. The same pair signs S3 requests at the gateway.
public struct AccessKey: Codable, Sendable, Equatable {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var access: AccessLevel
    /// When set, the key reaches only this path and what is below it.
    public var prefix: RemotePath?
    public var createdMillis: Int64

    /// The names S3 uses (and `tydfs key create --json` prints).
    enum CodingKeys: String, CodingKey {
        case accessKeyID = "accessKeyId", secretAccessKey, access, prefix, createdMillis
    }

    public init(accessKeyID: String, secretAccessKey: String, access: AccessLevel, prefix: RemotePath?, createdMillis: Int64) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.access = access
        self.prefix = prefix
        self.createdMillis = createdMillis
    }

    /// A new key: an id of `TK` and 18 upper-case letters and digits, a secret of 40 letters and digits.
    public static func generate(access: AccessLevel, prefix: RemotePath?, nowMillis: Int64) -> AccessKey {
        AccessKey(
            accessKeyID: "TK" + randomText(18, alphabet: "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"),
            secretAccessKey: randomText(40, alphabet: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"),
            access: access, prefix: prefix, createdMillis: nowMillis)
    }

    private static func randomText(_ count: Int, alphabet: String) -> String {
        let letters = Array(alphabet)
        var generator = SystemRandomNumberGenerator()
        return String((0..<count).map { _ in letters[Int.random(in: 0..<letters.count, using: &generator)] })
    }

    /// Whether `id` could be a key id at all (checked before any lookup).
    public static func isWellFormedID(_ id: String) -> Bool {
        id.utf8.count == 20 && id.hasPrefix("TK") && id.utf8.allSatisfy { ($0 >= 65 && $0 <= 90) || ($0 >= 48 && $0 <= 57) }
    }
}

/// A key as `tydfs key list` shows it: everything but the secret.
public struct KeyListing: Codable, Sendable, Equatable {
    public var accessKeyID: String
    public var access: AccessLevel
    public var prefix: RemotePath?
    public var createdMillis: Int64

    enum CodingKeys: String, CodingKey {
        case accessKeyID = "accessKeyId", access, prefix, createdMillis
    }

    public init(_ key: AccessKey) {
        accessKeyID = key.accessKeyID
        access = key.access
        prefix = key.prefix
        createdMillis = key.createdMillis
    }
}

/// `GET /v1/keys`.
public struct KeyList: Codable, Sendable {
    public var keys: [KeyListing]
    public init(keys: [KeyListing]) { self.keys = keys }
}

/// `POST /v1/keys`: the new key's rights. The answer is the `AccessKey`, secret included,
/// the only time the secret is shown.
public struct CreateKeyRequest: Codable, Sendable {
    public var access: AccessLevel
    public var prefix: RemotePath?
    public init(access: AccessLevel, prefix: RemotePath?) {
        self.access = access
        self.prefix = prefix
    }
}

/// Who a request to the master comes from, once its signature checked out.
public enum Principal: Sendable, Equatable {
    /// A datakeeper or the master itself: signed with the cluster secret.
    case cluster
    case key(id: String, access: AccessLevel, prefix: RemotePath?)
    /// No credentials, where the master was started with `--anonymous LEVEL`.
    case anonymous(AccessLevel)

    /// What a request needs.
    public enum Need: Sendable, Equatable {
        /// Reading the file or folder at the path (and anything below it).
        case read(RemotePath)
        /// Changing the file or folder at the path.
        case write(RemotePath)
        /// Seeing the cluster's state (nodes, events, summary): any valid key.
        case look
        /// Managing keys, draining datakeepers.
        case admin
        /// What only datakeepers say: heartbeats, chunk reports, leaving.
        case cluster
    }

    /// Allows the request, or throws `forbidden` saying what is missing.
    public func authorize(_ need: Need) throws {
        let (access, prefix, name): (AccessLevel, RemotePath?, String)
        switch self {
        case .cluster: return
        case .key(let id, let level, let scope): (access, prefix, name) = (level, scope, "key \(id)")
        case .anonymous(let level): (access, prefix, name) = (level, nil, "anonymous access")
        }
        func within(_ path: RemotePath) throws {
            guard let prefix, !prefix.isRoot else { return }
            guard path == prefix || path.isBelow(prefix) else {
                throw TYDFSError(.forbidden, "\(name) is limited to \(prefix) and cannot reach \(path)")
            }
        }
        switch need {
        case .cluster:
            throw TYDFSError(.forbidden, "only datakeepers (signing with the cluster secret) may do this, not \(name)")
        case .admin:
            guard access >= .admin else { throw TYDFSError(.forbidden, "\(name) is \(access.rawValue); this needs an admin key") }
        case .look:
            return
        case .read(let path):
            try within(path)
        case .write(let path):
            guard access >= .readWrite else { throw TYDFSError(.forbidden, "\(name) is read-only and cannot change \(path)") }
            try within(path)
        }
    }
}
