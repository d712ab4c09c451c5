import Crypto
import Foundation
import TYDFSCore

/// A request as the S3 gateway received it, before any body byte is read: everything a Signature
/// Version 4 signature covers, in the form it had on the wire (so the verifier sees what the client
/// signed, not what a router made of it).
public struct SigV4Request: Sendable {
    /// The HTTP method, as sent (`GET`).
    public var method: String
    /// The path exactly as on the wire, still percent-encoded (`/bucket/my%20key`).
    public var rawPath: String
    /// The query string as on the wire, without the `?`; empty when there is none.
    public var rawQuery: String
    /// The headers as received: names in any case, a name possibly repeated. HTTP/2 and
    /// swift-http-types carry the host as `:authority`: pass it here as `host`.
    public var headers: [(name: String, value: String)]

    public init(method: String, rawPath: String, rawQuery: String = "", headers: [(name: String, value: String)]) {
        self.method = method
        self.rawPath = rawPath
        self.rawQuery = rawQuery
        self.headers = headers
    }

    /// The values of every header called `name` (lower-case), in the order received.
    func values(ofHeader name: String) -> [String] {
        headers.compactMap { $0.name.lowercased() == name ? $0.value : nil }
    }
}

/// Why the gateway refuses a request's SigV4 authentication. Each case is one S3 error code, so the
/// error response follows from the case alone.
public enum SigV4Failure: Error, Equatable, Sendable {
    /// Neither an `Authorization` header nor an `X-Amz-Algorithm` query parameter: an anonymous
    /// request, which the caller allows or refuses.
    case missingAuthentication
    /// The `Authorization` header, or a header the signature depends on, cannot be read; the
    /// message says what is wrong.
    case malformedAuthorization(String)
    /// A presigned URL's `X-Amz-*` parameters cannot be read; the message says what is wrong.
    case malformedPresignedQuery(String)
    /// The access key id in the credential (carried here) is not known.
    case unknownAccessKey(String)
    /// The signature is not the one the key's secret gives for this request.
    case signatureMismatch
    /// A header-signed request dated more than 15 minutes from the server's clock, or a presigned
    /// URL dated more than 15 minutes in the future.
    case requestTimeTooSkewed
    /// A presigned URL used after `X-Amz-Date` + `X-Amz-Expires`.
    case expired

    /// The S3 error code of the response.
    public var s3Code: String {
        switch self {
        case .missingAuthentication, .expired: "AccessDenied"
        case .malformedAuthorization: "AuthorizationHeaderMalformed"
        case .malformedPresignedQuery: "AuthorizationQueryParametersError"
        case .unknownAccessKey: "InvalidAccessKeyId"
        case .signatureMismatch: "SignatureDoesNotMatch"
        case .requestTimeTooSkewed: "RequestTimeTooSkewed"
        }
    }

    /// The HTTP status of the response: 400 for what cannot be read, 403 for what is refused.
    public var httpStatus: Int {
        switch self {
        case .malformedAuthorization, .malformedPresignedQuery: 400
        case .missingAuthentication, .unknownAccessKey, .signatureMismatch, .requestTimeTooSkewed, .expired: 403
        }
    }

    /// The human message of the response.
    public var message: String {
        switch self {
        case .missingAuthentication:
            "Access Denied: the request is not signed (no Authorization header, no X-Amz-Algorithm query parameter)."
        case .malformedAuthorization(let what), .malformedPresignedQuery(let what):
            what
        case .unknownAccessKey(let accessKeyID):
            "The access key id '\(accessKeyID)' does not exist in our records: check the client's access key."
        case .signatureMismatch:
            "The request signature we calculated does not match the signature you provided. Check your key and signing method."
        case .requestTimeTooSkewed:
            "The difference between the request time and the server's time is too large (more than 15 minutes): check the client's clock."
        case .expired:
            "Request has expired."
        }
    }
}

