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
        guard let text, !text.isEmpty else {
            throw Self.refusal("a chunk token is needed (the master hands them out with each allocation and stat)", forbidden: false)
        }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == version, text.utf8.count <= 8192,
              let claimBytes = Base64URL.decode(String(parts[1])), let mac = Base64URL.decode(String(parts[2])),
              let claims = String(validating: claimBytes, as: UTF8.self)
        else {
            throw Self.refusal("the chunk token is malformed", forbidden: false)
        }
        guard secret.isValid(mac, for: claims) else {
            throw Self.refusal("the chunk token's signature is wrong (forged, or signed with another cluster's secret)", forbidden: false)
        }
        let fields = claims.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard fields.count == 5, fields[0] == version, let operation = Operation(rawValue: fields[1]),
              let tokenChunk = try? ChunkID(fields[2]), let expiresAt = Int64(fields[3]),
              let pipeline = PipelineHop.decode(fields[4])
        else {
            throw Self.refusal("the chunk token's claims are malformed", forbidden: false)
        }
        let token = ChunkToken(chunk: tokenChunk, operation: operation, expiresAt: expiresAt, pipeline: pipeline)
        guard now <= expiresAt else {
            throw Self.refusal("the chunk token expired \(now - expiresAt) s ago; ask the master again", forbidden: false)
        }
        guard tokenChunk == chunk else {
            throw Self.refusal("the chunk token is for chunk \(tokenChunk), not \(chunk)", forbidden: true)
        }
        guard operations.contains(operation) else {
            let allowed = operations.map(\.rawValue).sorted().joined(separator: " or ")
            throw Self.refusal("the chunk token allows \(operation.rawValue), not \(allowed)", forbidden: true)
        }
        return token
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

/// Base64 with the URL- and header-safe alphabet, no padding.
enum Base64URL {
    static func encode(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decode(_ text: String) -> [UInt8]? {
        guard text.utf8.allSatisfy({ ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 45 || $0 == 95 }) else { return nil }
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while standard.utf8.count % 4 != 0 { standard += "=" }
        return Data(base64Encoded: standard).map { Array($0) }
    }
}
