import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import TYDFSCore

/// A bucket as ListBuckets reports it.
public struct BucketSummary: Sendable, Equatable {
    public var name: String
    public var creationDateMillis: Int64

    public init(name: String, creationDateMillis: Int64) {
        self.name = name
        self.creationDateMillis = creationDateMillis
    }
}

/// One uploaded part of a multipart upload, as ListParts reports it.
public struct PartSummary: Sendable, Equatable {
    public var partNumber: Int
    /// Quoted form, like `"9b2cf535f27731c974343645a3985328"`.
    public var etag: String
    public var sizeBytes: Int64
    public var lastModifiedMillis: Int64

    public init(partNumber: Int, etag: String, sizeBytes: Int64, lastModifiedMillis: Int64) {
        self.partNumber = partNumber
        self.etag = etag
        self.sizeBytes = sizeBytes
        self.lastModifiedMillis = lastModifiedMillis
    }
}

/// One page of ListParts: the parts of an upload after `partNumberMarker`.
public struct PartListing: Sendable, Equatable {
    public var bucket: String
    public var key: String
    public var uploadID: String
    public var partNumberMarker: Int
    /// The part number the next page starts after: the last part on this page (0 when none).
    public var nextPartNumberMarker: Int
    public var maxParts: Int
    public var isTruncated: Bool
    public var parts: [PartSummary]

    public init(
        bucket: String, key: String, uploadID: String, partNumberMarker: Int, nextPartNumberMarker: Int,
        maxParts: Int, isTruncated: Bool, parts: [PartSummary]
    ) {
        self.bucket = bucket
        self.key = key
        self.uploadID = uploadID
        self.partNumberMarker = partNumberMarker
        self.nextPartNumberMarker = nextPartNumberMarker
        self.maxParts = maxParts
        self.isTruncated = isTruncated
        self.parts = parts
    }
}

/// A multipart upload in progress, as ListMultipartUploads reports it.
public struct UploadSummary: Sendable, Equatable {
    public var key: String
    public var uploadID: String
    public var initiatedMillis: Int64

    public init(key: String, uploadID: String, initiatedMillis: Int64) {
        self.key = key
        self.uploadID = uploadID
        self.initiatedMillis = initiatedMillis
    }
}

/// One page of ListMultipartUploads: the uploads of a bucket after a (key, upload ID) marker.
public struct UploadListing: Sendable, Equatable {
    public var bucket: String
    public var prefix: String
    public var keyMarker: String
    public var uploadIDMarker: String
    public var nextKeyMarker: String
    public var nextUploadIDMarker: String
    public var maxUploads: Int
    public var isTruncated: Bool
    public var uploads: [UploadSummary]

    public init(
        bucket: String, prefix: String = "", keyMarker: String = "", uploadIDMarker: String = "",
        nextKeyMarker: String = "", nextUploadIDMarker: String = "", maxUploads: Int, isTruncated: Bool,
        uploads: [UploadSummary]
    ) {
        self.bucket = bucket
        self.prefix = prefix
        self.keyMarker = keyMarker
        self.uploadIDMarker = uploadIDMarker
        self.nextKeyMarker = nextKeyMarker
        self.nextUploadIDMarker = nextUploadIDMarker
        self.maxUploads = maxUploads
        self.isTruncated = isTruncated
        self.uploads = uploads
    }
}

/// What became of one key of a DeleteObjects request.
public enum DeleteOutcome: Sendable, Equatable {
    case deleted(key: String)
    case failed(key: String, error: S3Error)
}

/// One object a DeleteObjects request names.
public struct ObjectToDelete: Sendable, Equatable {
    /// The key exactly as sent: leading and trailing spaces are part of it.
    public var key: String
    /// Sent by version-aware clients; TYDFS keeps no versions.
    public var versionID: String?

    public init(key: String, versionID: String? = nil) {
        self.key = key
        self.versionID = versionID
    }
}

/// A DeleteObjects request body, read.
public struct DeleteObjectsRequest: Sendable, Equatable {
    /// Quiet mode: the response lists failures only.
    public var quiet: Bool
    public var objects: [ObjectToDelete]

