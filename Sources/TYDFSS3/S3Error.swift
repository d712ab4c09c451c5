import Foundation

/// An error as S3 clients expect it: a code they switch on, a message for people, and the
/// HTTP status the gateway answers with.
///
/// SDKs retry, raise typed exceptions and show messages based on `code` alone, so codes and
/// statuses follow the S3 API reference exactly; messages are S3's own unless a more specific
/// one tells the user what to change.
public struct S3Error: Error, Sendable, Equatable {
    public var code: String
    public var message: String
    public var httpStatus: Int
    /// The bucket or object the error is about, as the request named it.
    public var resource: String?

    public init(code: String, message: String, httpStatus: Int, resource: String? = nil) {
        self.code = code
        self.message = message
        self.httpStatus = httpStatus
        self.resource = resource
    }

    /// The body S3 sends with an error response. It has no namespace, as S3's has none.
    public func xml(requestID: String) -> String {
        var writer = S3XMLWriter()
        writer.open("Error")
        writer.leaf("Code", code)
        writer.leaf("Message", message)
        if let resource { writer.leaf("Resource", resource) }
        writer.leaf("RequestId", requestID)
        writer.close("Error")
        return writer.text
    }
}

extension S3Error {
    public static func noSuchBucket(_ message: String = "The specified bucket does not exist", resource: String? = nil) -> S3Error {
        S3Error(code: "NoSuchBucket", message: message, httpStatus: 404, resource: resource)
    }

    public static func noSuchKey(_ message: String = "The specified key does not exist.", resource: String? = nil) -> S3Error {
        S3Error(code: "NoSuchKey", message: message, httpStatus: 404, resource: resource)
    }

    public static func bucketNotEmpty(_ message: String = "The bucket you tried to delete is not empty", resource: String? = nil) -> S3Error {
        S3Error(code: "BucketNotEmpty", message: message, httpStatus: 409, resource: resource)
    }

    public static func bucketAlreadyOwnedByYou(
        _ message: String = "Your previous request to create the named bucket succeeded and you already own it.",
        resource: String? = nil
    ) -> S3Error {
        S3Error(code: "BucketAlreadyOwnedByYou", message: message, httpStatus: 409, resource: resource)
    }

    public static func invalidBucketName(_ message: String = "The specified bucket is not valid.", resource: String? = nil) -> S3Error {
        S3Error(code: "InvalidBucketName", message: message, httpStatus: 400, resource: resource)
    }

    public static func keyTooLong(_ message: String = "Your key is too long", resource: String? = nil) -> S3Error {
        S3Error(code: "KeyTooLongError", message: message, httpStatus: 400, resource: resource)
    }

    public static func invalidArgument(_ message: String, resource: String? = nil) -> S3Error {
        S3Error(code: "InvalidArgument", message: message, httpStatus: 400, resource: resource)
    }

    public static func invalidRange(_ message: String = "The requested range is not satisfiable", resource: String? = nil) -> S3Error {
        S3Error(code: "InvalidRange", message: message, httpStatus: 416, resource: resource)
    }

    public static func malformedXML(
        _ message: String = "The XML you provided was not well-formed or did not validate against our published schema",
        resource: String? = nil
    ) -> S3Error {
        S3Error(code: "MalformedXML", message: message, httpStatus: 400, resource: resource)
    }

    public static func invalidPart(
        _ message: String = "One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part's entity tag.",
        resource: String? = nil
    ) -> S3Error {
        S3Error(code: "InvalidPart", message: message, httpStatus: 400, resource: resource)
    }

    public static func invalidPartOrder(
        _ message: String = "The list of parts was not in ascending order. The parts list must be specified in order by part number.",
        resource: String? = nil
    ) -> S3Error {
        S3Error(code: "InvalidPartOrder", message: message, httpStatus: 400, resource: resource)
    }

    public static func noSuchUpload(
        _ message: String = "The specified multipart upload does not exist. The upload ID might be invalid, or the multipart upload might have been aborted or completed.",
        resource: String? = nil
    ) -> S3Error {
        S3Error(code: "NoSuchUpload", message: message, httpStatus: 404, resource: resource)
    }