/// What a verified request proved: who signed it, for which region and time, and which payload
/// hash the signature covers. The body is not read yet, so checking it against `payloadHash` is the
/// caller's job; `signingKey` and `seedSignature` let the caller check the chunk signatures of a
/// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` upload.
public struct SigV4Verified: Sendable, Equatable {
    public var accessKeyID: String
    /// A lower-case 64-hex SHA-256 the caller must check against the body, or one of
    /// `SigV4.unsignedPayload`, `SigV4.streamingUnsignedPayloadTrailer`, `SigV4.streamingSignedPayload`,
    /// `SigV4.streamingSignedPayloadTrailer`, which the caller handles.
    public var payloadHash: String
    /// Whether the signature came in the query (a presigned URL) rather than the `Authorization` header.
    public var presigned: Bool
    /// The region the client signed for (any: the gateway does not insist on its own).
    public var region: String
    /// The signing time, `yyyyMMdd'T'HHmmss'Z'`.
    public var date: String
    /// The request's signature: the previous signature of a streaming upload's first chunk.
    public var seedSignature: String
    /// The key derived from the secret for this date, region and `s3`: what chunk signatures use.
    public var signingKey: [UInt8]

    /// The credential scope, `yyyyMMdd/region/s3/aws4_request`, which chunk signatures also cover.
    public var scope: String {
        SigV4.credentialScope(date: String(date.prefix(8)), region: region, service: SigV4.service)
    }
}

/// AWS Signature Version 4 as S3 uses it: verifying a request signed in its `Authorization` header
/// or presigned in its query, and the pure building blocks of the signature (which tests and our own
/// clients use to sign). No clock and no I/O: the caller passes the time and the secret lookup.
public enum SigV4 {
    public static let algorithm = "AWS4-HMAC-SHA256"
    public static let service = "s3"
    /// How far a header-signed request's date may be from the server's clock (S3's 15 minutes).
    public static let maximumSkewSeconds: Int64 = 900
    /// The longest `X-Amz-Expires` S3 accepts: 7 days.
    public static let maximumPresignedExpiresSeconds: Int64 = 604_800

    /// Payload hashes that stand for something other than the body's SHA-256.
    public static let unsignedPayload = "UNSIGNED-PAYLOAD"
    public static let streamingUnsignedPayloadTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    public static let streamingSignedPayload = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
    public static let streamingSignedPayloadTrailer = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"

    static let terminator = "aws4_request"
    static let signatureParameter = "X-Amz-Signature"

    /// Checks the request's signature. `secret` returns the secret access key of an access key id,
    /// or nil if the id is unknown; `now` is the server's time in seconds since 1970.
    public static func verify(
        _ request: SigV4Request, now: Int64, secret: (String) -> String?
    ) -> Result<SigV4Verified, SigV4Failure> {
        let claim: Claim
        switch readClaim(request) {
        case .success(let read): claim = read
        case .failure(let failure): return .failure(failure)
        }
        guard let secretAccessKey = secret(claim.accessKeyID) else {
            return .failure(.unknownAccessKey(claim.accessKeyID))
        }
        if let failure = timeFailure(claim, now: now) {
            return .failure(failure)
        }
        let key = signingKey(secret: secretAccessKey, date: claim.time.day, region: claim.region, service: service)
        let canonical = canonicalRequest(
            request, signedHeaders: claim.signedHeaders, payloadHash: claim.payloadHash, presigned: claim.presigned)
        let scope = credentialScope(date: claim.time.day, region: claim.region, service: service)
        let expected = signature(signingKey: key, stringToSign: stringToSign(date: claim.time.iso, scope: scope, canonicalRequest: canonical))
        guard constantTimeEqual(expected, claim.signature) else {
            return .failure(.signatureMismatch)
        }
        return .success(SigV4Verified(
            accessKeyID: claim.accessKeyID, payloadHash: claim.payloadHash, presigned: claim.presigned,
            region: claim.region, date: claim.time.iso, seedSignature: expected, signingKey: key))
    }

