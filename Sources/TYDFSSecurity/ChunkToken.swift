import Foundation
import TYDFSCore
import TYDFSProtocol

/// The master's written permission to move one chunk's bytes: datakeepers store or serve a chunk
/// only for a request carrying a token the master signed (as HDFS's block access tokens and
/// SeaweedFS's per-write JWTs do). A datakeeper checks it against its copy of the cluster
/// secret; it needs no call to the master.
///
/// It names the chunk, what may be done with it, until when, and for a write the whole pipeline
/// (ids and addresses, in order), so each hop forwards only to the hops the master chose.
/// On the wire: `v1.<base64url(claims)>.<base64url(HMAC-SHA256)>`.
public struct ChunkToken: Equatable, Sendable {
    /// What a token allows with its chunk; each route accepts only the operations it performs.
    public enum Operation: String, Sendable, CaseIterable {
        /// A client reading the chunk, whole or a range.
        case read
        /// A client storing the chunk through a pipeline.
        case write
        /// A datakeeper pulling a replica on the master's order.
        case replicate
    }

    public var chunk: ChunkID
    public var operation: Operation
    /// Seconds since 1970 after which it is refused.
    public var expiresAt: Int64
    /// For a write, the pipeline from its first hop; empty otherwise.
    public var pipeline: [PipelineHop]

    public init(chunk: ChunkID, operation: Operation, expiresAt: Int64, pipeline: [PipelineHop] = []) {
        self.chunk = chunk
        self.operation = operation
        self.expiresAt = expiresAt
        self.pipeline = pipeline
    }

    static let version = "v1"

    private var claims: String {
        [Self.version, operation.rawValue, chunk.value, String(expiresAt), PipelineHop.encode(pipeline)].joined(separator: "\n")
    }

    /// The token as sent in `Header.chunkToken`.
    public func signed(with secret: ClusterSecret) -> String {
        let claims = self.claims
        return Self.version + "." + Base64URL.encode(Array(claims.utf8)) + "." + Base64URL.encode(secret.mac(claims))
    }

    /// A token refused: `forbidden` (HTTP 403) for a genuine token used outside its scope,
    /// `unauthenticated` (HTTP 401) for one that proves nothing.
    static func refusal(_ reason: String, forbidden: Bool) -> TYDFSError {
        TYDFSError(forbidden ? .forbidden : .unauthenticated, reason)
    }

    /// Checks `text` for `operations` on `chunk` at `now` (seconds since 1970): the signature
    /// first (in constant time), then the scope. Returns the token's claims.
    public static func verify(
        _ text: String?, secret: ClusterSecret, chunk: ChunkID, operations: Set<Operation>, now: Int64
    ) throws -> ChunkToken {
        let token = try authenticated(text, secret: secret)
        guard now <= token.expiresAt else {
            throw Self.refusal("the chunk token expired \(now - token.expiresAt) s ago; ask the master again", forbidden: false)
        }
        try token.check(chunk: chunk, operations: operations)
        return token
    }

    /// Checks `text` for a write of `chunk` that already happened, whatever its age: a master
    /// that took over during a put adopts the chunks the put stored under the old leader, on the
    /// proof that a master of this cluster allocated them to the caller. Returns the claims.
    public static func verifyPastWrite(_ text: String?, secret: ClusterSecret, chunk: ChunkID) throws -> ChunkToken {
        let token = try authenticated(text, secret: secret)
        try token.check(chunk: chunk, operations: [.write])
        return token
    }