    public init(quiet: Bool, objects: [ObjectToDelete]) {
        self.quiet = quiet
        self.objects = objects
    }
}

/// One part a CompleteMultipartUpload request names.
public struct CompletedPart: Sendable, Equatable {
    public var partNumber: Int
    /// Always in quoted form (`"abc"`), whether or not the client quoted it.
    public var etag: String

    public init(partNumber: Int, etag: String) {
        self.partNumber = partNumber
        self.etag = etag
    }
}

/// The XML of the S3 API: response documents rendered as text, and the few request bodies the
/// gateway accepts, read into values.
///
/// Responses are built as strings rather than through an XML library: they are flat and few,
/// and building them by hand keeps every byte (escaping, element order, date format) visible and
/// tested. Request bodies go through `XMLParser`, which knows the corners of XML (entities,
/// CDATA, namespaces) a hand-written reader would get wrong.
public enum S3XML {
    public static let namespace = "http://s3.amazonaws.com/doc/2006-03-01/"
    /// The ID and display name of the one owner every bucket and object has.
    public static let ownerID = "tydfs"
    /// The region whose GetBucketLocation answer is an empty element, as S3 answers for it.
    public static let defaultRegion = "us-east-1"
    /// Most keys one DeleteObjects request may name.
    public static let maxObjectsPerDelete = 1000
    /// Highest part number of a multipart upload.
    public static let maxPartNumber = 10000

    // MARK: Responses

    public static func listAllMyBucketsResult(_ buckets: [BucketSummary]) -> String {
        var writer = S3XMLWriter()
        writer.open("ListAllMyBucketsResult", namespaced: true)
        writer.owner()
        writer.open("Buckets")
        for bucket in buckets {
            writer.open("Bucket")
            writer.leaf("Name", bucket.name)
            writer.leaf("CreationDate", iso8601(millis: bucket.creationDateMillis))
            writer.close("Bucket")
        }
        writer.close("Buckets")
        writer.close("ListAllMyBucketsResult")
        return writer.text
    }

    /// ListObjects (version 1) or ListObjectsV2, as `parameters.version` says.
    ///
    /// With `encoding-type=url` the elements S3 encodes (Key, Prefix, Delimiter, StartAfter,
    /// Marker, NextMarker, CommonPrefixes/Prefix) go through `urlEncoded`; ContinuationToken is
    /// ours and base64url, so it needs none.
    public static func listBucketResult(bucket: String, parameters: ListParameters, page: ListPage) -> String {
        let encode = parameters.encodingTypeURL
        var writer = S3XMLWriter()
        writer.open("ListBucketResult", namespaced: true)
        writer.leaf("Name", bucket)
        writer.leaf("Prefix", listed(parameters.prefix, urlEncode: encode))
        switch parameters.version {
        case .v2:
            if let delimiter = parameters.delimiter { writer.leaf("Delimiter", listed(delimiter, urlEncode: encode)) }
            writer.leaf("MaxKeys", parameters.maxKeys)
            writer.leaf("KeyCount", page.keyCount)
            writer.leaf("IsTruncated", page.isTruncated)
            if let token = parameters.continuationToken { writer.leaf("ContinuationToken", token) }
            if let next = page.nextContinuationToken { writer.leaf("NextContinuationToken", next) }
            if let startAfter = parameters.startAfter { writer.leaf("StartAfter", listed(startAfter, urlEncode: encode)) }
        case .v1:
            writer.leaf("Marker", listed(parameters.marker ?? "", urlEncode: encode))
            if let next = page.nextMarker { writer.leaf("NextMarker", listed(next, urlEncode: encode)) }
            writer.leaf("MaxKeys", parameters.maxKeys)
            if let delimiter = parameters.delimiter { writer.leaf("Delimiter", listed(delimiter, urlEncode: encode)) }
            writer.leaf("IsTruncated", page.isTruncated)
        }
        if encode { writer.leaf("EncodingType", "url") }
        let withOwner = parameters.version == .v1 || parameters.fetchOwner
        for object in page.contents {
            writer.open("Contents")
            writer.leaf("Key", listed(object.key, urlEncode: encode))
            writer.leaf("LastModified", iso8601(millis: object.lastModifiedMillis))
            writer.leaf("ETag", object.etag)
            writer.leaf("Size", object.sizeBytes)
            if withOwner { writer.owner() }
            writer.leaf("StorageClass", "STANDARD")
            writer.close("Contents")
        }
        for prefix in page.commonPrefixes {
            writer.open("CommonPrefixes")
            writer.leaf("Prefix", listed(prefix, urlEncode: encode))
            writer.close("CommonPrefixes")
        }
        writer.close("ListBucketResult")
        return writer.text
    }