    // MARK: - Building blocks

    /// The canonical request: method, canonical URI, canonical query, canonical headers, signed
    /// header names and payload hash, one per line. `signedHeaders` are lower-case and sorted;
    /// `presigned` leaves `X-Amz-Signature` out of the query.
    public static func canonicalRequest(
        _ request: SigV4Request, signedHeaders: [String], payloadHash: String, presigned: Bool
    ) -> String {
        [request.method,
         canonicalURI(rawPath: request.rawPath),
         canonicalQuery(rawQuery: request.rawQuery, presigned: presigned),
         canonicalHeaders(request.headers, signedHeaders: signedHeaders),
         signedHeaders.joined(separator: ";"),
         payloadHash].joined(separator: "\n")
    }

    /// The path as S3 signs it: not normalized (no `.`/`..`/`//` folding), each byte URI-encoded
    /// once, `/` kept. The raw path is decoded first, so a client that escapes more or less than
    /// the canonical form (`%7E` for `~`, a raw `ü`) still verifies; `%2F` decodes to `/` (as MinIO).
    public static func canonicalURI(rawPath: String) -> String {
        rawPath.isEmpty ? "/" : uriEncoded(percentDecoded(rawPath[...]), keepingSlash: true)
    }

    /// The query as SigV4 signs it: each name and value decoded then URI-encoded (`/` too), sorted
    /// by name then value, a name without `=` given an empty value, joined with `&`. A `+` is a
    /// plus sign, not a space. `presigned` leaves out `X-Amz-Signature`.
    public static func canonicalQuery(rawQuery: String, presigned: Bool) -> String {
        let encoded: [(name: String, value: String)] = rawParameters(rawQuery).map {
            (name: uriEncoded(percentDecoded($0.name), keepingSlash: false),
             value: uriEncoded(percentDecoded($0.value), keepingSlash: false))
        }
        return encoded
            .filter { !(presigned && $0.name == signatureParameter) }
            .sorted { !$0.name.equalsByteWise($1.name) ? $0.name.precedesByteWise($1.name) : $0.value.precedesByteWise($1.value) }
            .map { $0.name + "=" + $0.value }
            .joined(separator: "&")
    }

    /// `name:value\n` for each signed header, in the order of `signedHeaders`: the values of a
    /// repeated header joined with `,`, each trimmed and its runs of whitespace made one space.
    public static func canonicalHeaders(_ headers: [(name: String, value: String)], signedHeaders: [String]) -> String {
        signedHeaders.map { name -> String in
            let values = headers.compactMap { $0.name.lowercased() == name ? trimmedHeaderValue($0.value) : nil }
            return name + ":" + values.joined(separator: ",") + "\n"
        }.joined()
    }

    /// `yyyyMMdd/region/service/aws4_request`.
    public static func credentialScope(date: String, region: String, service: String) -> String {
        [date, region, service, terminator].joined(separator: "/")
    }

    /// The string to sign: the algorithm, the signing time (`yyyyMMdd'T'HHmmss'Z'`), the credential
    /// scope and the SHA-256 of the canonical request, one per line.
    public static func stringToSign(date: String, scope: String, canonicalRequest: String) -> String {
        [algorithm, date, scope, Hex.encode(SHA256.hash(data: Data(canonicalRequest.utf8)))].joined(separator: "\n")
    }

    /// The signing key: HMAC-SHA256 chained from `"AWS4" + secret` over the date (`yyyyMMdd`), the
    /// region, the service and `aws4_request`.
    public static func signingKey(secret: String, date: String, region: String, service: String) -> [UInt8] {
        [date, region, service, terminator].reduce(Array(("AWS4" + secret).utf8)) { key, message in
            hmacSHA256(key: key, message: message)
        }
    }

