import Foundation
import HTTPTypes
import Hummingbird
import TYDFSCore
import TYDFSS3

/// One S3 request, read: the bucket and key its path names (path-style addressing,
/// `/bucket/key`), its query items, and its parts as SigV4 signs them.
struct S3Request {
    let method: HTTPRequest.Method
    /// The raw path and query, exactly as received (signatures cover them in this form).
    let rawPath: String
    let rawQuery: String
    let bucket: String?
    /// The key, decoded; nil for a request to the service or a bucket.
    let key: String?
    /// Query items, decoded; an item without `=` has the value "".
    let query: [String: String]
    let headers: HTTPFields

    init(_ request: Request) throws(S3Error) {
        method = request.method
        let target = request.head.path ?? "/"
        if let mark = target.utf8.firstIndex(of: UInt8(ascii: "?")) {
            rawPath = String(decoding: target.utf8[..<mark], as: UTF8.self)
            rawQuery = String(decoding: target.utf8[target.utf8.index(after: mark)...], as: UTF8.self)
        } else {
            rawPath = target
            rawQuery = ""
        }
        headers = request.headers
        guard rawPath.utf8.first == UInt8(ascii: "/"), let path = S3Request.percentDecoded(Substring(rawPath)) else {
            throw .invalidArgument("the request path \(rawPath.prefix(200)) is not a valid, UTF-8, percent-encoded path")
        }
        // Split at bytes: a key may begin with a combining accent, which Swift joins to the `/`.
        let rest = path.utf8.dropFirst()
        if let slash = rest.firstIndex(of: UInt8(ascii: "/")) {
            bucket = String(decoding: rest[..<slash], as: UTF8.self)
            let key = rest[rest.index(after: slash)...]
            self.key = key.isEmpty ? nil : String(decoding: key, as: UTF8.self)
        } else {
            bucket = rest.isEmpty ? nil : String(decoding: rest, as: UTF8.self)
            key = nil
        }
        var items: [String: String] = [:]
        for item in rawQuery.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = S3Request.percentDecoded(parts[0]),
                  let value = parts.count > 1 ? S3Request.percentDecoded(parts[1]) : ""
            else {
                throw .invalidArgument("the query item \(item.prefix(200)) is not valid, UTF-8 percent-encoding")
            }
            items[name] = value
        }
        query = items
    }

    /// The headers as SigV4 reads them: every field, plus `host` (which HTTP/1 carries in the
    /// request's authority, not among its fields).
    func signedParts(authority: String?) -> SigV4Request {
        var fields = headers.map { (name: $0.name.canonicalName, value: $0.value) }
        if let authority, !fields.contains(where: { $0.name == "host" }) { fields.append((name: "host", value: authority)) }
        return SigV4Request(method: method.rawValue, rawPath: rawPath, rawQuery: rawQuery, headers: fields)
    }

    func header(_ name: String) -> String? {
        HTTPField.Name(name).flatMap { headers[$0] }
    }

    /// `text` with its `%XX` escapes decoded strictly (`Hex.percentDecoded`; `+` stays `+`, as S3
    /// encodes a space as `%20`); nil for a broken escape or bytes that are not UTF-8.
    static func percentDecoded(_ text: Substring) -> String? {
        Hex.percentDecoded(text.utf8)
    }
}