    /// GetBucketLocation. S3 answers an empty element for us-east-1, and SDKs read an empty
    /// answer as us-east-1; any other region is named.
    public static func locationConstraint(region: String) -> String {
        var writer = S3XMLWriter()
        if region == defaultRegion {
            writer.empty("LocationConstraint", namespaced: true)
        } else {
            writer.open("LocationConstraint", namespaced: true)
            writer.text += escaped(region)
            writer.close("LocationConstraint")
        }
        return writer.text
    }

    public static func copyObjectResult(etag: String, lastModifiedMillis: Int64) -> String {
        copyResult("CopyObjectResult", etag: etag, lastModifiedMillis: lastModifiedMillis)
    }

    public static func copyPartResult(etag: String, lastModifiedMillis: Int64) -> String {
        copyResult("CopyPartResult", etag: etag, lastModifiedMillis: lastModifiedMillis)
    }

    public static func initiateMultipartUploadResult(bucket: String, key: String, uploadID: String) -> String {
        var writer = S3XMLWriter()
        writer.open("InitiateMultipartUploadResult", namespaced: true)
        writer.leaf("Bucket", bucket)
        writer.leaf("Key", key)
        writer.leaf("UploadId", uploadID)
        writer.close("InitiateMultipartUploadResult")
        return writer.text
    }

    public static func completeMultipartUploadResult(location: String, bucket: String, key: String, etag: String) -> String {
        var writer = S3XMLWriter()
        writer.open("CompleteMultipartUploadResult", namespaced: true)
        writer.leaf("Location", location)
        writer.leaf("Bucket", bucket)
        writer.leaf("Key", key)
        writer.leaf("ETag", etag)
        writer.close("CompleteMultipartUploadResult")
        return writer.text
    }

    public static func listPartsResult(_ listing: PartListing) -> String {
        var writer = S3XMLWriter()
        writer.open("ListPartsResult", namespaced: true)
        writer.leaf("Bucket", listing.bucket)
        writer.leaf("Key", listing.key)
        writer.leaf("UploadId", listing.uploadID)
        writer.owner("Initiator")
        writer.owner()
        writer.leaf("StorageClass", "STANDARD")
        writer.leaf("PartNumberMarker", listing.partNumberMarker)
        writer.leaf("NextPartNumberMarker", listing.nextPartNumberMarker)
        writer.leaf("MaxParts", listing.maxParts)
        writer.leaf("IsTruncated", listing.isTruncated)
        for part in listing.parts {
            writer.open("Part")
            writer.leaf("PartNumber", part.partNumber)
            writer.leaf("LastModified", iso8601(millis: part.lastModifiedMillis))
            writer.leaf("ETag", part.etag)
            writer.leaf("Size", part.sizeBytes)
            writer.close("Part")
        }
        writer.close("ListPartsResult")
        return writer.text
    }

    public static func listMultipartUploadsResult(_ listing: UploadListing) -> String {
        var writer = S3XMLWriter()
        writer.open("ListMultipartUploadsResult", namespaced: true)
        writer.leaf("Bucket", listing.bucket)
        writer.leaf("KeyMarker", listing.keyMarker)
        writer.leaf("UploadIdMarker", listing.uploadIDMarker)
        writer.leaf("NextKeyMarker", listing.nextKeyMarker)
        writer.leaf("NextUploadIdMarker", listing.nextUploadIDMarker)
        writer.leaf("Prefix", listing.prefix)
        writer.leaf("MaxUploads", listing.maxUploads)
        writer.leaf("IsTruncated", listing.isTruncated)
        for upload in listing.uploads {
            writer.open("Upload")
            writer.leaf("Key", upload.key)
            writer.leaf("UploadId", upload.uploadID)
            writer.owner("Initiator")
            writer.owner()
            writer.leaf("StorageClass", "STANDARD")
            writer.leaf("Initiated", iso8601(millis: upload.initiatedMillis))
            writer.close("Upload")
        }
        writer.close("ListMultipartUploadsResult")
        return writer.text
    }