    /// The signature of `stringToSign` under `signingKey`, as lower-case hex.
    public static func signature(signingKey: [UInt8], stringToSign: String) -> String {
        Hex.encode(hmacSHA256(key: signingKey, message: stringToSign))
    }

    // MARK: - Reading the claim

    /// What a request claims about its signature, read from its `Authorization` header or its query.
    struct Claim {
        var accessKeyID: String
        var region: String
        var time: SigningTime
        var signedHeaders: [String]
        var signature: String
        var payloadHash: String
        /// `X-Amz-Expires` of a presigned URL; nil for a header-signed request.
        var expiresSeconds: Int64?

        var presigned: Bool { expiresSeconds != nil }
    }

    /// Why a claim cannot be read; the caller makes it the failure of the claim's style.
    struct Malformed: Error {
        var message: String
        init(_ message: String) { self.message = message }
    }

    /// The request's claim, from its `Authorization` header or from its presigned query (never both).
    static func readClaim(_ request: SigV4Request) -> Result<Claim, SigV4Failure> {
        let authorizations = request.values(ofHeader: "authorization")
        let parameters = decodedParameters(request.rawQuery)
        let presigned = parameters.contains { $0.name == "X-Amz-Algorithm" }
        switch (authorizations.isEmpty, presigned) {
        case (true, false):
            return .failure(.missingAuthentication)
        case (false, true):
            return .failure(.malformedAuthorization(
                "The request has both an Authorization header and an X-Amz-Algorithm query parameter: sign it one way only."))
        case (false, false):
            do throws(Malformed) {
                return try .success(headerClaim(authorizations, request))
            } catch {
                return .failure(.malformedAuthorization(error.message))
            }
        case (true, true):
            do throws(Malformed) {
                return try .success(presignedClaim(parameters, request))
            } catch {
                return .failure(.malformedPresignedQuery(error.message))
            }
        }
    }

    /// The claim of `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`,
    /// dated by `X-Amz-Date` (else `Date`), covering the `x-amz-content-sha256` header.
    static func headerClaim(_ authorizations: [String], _ request: SigV4Request) throws(Malformed) -> Claim {
        guard authorizations.count == 1 else {
            throw Malformed("The request has \(authorizations.count) Authorization headers: send one.")
        }
        let fields = try parseAuthorization(authorizations[0])
        let time = try headerSigningTime(request)
        let credential = try parseCredential(fields.credential, signedAt: time)
        let signedHeaders = try parseSignedHeaders(fields.signedHeaders, presentIn: request)
        guard let payloadHeader = try singleHeader("x-amz-content-sha256", in: request) else {
            throw Malformed("The request has no x-amz-content-sha256 header: S3 requires it (the body's SHA-256 in hex, or UNSIGNED-PAYLOAD).")
        }
        let payloadHash = try validPayloadHash(payloadHeader)
        return Claim(
            accessKeyID: credential.accessKeyID, region: credential.region, time: time, signedHeaders: signedHeaders,
            signature: fields.signature, payloadHash: payloadHash, expiresSeconds: nil)
    }

