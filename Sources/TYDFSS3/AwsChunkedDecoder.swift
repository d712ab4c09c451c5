import Crypto
import Foundation
import TYDFSCore

/// An incremental decoder of `Content-Encoding: aws-chunked` request bodies: the framing S3 SDKs
/// wrap an upload in when they stream it (`x-amz-content-sha256` of
/// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`, `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` or
/// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`). The HTTP layer has already removed its own
/// chunked transfer coding; what is left is
///
///     hex-size[;chunk-signature=<64 hex>]\r\n <size bytes> \r\n   (repeated)
///     0[;chunk-signature=<64 hex>]\r\n
///     name:value\r\n …                                           (trailers, if any)
///     [x-amz-trailer-signature:<64 hex>\r\n]                      (signed trailers)
///     \r\n
///
/// Signed chunks chain: each chunk's signature covers the one before, starting from the seed
/// signature of the request's `Authorization` header; the trailer signature covers the final
/// chunk's. Feed the wire bytes in any slicing; the decoder hands back the payload.
///
/// Payload bytes are handed back as they arrive, before the signature of their chunk (checked
/// when the chunk's last byte arrives) and the trailing checksum (which the caller checks against
/// `finish()`'s trailers) can be checked: nothing is to be committed before `finish()` returns.
///
/// Pure: no I/O and no clock. Errors are S3's: `IncompleteBody` for a body that ends early,
/// `SignatureDoesNotMatch` for a chunk or trailer signature that is wrong or missing,
/// `MalformedTrailerError` for trailers that cannot be read or were not declared, and
/// `InvalidRequest` for framing that is not aws-chunked. After an error every call throws it again.
public struct AwsChunkedDecoder: Sendable {
    /// How the body's chunks are signed, from the request's `x-amz-content-sha256`.
    public enum Mode: Sendable, Equatable {
        /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER` (botocore and the Go and Java SDKs over HTTPS):
        /// plain chunks, then trailers. Also reads unsigned aws-chunked bodies without trailers.
        case unsignedWithTrailer
        /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` (`withTrailer: false`) or
        /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER` (`withTrailer: true`). `date` is the
        /// request's `yyyyMMdd'T'HHmmss'Z'` and `scope` its credential scope, as in `SigV4Verified`.
        case signed(signingKey: [UInt8], seedSignature: String, date: String, scope: String, withTrailer: Bool)
    }

    /// The longest chunk-size line or trailer line accepted, without its CRLF.
    public static let maximumLineLength = 4096
    /// The largest chunk accepted. SDKs send 64 KiB (signed) to 1 MiB (botocore) chunks.
    public static let maximumChunkSize = 16 << 20
    /// The most trailers accepted.
    public static let maximumTrailerCount = 16

    static let trailerSignatureName = "x-amz-trailer-signature"
    static let chunkSignaturePrefix = Array("chunk-signature=".utf8)
    static let emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    private enum State: Sendable, Equatable {
        /// Reading `hex-size[;extensions]\r\n`.
        case chunkLine
        /// Copying a chunk's data; `remaining` bytes of it are still to come.
        case chunkData(remaining: Int)
        /// Expecting the CR, then the LF, that end a chunk's data.
        case chunkDataCR
        case chunkDataLF
        /// After the final (empty) chunk: reading trailer lines up to the empty line.
        case trailerLine
        /// The empty line that ends the body has been read.
        case finished
    }

    private let bodyMode: Mode
    private let declaredTrailers: [String]
    private let decodedLength: Int64?

    private var state: State = .chunkLine
    private var failure: S3Error?
    /// The bytes of the line being read, without its LF (its CR included, if it came).
    private var line: [UInt8] = []
    /// Payload bytes decoded so far.
    public private(set) var decodedByteCount: Int64 = 0
    private var chunkCount = 0

    // Signed mode only.
    private var previousSignature: String
    private var claimedChunkSignature = ""
    private var chunkHash = SendableHashFunction(SHA256())

    private var trailers: [(name: String, value: String)] = []
    private var claimedTrailerSignature: String?

    /// `declaredTrailers`: the names the `x-amz-trailer` header announces (comma-separated values
    /// are split; case does not matter); a trailer that is not declared, or a declared one that
    /// does not come, is refused. `decodedLength`: `x-amz-decoded-content-length`, which the
    /// payload must match exactly when given.
    public init(mode: Mode, declaredTrailers: [String] = [], decodedLength: Int64? = nil) {
        self.bodyMode = mode
        self.declaredTrailers = declaredTrailers
            .flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            .filter { !$0.isEmpty }
        self.decodedLength = decodedLength
        if case .signed(_, let seedSignature, _, _, _) = mode {
            previousSignature = seedSignature.lowercased()
        } else {
            previousSignature = ""
        }
    }

    /// The mode for a request SigV4 verified, from its payload hash; nil when the payload hash is
    /// not one of the streaming ones (a SHA-256, `UNSIGNED-PAYLOAD`).
    public static func mode(for verified: SigV4Verified) -> Mode? {
        switch verified.payloadHash {
        case SigV4.streamingUnsignedPayloadTrailer:
            .unsignedWithTrailer
        case SigV4.streamingSignedPayload, SigV4.streamingSignedPayloadTrailer:
            .signed(signingKey: verified.signingKey, seedSignature: verified.seedSignature,
                    date: verified.date, scope: verified.scope,
                    withTrailer: verified.payloadHash == SigV4.streamingSignedPayloadTrailer)
        default:
            nil
        }
    }

    /// Whether the final chunk and the trailers have all been read.
    public var isComplete: Bool { state == .finished }

    // MARK: - Feeding

    /// Feeds wire bytes; returns the payload bytes they complete (possibly none).
    public mutating func feed(_ bytes: some Collection<UInt8>) throws(S3Error) -> [UInt8] {
        var output: [UInt8] = []
        var thrown: S3Error?
        let handled: Void? = bytes.withContiguousStorageIfAvailable { buffer in
            do throws(S3Error) {
                try feed(UnsafeRawBufferPointer(buffer)) { output.append(contentsOf: $0.assumingMemoryBound(to: UInt8.self)) }
            } catch {
                thrown = error
            }
        }
        if handled == nil {
            let copy = Array(bytes)
            copy.withUnsafeBytes { buffer in
                do throws(S3Error) {
                    try feed(buffer) { output.append(contentsOf: $0.assumingMemoryBound(to: UInt8.self)) }
                } catch {
                    thrown = error
                }
            }
        }
        if let thrown { throw thrown }
        return output
    }

    /// Feeds wire bytes, handing each contiguous run of payload they complete to `payload` (the
    /// buffer is valid only during the call): no copy is made here.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer, payload: (UnsafeRawBufferPointer) -> Void) throws(S3Error) {
        if let failure { throw failure }
        do throws(S3Error) {
            try process(bytes, payload: payload)
        } catch {
            failure = error
            throw error
        }
    }

    /// Ends the body: throws `IncompleteBody` unless the final chunk and the trailers (if any)
    /// were complete, and returns the trailers read, by lower-case name (the trailer signature
    /// left out): `["x-amz-checksum-crc32": "DUoRhQ=="]`. Signatures were checked as they came.
    public mutating func finish() throws(S3Error) -> [String: String] {
        if let failure { throw failure }
        guard state == .finished else {
            let error = S3Error.incompleteBody(
                "The request body terminated unexpectedly: the aws-chunked body ended \(whereTruncated) after \(decodedByteCount) payload bytes.")
            failure = error
            throw error
        }
        var read: [String: String] = [:]
        for trailer in trailers { read[trailer.name] = trailer.value }
        return read
    }

    private var whereTruncated: String {
        switch state {
        case .chunkLine: "in a chunk-size line"
        case .chunkData(let remaining): "\(remaining) bytes short of the end of a chunk"
        case .chunkDataCR, .chunkDataLF: "before the CRLF that ends a chunk"
        case .trailerLine: "in the trailers, before the empty line that ends them"
        case .finished: "at its end"
        }
    }

    private var isSigned: Bool {
        if case .signed = bodyMode { return true }
        return false
    }

    private mutating func process(_ bytes: UnsafeRawBufferPointer, payload: (UnsafeRawBufferPointer) -> Void) throws(S3Error) {
        let end = bytes.count
        var index = 0
        while index < end {
            switch state {
            case .chunkLine, .trailerLine:
                var newline = index
                while newline < end && bytes[newline] != Self.lf { newline += 1 }
                // The line may hold its CR besides the longest content.
                guard line.count + (newline - index) <= Self.maximumLineLength + 1 else {
                    throw state == .trailerLine
                        ? Self.malformedTrailer("A trailer line is longer than \(Self.maximumLineLength) bytes.")
                        : S3Error.invalidRequest("An aws-chunked chunk-size line is longer than \(Self.maximumLineLength) bytes.")
                }
                line.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[index..<newline]).assumingMemoryBound(to: UInt8.self))
                if newline == end {
                    index = end
                } else {
                    index = newline + 1
                    try endLine()
                }

            case .chunkData(let remaining):
                let count = min(remaining, end - index)
                let run = UnsafeRawBufferPointer(rebasing: bytes[index..<(index + count)])
                if isSigned { chunkHash.function.update(bufferPointer: run) }
                payload(run)
                decodedByteCount += Int64(count)
                index += count
                if count == remaining {
                    try endChunkData()
                    state = .chunkDataCR
                } else {
                    state = .chunkData(remaining: remaining - count)
                }

            case .chunkDataCR:
                guard bytes[index] == Self.cr else {
                    throw .invalidRequest("The data of aws-chunked chunk \(chunkCount) is not followed by CRLF: the chunk is longer than its size says, or the size is wrong.")
                }
                index += 1
                state = .chunkDataLF

            case .chunkDataLF:
                guard bytes[index] == Self.lf else {
                    throw .invalidRequest("The data of aws-chunked chunk \(chunkCount) is followed by a CR without its LF.")
                }
                index += 1
                state = .chunkLine

            case .finished:
                throw .invalidRequest("The aws-chunked body goes on after the empty line that ends it (\(end - index) more bytes here).")
            }
        }
    }

    // MARK: - Lines

    /// A line's LF has come: checks the CR before it and reads the line.
    private mutating func endLine() throws(S3Error) {
        guard line.last == Self.cr else {
            throw .invalidRequest("An aws-chunked line ends with a bare LF: lines must end with CRLF.")
        }
        line.removeLast()
        guard !line.contains(Self.cr) else {
            throw .invalidRequest("An aws-chunked line holds a CR that is not followed by LF.")
        }
        let content = line
        line.removeAll(keepingCapacity: true)
        if state == .chunkLine {
            try readChunkLine(content)
        } else if content.isEmpty {
            try endTrailers()
        } else {
            try readTrailerLine(content)
        }
    }

    /// `hex-size[;chunk-signature=<64 hex>]`, or, unsigned, `hex-size[;any extensions]`.
    private mutating func readChunkLine(_ content: [UInt8]) throws(S3Error) {
        chunkCount += 1
        let semicolon = content.firstIndex(of: UInt8(ascii: ";"))
        let sizeDigits = content[..<(semicolon ?? content.endIndex)]
        guard !sizeDigits.isEmpty else {
            throw .invalidRequest("aws-chunked chunk \(chunkCount) has no size: its line must start with the size in hex.")
        }
        var size = 0
        for digit in sizeDigits {
            guard let value = Hex.digitValue(digit).map(Int.init) else {
                throw .invalidRequest("aws-chunked chunk \(chunkCount)'s size '\(Self.printable(sizeDigits))' is not hexadecimal.")
            }
            size = size << 4 | value
            guard size <= Self.maximumChunkSize else {
                throw .invalidRequest("aws-chunked chunk \(chunkCount) is larger than \(Self.maximumChunkSize) bytes, the most the gateway accepts in one chunk.")
            }
        }

        if case .signed = bodyMode {
            let extensions = semicolon.map { content[($0 + 1)...] } ?? []
            guard extensions.starts(with: Self.chunkSignaturePrefix) else {
                throw .signatureDoesNotMatch("aws-chunked chunk \(chunkCount) has no chunk-signature, which a STREAMING-AWS4-HMAC-SHA256-PAYLOAD upload must give every chunk.")
            }
            let signature = extensions.dropFirst(Self.chunkSignaturePrefix.count)
            guard signature.count == 64, signature.allSatisfy({ Hex.digitValue($0) != nil }) else {
                throw .signatureDoesNotMatch("The chunk-signature of aws-chunked chunk \(chunkCount) is not 64 hexadecimal digits.")
            }
            claimedChunkSignature = String(decoding: signature, as: UTF8.self).lowercased()
            chunkHash = SendableHashFunction(SHA256())
        }

        if let decodedLength, decodedByteCount + Int64(size) > decodedLength {
            throw .invalidRequest("The aws-chunked body holds more than the \(decodedLength) bytes its x-amz-decoded-content-length declares.")
        }

        if size > 0 {
            state = .chunkData(remaining: size)
            return
        }
        // The final chunk: no data, then the trailers.
        try endChunkData()
        if let decodedLength, decodedByteCount != decodedLength {
            throw .incompleteBody("The request body terminated unexpectedly: the aws-chunked body holds \(decodedByteCount) bytes, and its x-amz-decoded-content-length declares \(decodedLength).")
        }
        state = .trailerLine
    }

    /// A chunk's data is all in: signed, checks its signature.
    private mutating func endChunkData() throws(S3Error) {
        guard case .signed(let signingKey, _, let date, let scope, _) = bodyMode else { return }
        let dataHash = Hex.encode(chunkHash.function.finalize())
        let expected = Self.chunkSignature(
            signingKey: signingKey, date: date, scope: scope, previousSignature: previousSignature, chunkSHA256: dataHash)
        guard SigV4.constantTimeEqual(expected, claimedChunkSignature) else {
            throw .signatureDoesNotMatch("The chunk-signature of aws-chunked chunk \(chunkCount) does not match its data: check the key and signing method, or the body was altered on the way.")
        }
        previousSignature = expected
    }

    // MARK: - Trailers

    private mutating func readTrailerLine(_ content: [UInt8]) throws(S3Error) {
        guard content.allSatisfy({ (0x20...0x7E).contains($0) || $0 == 0x09 }) else {
            throw Self.malformedTrailer("A trailer line holds a byte that is not printable ASCII.")
        }
        guard let colon = content.firstIndex(of: UInt8(ascii: ":")) else {
            throw Self.malformedTrailer("The trailer line '\(Self.printable(content[...]))' has no ':' between its name and value.")
        }
        let name = Self.trimmed(content[..<colon]).lowercased()
        let value = Self.trimmed(content[(colon + 1)...])
        guard !name.isEmpty, !name.contains(" "), !name.contains("\t") else {
            throw Self.malformedTrailer("The trailer line '\(Self.printable(content[...]))' has no name before its ':'.")
        }
        guard claimedTrailerSignature == nil else {
            throw Self.malformedTrailer("The trailer '\(name)' comes after x-amz-trailer-signature, which must be the last trailer.")
        }

        if name == Self.trailerSignatureName {
            guard case .signed(_, _, _, _, true) = bodyMode else {
                throw Self.malformedTrailer("x-amz-trailer-signature came, but the request is not STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER.")
            }
            guard value.utf8.count == 64, value.utf8.allSatisfy({ Hex.digitValue($0) != nil }) else {
                throw .signatureDoesNotMatch("The x-amz-trailer-signature is not 64 hexadecimal digits.")
            }
            claimedTrailerSignature = value.lowercased()
            return
        }

        if case .signed(_, _, _, _, false) = bodyMode {
            throw Self.malformedTrailer("The trailer '\(name)' came, but a STREAMING-AWS4-HMAC-SHA256-PAYLOAD upload has no trailers: use STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER.")
        }
        guard declaredTrailers.contains(name) else {
            throw Self.malformedTrailer("The trailer '\(name)' was not declared in the x-amz-trailer header.")
        }
        guard !trailers.contains(where: { $0.name == name }) else {
            throw Self.malformedTrailer("The trailer '\(name)' came twice.")
        }
        guard trailers.count < Self.maximumTrailerCount else {
            throw Self.malformedTrailer("More than \(Self.maximumTrailerCount) trailers came.")
        }
        trailers.append((name: name, value: value))
    }

    /// The empty line: every declared trailer must have come and, signed, the trailer signature
    /// must match them.
    private mutating func endTrailers() throws(S3Error) {
        for declared in declaredTrailers where !trailers.contains(where: { $0.name == declared }) {
            throw Self.malformedTrailer("The trailer '\(declared)', declared in the x-amz-trailer header, did not come.")
        }
        if case .signed(let signingKey, _, let date, let scope, true) = bodyMode, !(trailers.isEmpty && claimedTrailerSignature == nil) {
            guard let claimedTrailerSignature else {
                throw .signatureDoesNotMatch("The trailers of a STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER upload came without x-amz-trailer-signature.")
            }
            // Signers canonicalize in the order they send (one trailer, in practice), or sorted by name.
            var orders = [trailers]
            if trailers.count > 1 { orders.append(trailers.sorted { $0.name < $1.name }) }
            let matches = orders.contains { order in
                let expected = Self.trailerSignature(
                    signingKey: signingKey, date: date, scope: scope, previousSignature: previousSignature,
                    canonicalTrailers: Self.canonicalTrailers(order))
                return SigV4.constantTimeEqual(expected, claimedTrailerSignature)
            }
            guard matches else {
                throw .signatureDoesNotMatch("The x-amz-trailer-signature does not match the trailers: check the key and signing method, or the trailers were altered on the way.")
            }
        }
        state = .finished
    }

    // MARK: - Signing (what the checks compute; also for clients and tests)

    /// The signature of a chunk: HMAC-SHA256 under the signing key of `AWS4-HMAC-SHA256-PAYLOAD`,
    /// the date, the scope, the previous signature, the SHA-256 of nothing and that of the chunk's
    /// data (lower-case hex), one per line.
    public static func chunkSignature(
        signingKey: [UInt8], date: String, scope: String, previousSignature: String, chunkSHA256: String
    ) -> String {
        SigV4.signature(signingKey: signingKey, stringToSign: [
            "AWS4-HMAC-SHA256-PAYLOAD", date, scope, previousSignature, emptySHA256, chunkSHA256,
        ].joined(separator: "\n"))
    }

    /// The signature of the trailers: HMAC-SHA256 under the signing key of
    /// `AWS4-HMAC-SHA256-TRAILER`, the date, the scope, the final chunk's signature and the SHA-256
    /// of the canonical trailers, one per line.
    public static func trailerSignature(
        signingKey: [UInt8], date: String, scope: String, previousSignature: String, canonicalTrailers: String
    ) -> String {
        SigV4.signature(signingKey: signingKey, stringToSign: [
            "AWS4-HMAC-SHA256-TRAILER", date, scope, previousSignature,
            Hex.encode(SHA256.hash(data: Data(canonicalTrailers.utf8))),
        ].joined(separator: "\n"))
    }

    /// `name:value\n` for each trailer (the trailer signature left out), in the order given.
    public static func canonicalTrailers(_ trailers: [(name: String, value: String)]) -> String {
        trailers.map { $0.name + ":" + $0.value + "\n" }.joined()
    }

    // MARK: - Bytes

    private static let cr = UInt8(ascii: "\r")
    private static let lf = UInt8(ascii: "\n")

    /// The bytes without leading and trailing spaces and tabs, as a string (already checked ASCII).
    private static func trimmed(_ bytes: ArraySlice<UInt8>) -> String {
        var slice = bytes
        while let first = slice.first, first == 0x20 || first == 0x09 { slice.removeFirst() }
        while let last = slice.last, last == 0x20 || last == 0x09 { slice.removeLast() }
        return String(decoding: slice, as: UTF8.self)
    }

    /// At most 64 bytes of a line, for a message, with anything unprintable shown as `?`.
    private static func printable(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes.prefix(64).map { (0x20...0x7E).contains($0) ? $0 : UInt8(ascii: "?") }, as: UTF8.self)
    }

    /// S3's error for trailers it cannot read or did not expect.
    static func malformedTrailer(_ message: String) -> S3Error {
        S3Error(code: "MalformedTrailerError", message: message, httpStatus: 400)
    }
}