    /// DeleteObjects: every outcome, or in quiet mode the failures only.
    public static func deleteResult(_ outcomes: [DeleteOutcome], quiet: Bool) -> String {
        var writer = S3XMLWriter()
        writer.open("DeleteResult", namespaced: true)
        for outcome in outcomes {
            switch outcome {
            case .deleted(let key):
                guard !quiet else { continue }
                writer.open("Deleted")
                writer.leaf("Key", key)
                writer.close("Deleted")
            case .failed(let key, let error):
                writer.open("Error")
                writer.leaf("Key", key)
                writer.leaf("Code", error.code)
                writer.leaf("Message", error.message)
                writer.close("Error")
            }
        }
        writer.close("DeleteResult")
        return writer.text
    }

    // MARK: Request bodies

    /// A DeleteObjects body: `<Delete><Quiet>…</Quiet><Object><Key>…</Key></Object>…</Delete>`.
    /// `MalformedXML` unless it is well-formed, names 1 to 1000 objects, each with a Key, and any
    /// Quiet is `true` or `false`.
    public static func parseDeleteObjects(_ body: Data) throws(S3Error) -> DeleteObjectsRequest {
        let root = try ParsedElement.parse(body, root: "Delete")
        var objects: [ObjectToDelete] = []
        for element in root.children where element.name == "Object" {
            guard let key = element.child(named: "Key") else { throw .malformedXML() }
            objects.append(ObjectToDelete(key: key.text, versionID: element.child(named: "VersionId")?.trimmedText))
        }
        guard (1...maxObjectsPerDelete).contains(objects.count) else { throw .malformedXML() }
        var quiet = false
        if let quietElement = root.child(named: "Quiet") {
            switch quietElement.trimmedText.lowercased() {
            case "true": quiet = true
            case "false": quiet = false
            default: throw .malformedXML()
            }
        }
        return DeleteObjectsRequest(quiet: quiet, objects: objects)
    }

    /// A CompleteMultipartUpload body: `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>
    /// <ETag>"…"</ETag></Part>…</CompleteMultipartUpload>`; other elements of a Part (checksums)
    /// are ignored. `MalformedXML` unless well-formed with at least one Part, each with an integer
    /// PartNumber and an ETag; `InvalidArgument` for a part number outside 1...10000;
    /// `InvalidPartOrder` unless part numbers strictly ascend (a repeated number included, as
    /// MinIO does).
    public static func parseCompleteMultipartUpload(_ body: Data) throws(S3Error) -> [CompletedPart] {
        let root = try ParsedElement.parse(body, root: "CompleteMultipartUpload")
        var parts: [CompletedPart] = []
        for element in root.children where element.name == "Part" {
            guard let numberText = element.child(named: "PartNumber")?.trimmedText, let number = Int(numberText),
                  let etag = element.child(named: "ETag")?.trimmedText
            else { throw .malformedXML() }
            guard (1...maxPartNumber).contains(number) else {
                throw .invalidArgument("Part number must be an integer between 1 and \(maxPartNumber), inclusive", resource: numberText)
            }
            if let previous = parts.last, previous.partNumber >= number { throw .invalidPartOrder() }
            parts.append(CompletedPart(partNumber: number, etag: quotedETag(etag)))
        }
        guard !parts.isEmpty else { throw .malformedXML() }
        return parts
    }

    /// A CreateBucket body: the LocationConstraint it asks for, or nil for an empty body or an
    /// empty or missing LocationConstraint (both mean us-east-1). `MalformedXML` for any other
    /// body than a CreateBucketConfiguration.
    public static func parseCreateBucketConfiguration(_ body: Data) throws(S3Error) -> String? {
        guard body.contains(where: { !isXMLWhitespace($0) }) else { return nil }
        let root = try ParsedElement.parse(body, root: "CreateBucketConfiguration")
        guard let location = root.child(named: "LocationConstraint")?.trimmedText, !location.isEmpty else { return nil }
        return location
    }