    /// The claim of a presigned URL's `X-Amz-Algorithm`, `-Credential`, `-Date`, `-Expires`,
    /// `-SignedHeaders` and `-Signature` parameters. The payload hash is `UNSIGNED-PAYLOAD` unless an
    /// `X-Amz-Content-Sha256` parameter (or else header) says otherwise.
    static func presignedClaim(_ parameters: [(name: String, value: String)], _ request: SigV4Request) throws(Malformed) -> Claim {
        func single(_ name: String) throws(Malformed) -> String {
            let values = parameters.filter { $0.name == name }.map { $0.value }
            guard values.count == 1 else {
                throw Malformed(values.isEmpty ? "The presigned URL has no \(name) parameter." : "The presigned URL has \(name) more than once.")
            }
            return values[0]
        }
        let algorithmName = try single("X-Amz-Algorithm")
        guard algorithmName == algorithm else {
            throw Malformed("X-Amz-Algorithm is '\(algorithmName)': only \(algorithm) is supported.")
        }
        let dateText = try single("X-Amz-Date")
        guard let time = parseISODate(dateText) else {
            throw Malformed("X-Amz-Date '\(dateText)' is not yyyyMMdd'T'HHmmss'Z' (like 20130524T000000Z).")
        }
        let credential = try parseCredential(single("X-Amz-Credential"), signedAt: time)
        let expires = try parseExpires(single("X-Amz-Expires"))
        let signedHeaders = try parseSignedHeaders(single("X-Amz-SignedHeaders"), presentIn: request)
        let signature = try single(signatureParameter)
        let claimedPayloadHash: String
        if let fromQuery = parameters.first(where: { $0.name == "X-Amz-Content-Sha256" }) {
            claimedPayloadHash = fromQuery.value
        } else if let fromHeader = try singleHeader("x-amz-content-sha256", in: request) {
            claimedPayloadHash = fromHeader
        } else {
            claimedPayloadHash = unsignedPayload
        }
        let payloadHash = try validPayloadHash(claimedPayloadHash)
        return Claim(
            accessKeyID: credential.accessKeyID, region: credential.region, time: time, signedHeaders: signedHeaders,
            signature: signature, payloadHash: payloadHash, expiresSeconds: expires)
    }

    /// The `Credential`, `SignedHeaders` and `Signature` of an `Authorization` header, each once,
    /// separated by commas and optional spaces.
    static func parseAuthorization(_ header: String) throws(Malformed) -> (credential: String, signedHeaders: String, signature: String) {
        let trimmed = header.trimmingCharacters(in: .whitespaces)
        let shape = "\(algorithm) Credential=KEY/YYYYMMDD/REGION/s3/aws4_request, SignedHeaders=host;..., Signature=HEX"
        guard let space = trimmed.firstIndex(of: " ") else {
            throw Malformed("The Authorization header '\(trimmed)' is not '\(shape)'.")
        }
        let scheme = String(trimmed[..<space])
        guard scheme == algorithm else {
            throw Malformed("The Authorization header uses '\(scheme)': only \(algorithm) (Signature Version 4) is supported.")
        }
        var credentialField: String?, signedHeadersField: String?, signatureField: String?
        for component in trimmed[space...].split(separator: ",", omittingEmptySubsequences: false) {
            let field = component.trimmingCharacters(in: .whitespaces)
            guard let equals = field.firstIndex(of: "=") else {
                throw Malformed("The Authorization header's component '\(field)' is not NAME=VALUE; expected '\(shape)'.")
            }
            let name = String(field[..<equals])
            let value = String(field[field.index(after: equals)...])
            switch name {
            case "Credential" where credentialField == nil: credentialField = value
            case "SignedHeaders" where signedHeadersField == nil: signedHeadersField = value
            case "Signature" where signatureField == nil: signatureField = value
            default: throw Malformed("The Authorization header has an unexpected or repeated component '\(name)'; expected '\(shape)'.")
            }
        }
        guard let credential = credentialField, let signedHeaders = signedHeadersField, let signature = signatureField,
              !signature.isEmpty else {
            throw Malformed("The Authorization header lacks Credential, SignedHeaders or Signature; expected '\(shape)'.")
        }
        return (credential, signedHeaders, signature)
    }

    /// `ACCESS_KEY_ID/YYYYMMDD/REGION/s3/aws4_request`, its date that of the request.
    static func parseCredential(_ text: String, signedAt time: SigningTime) throws(Malformed) -> (accessKeyID: String, region: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 5, !parts[0].isEmpty, !parts[2].isEmpty else {
            throw Malformed("The credential '\(text)' is not ACCESS_KEY_ID/YYYYMMDD/REGION/s3/aws4_request.")
        }
        guard parts[1] == time.day else {
            throw Malformed("The credential's date \(parts[1]) is not the request's date \(time.day): sign with the date of the request.")
        }
        guard parts[3] == service else {
            throw Malformed("The credential is scoped to service '\(parts[3])': this is S3, sign for service 's3'.")
        }
        guard parts[4] == terminator else {
            throw Malformed("The credential ends in '\(parts[4])', not '\(terminator)'.")
        }
        return (parts[0], parts[2])
    }