    public static func entityTooSmall(
        _ message: String = "Your proposed upload is smaller than the minimum allowed object size.",
        resource: String? = nil
    ) -> S3Error {
        S3Error(code: "EntityTooSmall", message: message, httpStatus: 400, resource: resource)
    }

    public static func signatureDoesNotMatch(
        _ message: String = "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
        resource: String? = nil
    ) -> S3Error {
        S3Error(code: "SignatureDoesNotMatch", message: message, httpStatus: 403, resource: resource)
    }

    public static func invalidAccessKeyId(
        _ message: String = "The AWS Access Key Id you provided does not exist in our records.",
        resource: String? = nil
    ) -> S3Error {
        S3Error(code: "InvalidAccessKeyId", message: message, httpStatus: 403, resource: resource)
    }

    public static func accessDenied(_ message: String = "Access Denied", resource: String? = nil) -> S3Error {
        S3Error(code: "AccessDenied", message: message, httpStatus: 403, resource: resource)
    }

    public static func requestTimeTooSkewed(
        _ message: String = "The difference between the request time and the current time is too large.",
        resource: String? = nil
    ) -> S3Error {
        S3Error(code: "RequestTimeTooSkewed", message: message, httpStatus: 403, resource: resource)
    }

    public static func authorizationHeaderMalformed(_ message: String, resource: String? = nil) -> S3Error {
        S3Error(code: "AuthorizationHeaderMalformed", message: message, httpStatus: 400, resource: resource)
    }

    public static func missingContentLength(
        _ message: String = "You must provide the Content-Length HTTP header.",
        resource: String? = nil
    ) -> S3Error {
        S3Error(code: "MissingContentLength", message: message, httpStatus: 411, resource: resource)
    }

    public static func badDigest(
        _ message: String = "The Content-MD5 you specified did not match what we received.",
        resource: String? = nil
    ) -> S3Error {
        S3Error(code: "BadDigest", message: message, httpStatus: 400, resource: resource)
    }

    public static func invalidDigest(_ message: String = "The Content-MD5 you specified is not valid.", resource: String? = nil) -> S3Error {
        S3Error(code: "InvalidDigest", message: message, httpStatus: 400, resource: resource)
    }

    public static func incompleteBody(
        _ message: String = "You did not provide the number of bytes specified by the Content-Length HTTP header.",
        resource: String? = nil
    ) -> S3Error {
        S3Error(code: "IncompleteBody", message: message, httpStatus: 400, resource: resource)
    }

    public static func notImplemented(
        _ message: String = "A header you provided implies functionality that is not implemented.",
        resource: String? = nil
    ) -> S3Error {
        S3Error(code: "NotImplemented", message: message, httpStatus: 501, resource: resource)
    }

    public static func methodNotAllowed(
        _ message: String = "The specified method is not allowed against this resource.",
        resource: String? = nil
    ) -> S3Error {
        S3Error(code: "MethodNotAllowed", message: message, httpStatus: 405, resource: resource)
    }

    public static func internalError(_ message: String = "We encountered an internal error. Please try again.", resource: String? = nil) -> S3Error {
        S3Error(code: "InternalError", message: message, httpStatus: 500, resource: resource)
    }

    public static func invalidRequest(_ message: String, resource: String? = nil) -> S3Error {
        S3Error(code: "InvalidRequest", message: message, httpStatus: 400, resource: resource)
    }

    public static func preconditionFailed(
        _ message: String = "At least one of the preconditions you specified did not hold.",
        resource: String? = nil
    ) -> S3Error {
        S3Error(code: "PreconditionFailed", message: message, httpStatus: 412, resource: resource)
    }

    public static func contentSHA256Mismatch(
        _ message: String = "The provided 'x-amz-content-sha256' header does not match what was computed.",
        resource: String? = nil
    ) -> S3Error {
        S3Error(code: "XAmzContentSHA256Mismatch", message: message, httpStatus: 400, resource: resource)
    }
}