    /// The claims of `text`, once its signature proved the master wrote them.
    private static func authenticated(_ text: String?, secret: ClusterSecret) throws -> ChunkToken {
        guard let text, !text.isEmpty else {
            throw Self.refusal("a chunk token is needed (the master hands them out with each allocation and stat)", forbidden: false)
        }
        let parts = text.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false).map(Substring.init)
        guard parts.count == 3, parts[0] == version, text.utf8.count <= 8192,
              let claimBytes = Base64URL.decode(parts[1]), let mac = Base64URL.decode(parts[2]),
              let claims = String(validating: claimBytes, as: UTF8.self)
        else {
            throw Self.refusal("the chunk token is malformed", forbidden: false)
        }
        guard secret.isValid(mac, for: claims) else {
            throw Self.refusal("the chunk token's signature is wrong (forged, or signed with another cluster's secret)", forbidden: false)
        }
        let fields = claims.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map { String(Substring($0)) }
        guard fields.count == 5, fields[0] == version, let operation = Operation(rawValue: fields[1]),
              let tokenChunk = try? ChunkID(fields[2]), let expiresAt = Int64(fields[3]),
              let pipeline = PipelineHop.decode(fields[4])
        else {
            throw Self.refusal("the chunk token's claims are malformed", forbidden: false)
        }
        return ChunkToken(chunk: tokenChunk, operation: operation, expiresAt: expiresAt, pipeline: pipeline)
    }

    private func check(chunk expected: ChunkID, operations: Set<Operation>) throws {
        guard chunk == expected else {
            throw Self.refusal("the chunk token is for chunk \(chunk), not \(expected)", forbidden: true)
        }
        guard operations.contains(operation) else {
            let allowed = operations.map(\.rawValue).sorted().joined(separator: " or ")
            throw Self.refusal("the chunk token allows \(operation.rawValue), not \(allowed)", forbidden: true)
        }
    }

    /// For a write token checked by hop `me`: the hops after it, which must be exactly the ones
    /// the request asks it to forward to.
    public func downstream(of me: DataKeeperID) throws -> [PipelineHop] {
        guard let position = pipeline.firstIndex(where: { $0.id == me.value }) else {
            throw Self.refusal("the chunk token's pipeline does not include datakeeper \(me)", forbidden: true)
        }
        return Array(pipeline[(position + 1)...])
    }

}

/// Base64 with the URL- and header-safe alphabet, no padding. Hand-written over bytes: every
/// stat made to read signs a token per chunk, and Foundation's base64 plus three string
/// replacements took 5 % of a busy master's CPU (perf).
enum Base64URL {
    private static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    /// Each ASCII byte's value in `alphabet`, or -1.
    private static let values: [Int8] = {
        var table = [Int8](repeating: -1, count: 256)
        for (value, character) in alphabet.enumerated() { table[Int(character)] = Int8(value) }
        return table
    }()

    static func encode(_ bytes: [UInt8]) -> String {
        var text: [UInt8] = []
        text.reserveCapacity((bytes.count * 4 + 2) / 3)
        var index = 0
        while index < bytes.count {
            let available = min(3, bytes.count - index)
            var group = UInt32(bytes[index]) << 16
            if available > 1 { group |= UInt32(bytes[index + 1]) << 8 }
            if available > 2 { group |= UInt32(bytes[index + 2]) }
            // 3 bytes make 4 characters; 2 make 3; 1 makes 2.
            for position in 0...available { text.append(alphabet[Int(group >> UInt32(18 - 6 * position) & 63)]) }
            index += 3
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// The bytes `text` encodes; nil for a character outside the alphabet, a length no encoding
    /// has, or leftover bits that are not zero (so each byte string has exactly one encoding).
    static func decode(_ text: some StringProtocol) -> [UInt8]? {
        guard text.utf8.count % 4 != 1 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count * 3 / 4)
        var bits: UInt32 = 0
        var bitCount: UInt32 = 0
        for character in text.utf8 {
            let value = values[Int(character)]
            guard value >= 0 else { return nil }
            bits = bits << 6 | UInt32(value)
            bitCount += 6
            if bitCount >= 8 {
                bitCount -= 8
                bytes.append(UInt8(truncatingIfNeeded: bits >> bitCount))
                bits &= (1 << bitCount) - 1
            }
        }
        guard bits == 0 else { return nil }
        return bytes
    }
}