    /// The signed header names, lower-case and sorted; `host` must be one, and each must be in the request.
    static func parseSignedHeaders(_ text: String, presentIn request: SigV4Request) throws(Malformed) -> [String] {
        let names = text.split(separator: ";", omittingEmptySubsequences: false).map { $0.lowercased() }
        guard !names.contains(where: \.isEmpty) else {
            throw Malformed("SignedHeaders '\(text)' has an empty name: list lower-case header names joined by ';'.")
        }
        guard names.contains("host") else {
            throw Malformed("SignedHeaders '\(text)' does not include host, which SigV4 requires.")
        }
        let present = Set(request.headers.map { $0.name.lowercased() })
        if let missing = names.first(where: { !present.contains($0) }) {
            throw Malformed("SignedHeaders lists '\(missing)', but the request has no such header (did a proxy drop it?).")
        }
        return Set(names).sorted { $0.precedesByteWise($1) }
    }

    /// `X-Amz-Expires`: whole seconds, at most 7 days.
    static func parseExpires(_ text: String) throws(Malformed) -> Int64 {
        guard let seconds = number(text.utf8, maximumDigits: 18) else {
            throw Malformed("X-Amz-Expires '\(text)' is not a whole number of seconds.")
        }
        guard seconds <= maximumPresignedExpiresSeconds else {
            throw Malformed("X-Amz-Expires must be less than a week (in seconds) that is \(maximumPresignedExpiresSeconds).")
        }
        return seconds
    }

    /// A header-signed request's time: `X-Amz-Date`, else `Date` (RFC 1123).
    static func headerSigningTime(_ request: SigV4Request) throws(Malformed) -> SigningTime {
        if let amzDate = try singleHeader("x-amz-date", in: request) {
            guard let time = parseISODate(amzDate) else {
                throw Malformed("X-Amz-Date '\(amzDate)' is not yyyyMMdd'T'HHmmss'Z' (like 20130524T000000Z).")
            }
            return time
        }
        if let date = try singleHeader("date", in: request) {
            guard let time = parseHTTPDate(date) else {
                throw Malformed("The Date header '\(date)' is not an RFC 1123 date (like 'Fri, 24 May 2013 00:00:00 GMT'); or send X-Amz-Date.")
            }
            return time
        }
        throw Malformed("The request has neither an X-Amz-Date nor a Date header: a signed request must say when it was signed.")
    }

    /// The one value of header `name`, nil when absent.
    static func singleHeader(_ name: String, in request: SigV4Request) throws(Malformed) -> String? {
        let values = request.values(ofHeader: name)
        guard values.count <= 1 else {
            throw Malformed("The request has \(values.count) \(name) headers: send one.")
        }
        return values.first
    }

    /// A payload hash S3 knows: a lower-case hex SHA-256, or one of the named payload modes.
    static func validPayloadHash(_ hash: String) throws(Malformed) -> String {
        let modes = [unsignedPayload, streamingUnsignedPayloadTrailer, streamingSignedPayload, streamingSignedPayloadTrailer]
        let isSHA256 = hash.utf8.count == 64 && hash.utf8.allSatisfy { isDigit($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) }
        guard isSHA256 || modes.contains(hash) else {
            throw Malformed("x-amz-content-sha256 '\(hash)' must be the body's SHA-256 in lower-case hex, or one of \(modes.joined(separator: ", ")).")
        }
        return hash
    }