/// The rules bucket names and object keys must meet before a request touches the namespace.
///
/// A bucket is a top-level folder and a key the path below it, so besides S3's own rules a key
/// must be a path TYDFS can hold: no empty, `.` or `..` segments and no NUL. Checking here,
/// with messages that say what to change, spares clients a vaguer error from deeper down.
public enum S3Naming {
    /// S3's limit on a key's length, in UTF-8 bytes.
    public static let maxKeyBytes = 1024

    /// Throws `InvalidBucketName` unless `name` meets S3's rules for general-purpose buckets.
    public static func validateBucketName(_ name: String) throws(S3Error) {
        if let problem = bucketNameProblem(name) {
            throw .invalidBucketName("The specified bucket is not valid: \(problem).", resource: name)
        }
    }

    /// Throws `KeyTooLongError` or `InvalidArgument` unless `key` is a key TYDFS can store.
    public static func validateObjectKey(_ key: String) throws(S3Error) {
        let bytes = key.utf8.count
        guard bytes > 0 else { throw .invalidArgument("The object key is empty; name the object after the bucket, like /bucket/key.") }
        guard bytes <= maxKeyBytes else {
            throw .keyTooLong("Your key is too long: it is \(bytes) bytes of UTF-8 and the limit is \(maxKeyBytes).", resource: key)
        }
        if let problem = keyPathProblem(key) {
            throw .invalidArgument("Object key '\(key)' \(problem).", resource: key)
        }
    }

    /// What is wrong with a bucket name, in words, or nil when nothing is.
    static func bucketNameProblem(_ name: String) -> String? {
        let bytes = Array(name.utf8)
        guard (3...63).contains(bytes.count) else { return "it is \(bytes.count) characters long; names have 3 to 63" }
        guard bytes.allSatisfy({ isLowerCaseLetterOrDigit($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }) else {
            return "names use only lower-case letters, digits, '.' and '-'"
        }
        guard isLowerCaseLetterOrDigit(bytes[0]), isLowerCaseLetterOrDigit(bytes[bytes.count - 1]) else {
            return "names start and end with a lower-case letter or a digit"
        }
        if name.contains("..") { return "names must not contain two adjacent periods" }
        if looksLikeIPv4Address(name) { return "names must not be formatted as an IP address" }
        if let reserved = reservedPrefixes.first(where: { name.hasPrefix($0) }) { return "the prefix '\(reserved)' is reserved" }
        if let reserved = reservedSuffixes.first(where: { name.hasSuffix($0) }) { return "the suffix '\(reserved)' is reserved" }
        return nil
    }

    /// Prefixes and suffixes S3 reserves for its own kinds of bucket and alias; refusing them keeps
    /// our buckets creatable on S3 as well.
    private static let reservedPrefixes = ["xn--", "sthree-"]
    private static let reservedSuffixes = ["-s3alias", "--ol-s3"]

    private static func isLowerCaseLetterOrDigit(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    /// Four dot-separated runs of digits, like 192.168.5.4.
    private static func looksLikeIPv4Address(_ name: String) -> Bool {
        let parts = name.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { part in
            !part.isEmpty && part.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
        }
    }

    /// Why a key of an acceptable length is not a path TYDFS can hold, completing the sentence
    /// "Object key 'k' …", or nil when it is one. Works on bytes: `Character` comparison would
    /// merge a '/' with a following combining mark.
    static func keyPathProblem(_ key: String) -> String? {
        let slash = UInt8(ascii: "/")
        let dot = UInt8(ascii: ".")
        if key.utf8.contains(0) { return "contains a NUL character, which TYDFS paths cannot hold" }
        if key.utf8.last == slash {
            return "ends in '/': directory markers are not supported; folders exist through the keys below them, so upload 'folder/file' directly"
        }
        for segment in key.utf8.split(separator: slash, omittingEmptySubsequences: false) {
            if segment.isEmpty { return "has an empty path segment (a leading '/' or '//'); TYDFS keys are paths, so remove the extra '/'" }
            if segment.elementsEqual([dot]) || segment.elementsEqual([dot, dot]) {
                return "has a '.' or '..' path segment, which TYDFS paths cannot hold; write the key without it"
            }
        }
        return nil
    }
}