    // MARK: Text

    /// A date as S3 writes it in XML: ISO 8601 in UTC with milliseconds, like
    /// `2026-11-29T08:00:00.000Z`.
    public static func iso8601(millis: Int64) -> String {
        let time = CivilTime(millisSince1970: millis)
        return "\(padded(time.year, 4))-\(padded(time.month, 2))-\(padded(time.day, 2))T"
            + "\(padded(time.hour, 2)):\(padded(time.minute, 2)):\(padded(time.second, 2)).\(padded(time.millisecond, 3))Z"
    }

    /// A date as HTTP headers write it (`Last-Modified`, RFC 7231's IMF-fixdate), like
    /// `Sun, 29 Nov 2026 08:30:00 GMT`; seconds only.
    public static func httpDate(millis: Int64) -> String {
        let time = CivilTime(millisSince1970: millis)
        let weekdays = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        return "\(weekdays[time.weekday]), \(padded(time.day, 2)) \(months[Int(time.month) - 1]) \(padded(time.year, 4)) "
            + "\(padded(time.hour, 2)):\(padded(time.minute, 2)):\(padded(time.second, 2)) GMT"
    }

    /// `text` escaped for XML content or attribute values: the five markup characters as named
    /// entities, and control characters below U+0020 as character references. Tab, CR and LF are
    /// referenced too, so a key holding them survives a parser's line-end and whitespace
    /// handling; this is how S3 writes such keys (strict XML 1.0 parsers reject the other control
    /// characters however written, which is what `encoding-type=url` is for).
    public static func escaped(_ text: String) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&apos;"
            case _ where scalar.value < 0x20: result += "&#x\(String(scalar.value, radix: 16, uppercase: true));"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    /// `text` as S3 writes keys and prefixes under `encoding-type=url`: every UTF-8 byte
    /// percent-encoded (upper-case hex) except RFC 3986's unreserved characters and '/'.
    ///
    /// A space becomes `%20`, not `+`: Ceph's s3-tests (test_bucket_list_encoding_basic)
    /// expect `quux%20ab/` from S3, and `%20` decodes to a space under every decoder clients use
    /// (botocore's `unquote_plus`, Java's `URLDecoder`, plain percent-decoding), where `+`
    /// survives as `+` under plain percent-decoding. A literal '+' is `%2B` either way.
    public static func urlEncoded(_ text: String) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            if isUnreservedOrSlash(byte) {
                result.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                result += "%" + hexDigits[Int(byte >> 4)] + hexDigits[Int(byte & 0x0f)]
            }
        }
        return result
    }

    // MARK: Helpers

    private static let hexDigits = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "A", "B", "C", "D", "E", "F"]

    private static func isUnreservedOrSlash(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"), UInt8(ascii: "/"):
            return true
        default:
            return false
        }
    }

    private static func isXMLWhitespace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r")
    }

    /// A key, prefix or marker of a listing, URL-encoded when the request asked for that.
    private static func listed(_ text: String, urlEncode: Bool) -> String {
        urlEncode ? urlEncoded(text) : text
    }

    private static func copyResult(_ element: String, etag: String, lastModifiedMillis: Int64) -> String {
        var writer = S3XMLWriter()
        writer.open(element, namespaced: true)
        writer.leaf("LastModified", iso8601(millis: lastModifiedMillis))
        writer.leaf("ETag", etag)
        writer.close(element)
        return writer.text
    }

    /// An ETag in quoted form, whether or not the client quoted it.
    private static func quotedETag(_ etag: String) -> String {
        var bare = Substring(etag)
        if bare.count >= 2, bare.hasPrefix("\""), bare.hasSuffix("\"") { bare = bare.dropFirst().dropLast() }
        return "\"\(bare)\""
    }

    /// `value` in decimal, with leading zeros to `width` digits.
    private static func padded(_ value: Int64, _ width: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}

/// Writes an XML document as text, escaping every value; S3's responses need no more than
/// nested elements with text.
struct S3XMLWriter {
    var text = #"<?xml version="1.0" encoding="UTF-8"?>"#

