import Foundation
import TYDFSCore
import TYDFSProtocol

/// The master's side of chunk tokens: signs each one for `Limits.chunkTokenSeconds` from now.
public struct ChunkTokenIssuer: Sendable {
    let secret: ClusterSecret
    let lifetimeSeconds: Int64

    public init(secret: ClusterSecret, lifetimeSeconds: Int64 = Limits.chunkTokenSeconds) {
        self.secret = secret
        self.lifetimeSeconds = lifetimeSeconds
    }

    public func token(_ operation: ChunkToken.Operation, _ chunk: ChunkID, pipeline: [PipelineHop] = []) -> String {
        ChunkToken(chunk: chunk, operation: operation, expiresAt: UnixClock.now + lifetimeSeconds, pipeline: pipeline).signed(with: secret)
    }

    /// The claims of a write token this cluster's masters signed for `chunk`, at any age: see
    /// `ChunkToken.verifyPastWrite`.
    public func pastWrite(_ token: String?, of chunk: ChunkID) throws -> ChunkToken {
        try ChunkToken.verifyPastWrite(token, secret: secret, chunk: chunk)
    }
}

/// Seconds since 1970: what signed requests and tokens are dated with.
public enum UnixClock {
    public static var now: Int64 { Int64(Date().timeIntervalSince1970) }
}