    /// Why the claim's signing time is refused at `now`, or nil when it is acceptable.
    static func timeFailure(_ claim: Claim, now: Int64) -> SigV4Failure? {
        let signedAt = claim.time.seconds
        guard let expires = claim.expiresSeconds else {
            return abs(now - signedAt) > maximumSkewSeconds ? .requestTimeTooSkewed : nil
        }
        if signedAt - now > maximumSkewSeconds { return .requestTimeTooSkewed }
        if now > signedAt + expires { return .expired }
        return nil
    }

    // MARK: - Dates

    /// A signing time: as SigV4 writes it, and as seconds since 1970.
    struct SigningTime: Equatable {
        var iso: String
        var seconds: Int64
        /// `yyyyMMdd`, the date of the credential scope.
        var day: String { String(iso.prefix(8)) }
    }

    /// `yyyyMMdd'T'HHmmss'Z'`, as `X-Amz-Date` carries it.
    static func parseISODate(_ text: String) -> SigningTime? {
        let bytes = Array(text.utf8)
        guard bytes.count == 16, bytes[8] == UInt8(ascii: "T"), bytes[15] == UInt8(ascii: "Z"),
              let year = number(bytes[0..<4], maximumDigits: 4), let month = number(bytes[4..<6], maximumDigits: 2),
              let day = number(bytes[6..<8], maximumDigits: 2), let hour = number(bytes[9..<11], maximumDigits: 2),
              let minute = number(bytes[11..<13], maximumDigits: 2), let second = number(bytes[13..<15], maximumDigits: 2)
        else { return nil }
        return signingTime(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
    }

    /// RFC 1123, as a `Date` header carries it: `Fri, 24 May 2013 00:00:00 GMT` (botocore writes `-0000`).
    static func parseHTTPDate(_ text: String) -> SigningTime? {
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        let fields = text.split(separator: " ").map(String.init)
        guard fields.count == 6, fields[0].hasSuffix(","), ["GMT", "UTC", "+0000", "-0000"].contains(fields[5]),
              let day = number(fields[1].utf8, maximumDigits: 2), let monthIndex = months.firstIndex(of: fields[2]),
              let year = number(fields[3].utf8, maximumDigits: 4)
        else { return nil }
        let clock = fields[4].split(separator: ":", omittingEmptySubsequences: false)
        guard clock.count == 3, clock.allSatisfy({ $0.utf8.count == 2 }),
              let hour = number(clock[0].utf8, maximumDigits: 2), let minute = number(clock[1].utf8, maximumDigits: 2),
              let second = number(clock[2].utf8, maximumDigits: 2)
        else { return nil }
        return signingTime(year: year, month: Int64(monthIndex + 1), day: day, hour: hour, minute: minute, second: second)
    }

    static func signingTime(year: Int64, month: Int64, day: Int64, hour: Int64, minute: Int64, second: Int64) -> SigningTime? {
        guard (1...12).contains(month), (1...daysInMonth(month, year: year)).contains(day), hour < 24, minute < 60, second < 60 else {
            return nil
        }
        let seconds = daysSince1970(year: year, month: month, day: day) * 86_400 + hour * 3_600 + minute * 60 + second
        let iso = [padded(year, 4), padded(month, 2), padded(day, 2), "T", padded(hour, 2), padded(minute, 2), padded(second, 2), "Z"].joined()
        return SigningTime(iso: iso, seconds: seconds)
    }

    static func daysInMonth(_ month: Int64, year: Int64) -> Int64 {
        let isLeap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let lengths: [Int64] = [31, isLeap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        return lengths[Int(month - 1)]
    }

    /// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
    static func daysSince1970(year: Int64, month: Int64, day: Int64) -> Int64 {
        let marchYear = month <= 2 ? year - 1 : year
        let era = (marchYear >= 0 ? marchYear : marchYear - 399) / 400
        let yearOfEra = marchYear - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    static func padded(_ value: Int64, _ width: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    /// The decimal number `digits` spells: nil unless 1 to `maximumDigits` ASCII digits.
    static func number(_ digits: some Collection<UInt8>, maximumDigits: Int) -> Int64? {
        guard (1...maximumDigits).contains(digits.count), digits.allSatisfy(isDigit) else { return nil }
        return digits.reduce(Int64(0)) { $0 * 10 + Int64($1 - UInt8(ascii: "0")) }
    }

    // MARK: - Encoding

    /// The query's `name=value` pairs as on the wire; empty pairs (`a&&b`) are skipped.
    static func rawParameters(_ rawQuery: String) -> [(name: Substring, value: Substring)] {
        rawQuery.split(separator: "&").map { pair -> (name: Substring, value: Substring) in
            guard let equals = pair.firstIndex(of: "=") else { return (name: pair, value: pair[pair.endIndex...]) }
            return (name: pair[..<equals], value: pair[pair.index(after: equals)...])
        }
    }

    /// The query's parameters, percent-decoded (`+` stays a plus sign).
    static func decodedParameters(_ rawQuery: String) -> [(name: String, value: String)] {
        rawParameters(rawQuery).map {
            (name: String(decoding: percentDecoded($0.name), as: UTF8.self),
             value: String(decoding: percentDecoded($0.value), as: UTF8.self))
        }
    }

    /// The bytes `text` percent-encodes; a `%` not followed by two hex digits stands for itself.
    static func percentDecoded(_ text: Substring) -> [UInt8] {
        let bytes = Array(text.utf8)
        var decoded: [UInt8] = []
        decoded.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "%"), index + 2 < bytes.count,
               let high = Hex.digitValue(bytes[index + 1]), let low = Hex.digitValue(bytes[index + 2]) {
                decoded.append(high << 4 | low)
                index += 3
            } else {
                decoded.append(bytes[index])
                index += 1
            }
        }
        return decoded
    }

    /// AWS's UriEncode: unreserved bytes (`A-Z a-z 0-9 - _ . ~`) kept, `/` kept if asked, every
    /// other byte `%XX` with upper-case hex.
    static func uriEncoded(_ bytes: [UInt8], keepingSlash: Bool) -> String {
        let hexDigits = Array("0123456789ABCDEF".utf8)
        var encoded: [UInt8] = []
        encoded.reserveCapacity(bytes.count)
        for byte in bytes {
            if isUnreserved(byte) || (keepingSlash && byte == UInt8(ascii: "/")) {
                encoded.append(byte)
            } else {
                encoded.append(UInt8(ascii: "%"))
                encoded.append(hexDigits[Int(byte >> 4)])
                encoded.append(hexDigits[Int(byte & 0x0F)])
            }
        }
        return String(decoding: encoded, as: UTF8.self)
    }

    /// A header value trimmed, its runs of whitespace made one space.
    static func trimmedHeaderValue(_ value: String) -> String {
        let words = Array(value.utf8).split(whereSeparator: isASCIIWhitespace)
        return String(decoding: Array(words.joined(separator: [UInt8(ascii: " ")])), as: UTF8.self)
    }

    static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
            true
        default:
            false
        }
    }

    static func isDigit(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    static func isASCIIWhitespace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || (0x09...0x0D).contains(byte)
    }

    // MARK: - Crypto

    static func hmacSHA256(key: [UInt8], message: String) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Data(message.utf8), using: SymmetricKey(data: key)))
    }

    /// Whether two signatures are equal, in time that does not depend on where they differ.
    static func constantTimeEqual(_ left: String, _ right: String) -> Bool {
        let leftBytes = Array(left.utf8), rightBytes = Array(right.utf8)
        guard leftBytes.count == rightBytes.count else { return false }
        var difference: UInt8 = 0
        for index in leftBytes.indices {
            difference |= leftBytes[index] ^ rightBytes[index]
        }
        return difference == 0
    }
}