    mutating func open(_ name: String, namespaced: Bool = false) {
        text += namespaced ? #"<\#(name) xmlns="\#(S3XML.namespace)">"# : "<\(name)>"
    }

    mutating func close(_ name: String) {
        text += "</\(name)>"
    }

    mutating func empty(_ name: String, namespaced: Bool) {
        text += namespaced ? #"<\#(name) xmlns="\#(S3XML.namespace)"/>"# : "<\(name)/>"
    }

    mutating func leaf(_ name: String, _ value: String) {
        text += "<\(name)>\(S3XML.escaped(value))</\(name)>"
    }

    mutating func leaf(_ name: String, _ value: some BinaryInteger) {
        text += "<\(name)>\(String(value))</\(name)>"
    }

    mutating func leaf(_ name: String, _ value: Bool) {
        text += "<\(name)>\(value ? "true" : "false")</\(name)>"
    }

    /// The owner element (`Owner`, or `Initiator` of an upload): TYDFS has one owner.
    mutating func owner(_ name: String = "Owner") {
        open(name)
        leaf("ID", S3XML.ownerID)
        leaf("DisplayName", S3XML.ownerID)
        close(name)
    }
}

/// An element of a request body: its local name (namespace prefix dropped), its text, and the
/// elements inside it. Request bodies are a few kilobytes, so a tree is the simplest way to read
/// them.
struct ParsedElement: Equatable {
    var name: String
    var text = ""
    var children: [ParsedElement] = []

    /// The first child named `name`.
    func child(named name: String) -> ParsedElement? {
        children.first { $0.name == name }
    }

    var trimmedText: String {
        text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The root element of `body`, which must be named `root`; `MalformedXML` when the body is not
    /// well-formed XML with that root. Bodies with a document type declaration are refused too:
    /// S3 clients never send one, and refusing them rules out entity-expansion attacks.
    static func parse(_ body: Data, root expectedRoot: String) throws(S3Error) -> ParsedElement {
        guard body.range(of: Data("<!DOCTYPE".utf8)) == nil, body.range(of: Data("<!ENTITY".utf8)) == nil else {
            throw .malformedXML()
        }
        let parser = XMLParser(data: body)
        parser.shouldProcessNamespaces = true
        parser.shouldResolveExternalEntities = false
        let builder = ElementTreeBuilder()
        parser.delegate = builder
        let parsed = parser.parse()
        guard parsed, let root = builder.completeRoot, root.name == expectedRoot else { throw .malformedXML() }
        return root
    }
}

/// The `XMLParser` delegate that builds a `ParsedElement` tree. It records parse errors itself:
/// on Linux `parse()` can return true for a document with unclosed elements.
final class ElementTreeBuilder: NSObject, XMLParserDelegate {
    private var openElements: [ParsedElement] = []
    private var root: ParsedElement?
    private var failed = false

    /// The root element, if the document was complete and well-formed.
    var completeRoot: ParsedElement? {
        failed || !openElements.isEmpty ? nil : root
    }

    func parser(
        _ parser: XMLParser,
        didStartElement elementName: String,
        namespaceURI: String?,
        qualifiedName qName: String?,
        attributes attributeDict: [String: String]
    ) {
        if openElements.isEmpty, root != nil { failed = true }
        openElements.append(ParsedElement(name: Self.localName(elementName)))
    }

    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?) {
        guard let finished = openElements.popLast() else {
            failed = true
            return
        }
        if openElements.isEmpty {
            root = finished
        } else {
            openElements[openElements.count - 1].children.append(finished)
        }
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        appendText(string)
    }

    func parser(_ parser: XMLParser, foundCDATA CDATABlock: Data) {
        appendText(String(decoding: CDATABlock, as: UTF8.self))
    }

    func parser(_ parser: XMLParser, parseErrorOccurred parseError: any Error) {
        failed = true
    }

    private func appendText(_ text: String) {
        guard !openElements.isEmpty else { return }
        openElements[openElements.count - 1].text += text
    }

    /// `Delete` for `s3:Delete`: whether or not the parser processed namespaces, only the local
    /// name counts.
    private static func localName(_ name: String) -> String {
        guard let colon = name.lastIndex(of: ":") else { return name }
        return String(name[name.index(after: colon)...])
    }
}
