import Crypto
import Foundation
import TYDFSCore

/// Who signs a request to the master, and with what: an access key (clients, the S3 gateway)
/// or the cluster secret (datakeepers, and the master's own reader).
///
/// Requests are signed, not sent with a bearer secret, so a key's secret never crosses the
/// wire: a cluster on plain HTTP (the default on one machine) leaks no credential to someone
/// watching, and the scheme is the one S3's SigV4 uses, which the gateway verifies the same way.
public struct RequestSigner: Sendable {
    public let keyID: String
    let secret: SigningSecret

    /// The key id that stands for the cluster secret.
    public static let clusterKeyID = "cluster"

    public init(accessKeyID: String, secret: String) {
        keyID = accessKeyID
        self.secret = SigningSecret(accessKeySecret: secret)
    }

    public init(cluster secret: ClusterSecret) {
        keyID = Self.clusterKeyID
        self.secret = SigningSecret(cluster: secret)
    }

    /// The headers that sign `method` on `target` (the path and query exactly as sent) with
    /// `body`, at `date` (seconds since 1970): `Authorization` and `RequestSignature.digestHeader`.
    public func headers(method: String, target: String, body: some Sequence<UInt8>, date: Int64) -> [(name: String, value: String)] {
        let digest = RequestSignature.digest(body)
        return [("Authorization", authorization(method: method, target: target, bodyDigest: digest, date: date)),
                (RequestSignature.digestHeader, digest)]
    }

    /// The `Authorization` header alone, for a body whose SHA-256 is `bodyDigest` (hex).
    public func authorization(method: String, target: String, bodyDigest: String, date: Int64) -> String {
        let signature = secret.mac(RequestSignature.message(method: method, target: target, bodyDigest: bodyDigest, date: date))
        return "\(RequestSignature.scheme) Credential=\(keyID), Date=\(date), Signature=\(Hex.encode(signature))"
    }
}

/// The signed-request scheme: `Authorization: TYDFS-HMAC-SHA256 Credential=ID, Date=UNIX,
/// Signature=HEX`, where the signature is the HMAC-SHA256, under the key's secret, of the scheme,
/// the date, the method, the request target and the SHA-256 of the body, one per line. The body's
/// SHA-256 also travels in `digestHeader` (as S3's `x-amz-content-sha256`), so a server checks the
/// signature before it reads a byte of the body, then checks the body against the digest. A
/// request more than `Limits.signatureSkewSeconds` away from the server's clock is refused, which
/// bounds replays as SigV4's 15 minutes do.
public enum RequestSignature {
    public static let scheme = "TYDFS-HMAC-SHA256"
    /// The header carrying the body's SHA-256 (hex), covered by the signature.
    public static let digestHeader = "X-TYDFS-Content-SHA256"

    /// The parts of an `Authorization` header.
    public struct Claimed: Equatable, Sendable {
        public var keyID: String
        public var date: Int64
        public var signature: [UInt8]
    }

    /// Reads an `Authorization` header of this scheme: `Credential`, `Date` and `Signature`, each
    /// once, separated by commas and optional spaces or tabs. Nil for anything else. Works on the bytes
    /// (every request to the master passes here).
    public static func parse(_ header: String) -> Claimed? {
        guard header.hasPrefix(scheme + " ") else { return nil }
        var keyID: String?, date: Int64?, signature: [UInt8]?
        for part in header.utf8.dropFirst(scheme.utf8.count + 1).split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false) {
            var field = part
            while field.first == UInt8(ascii: " ") || field.first == UInt8(ascii: "\t") { field = field.dropFirst() }
            while field.last == UInt8(ascii: " ") || field.last == UInt8(ascii: "\t") { field = field.dropLast() }
            guard let equals = field.firstIndex(of: UInt8(ascii: "=")) else { return nil }
            let name = String(decoding: field[..<equals], as: UTF8.self)
            let value = String(decoding: field[field.index(after: equals)...], as: UTF8.self)
            switch name {
            case "Credential" where keyID == nil: keyID = value
            case "Date" where date == nil: date = Int64(value) ?? -1
            case "Signature" where signature == nil: signature = Hex.decode(value) ?? []
            default: return nil
            }
        }
        guard let keyID, !keyID.isEmpty, keyID.utf8.count <= 128, let date, date >= 0, let signature, signature.count == 32 else {
            return nil
        }
        return Claimed(keyID: keyID, date: date, signature: signature)
    }

    /// Checks `claimed` against the secret of its key: nil when it holds, else why not.
    public static func verify(
        _ claimed: Claimed, secret: SigningSecret, method: String, target: String, bodyDigest: String, now: Int64
    ) -> String? {
        guard abs(now - claimed.date) <= Limits.signatureSkewSeconds else {
            return "the request is dated \(claimed.date - now) s from the server's clock (more than \(Limits.signatureSkewSeconds) s): check the clocks"
        }
        let message = message(method: method, target: target, bodyDigest: bodyDigest, date: claimed.date)
        guard secret.isValid(claimed.signature, for: message) else {
            return "the request's signature does not match (wrong secret for key \(claimed.keyID), or the request was altered)"
        }
        return nil
    }

    /// SHA-256 of a body, as hex.
    public static func digest(_ body: some Sequence<UInt8>) -> String {
        var hasher = SHA256()
        hasher.update(data: Array(body))
        return Hex.encode(hasher.finalize())
    }

    static func message(method: String, target: String, bodyDigest: String, date: Int64) -> String {
        [scheme, String(date), method, target, bodyDigest].joined(separator: "\n")
    }
}

/// The secret a signature is checked against: an access key's, or the cluster's.
public struct SigningSecret: Sendable {
    let bytes: [UInt8]
    var key: SymmetricKey { SymmetricKey(data: bytes) }

    public init(accessKeySecret: String) { bytes = Array(accessKeySecret.utf8) }
    public init(cluster: ClusterSecret) { bytes = cluster.bytes }

    /// HMAC-SHA256 of `message` under this secret: the one place TYDFS computes one.
    func mac(_ message: String) -> [UInt8] { Array(HMAC<SHA256>.authenticationCode(for: Data(message.utf8), using: key)) }

    /// Whether `code` is the HMAC of `message`, compared in constant time.
    func isValid(_ code: [UInt8], for message: String) -> Bool {
        HMAC<SHA256>.isValidAuthenticationCode(code, authenticating: Data(message.utf8), using: key)
    }
}
