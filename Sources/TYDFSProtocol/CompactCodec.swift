import TYDFSCore

/// A binary form of the answers on the small-file hot path (batched lookups, opens, commits and
/// chunk writes) and of listings, beside their JSON form.
///
/// A batched lookup answers up to `Limits.maxLookupsPerRequest` files, and Foundation's JSON
/// coders spent about a fifth of the whole machine's CPU on them during `tydfs bench`'s stat
/// phase (perf). A caller that reads this form says so with `Accept: CompactCodec.contentType`;
/// a server from before it ignores the header and answers in JSON, and a caller that does not
/// ask gets JSON, so old and new clients, masters and datakeepers still talk to each other.
public protocol CompactCodable {
    /// Appends the message to `bytes`.
    func encodeCompact(into bytes: inout [UInt8])
    /// Reads one message; throws `protocolViolation` for anything malformed or cut off.
    init(compact reader: inout CompactReader) throws
}

/// The compact form's one entry point and its wire constants: the media type, the version byte
/// that starts every message, and the refusals a master begins its 400s with.
public enum CompactCodec {
    /// The media type of every message in the compact form (version 1 is its first byte).
    public static let contentType = "application/x-tydfs-compact"
    /// How a master begins the message of its 400 for a request body it cannot read as JSON:
    /// what a master from before the form answers to a compact body.
    public static let malformedJSONRequestPrefix = "malformed "
    /// How a master that reads the form begins the message of its 400 for a compact body it
    /// cannot read: that refusal stands (the body is not sent again in JSON).
    public static let malformedCompactRequestPrefix = "malformed compact "
    static let version: UInt8 = 1

    public static func encode(_ message: some CompactCodable) -> [UInt8] {
        var bytes: [UInt8] = [version]
        message.encodeCompact(into: &bytes)
        return bytes
    }

    public static func decode<Message: CompactCodable>(_ type: Message.Type, from bytes: UnsafeRawBufferPointer) throws -> Message {
        var reader = CompactReader(bytes)
        let version = try reader.byte()
        guard version == Self.version else {
            throw TYDFSError(.protocolViolation, "a compact \(Message.self) of version \(version) (this build reads version \(Self.version))")
        }
        let message = try Message(compact: &reader)
        guard reader.isAtEnd else { throw TYDFSError(.protocolViolation, "a compact \(Message.self) with bytes after its end") }
        return message
    }
}

/// Reads the compact form's fields: fixed-size big-endian integers, and strings as a 32-bit
/// length and UTF-8.
public struct CompactReader {
    private let bytes: UnsafeRawBufferPointer
    private var position = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var isAtEnd: Bool { position == bytes.count }

    private mutating func take(_ count: Int) throws -> UnsafeRawBufferPointer {
        guard count >= 0, bytes.count - position >= count else {
            throw TYDFSError(.protocolViolation, "a compact message cut off at byte \(position)")
        }
        defer { position += count }
        return UnsafeRawBufferPointer(rebasing: bytes[position..<(position + count)])
    }

    public mutating func byte() throws -> UInt8 { try take(1)[0] }

    public mutating func bool() throws -> Bool {
        switch try byte() {
        case 0: return false
        case 1: return true
        case let other: throw TYDFSError(.protocolViolation, "a compact message with \(other) where a boolean belongs")
        }
    }

    public mutating func uint64() throws -> UInt64 {
        try take(8).reduce(0) { $0 << 8 | UInt64($1) }
    }

    public mutating func int64() throws -> Int64 { Int64(bitPattern: try uint64()) }

    public mutating func uint32() throws -> UInt32 {
        try take(4).reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// A count of items that each take at least `minimumBytes`: never more than the bytes left
    /// could hold, so a malformed count fails at once instead of being read item by item.
    public mutating func count(ofItemsOfAtLeast minimumBytes: Int) throws -> Int {
        let count = Int(try uint32())
        guard count <= (bytes.count - position) / max(1, minimumBytes) else {
            throw TYDFSError(.protocolViolation, "a compact message counts \(count) items where fewer fit")
        }
        return count
    }

    /// Room to reserve for `count` items read: what a count can make the reader allocate before
    /// the items themselves prove to be there is bounded, whatever the message claims.
    static func reserved(_ count: Int) -> Int { min(count, 1024) }

    public mutating func string() throws -> String {
        let length = Int(try uint32())
        let utf8 = try take(length)
        guard let text = String(validating: utf8, as: UTF8.self) else {
            throw TYDFSError(.protocolViolation, "a compact message with a string that is not UTF-8")
        }
        return text
    }
}

extension CompactReader {
    /// One item's answer in a batch: its value, or the error it would have had alone.
    mutating func answer<Value: CompactCodable>(_ type: Value.Type) throws -> Result<Value, TYDFSError> {
        switch try byte() {
        case 0:
            return .success(try Value(compact: &self))
        case 1:
            let code = try string()
            return .failure(TYDFSError(TYDFSError.Code(rawValue: code), try string()))
        case let other:
            throw TYDFSError(.protocolViolation, "a compact answer of kind \(other)")
        }
    }
}

extension Array where Element == UInt8 {
    /// One item's answer in a batch (see `CompactReader.answer`): `value`, or else `error`.
    mutating func appendCompactAnswer(_ value: (some CompactCodable)?, error: ErrorResponse.Body?) {
        if let value {
            append(0)
            value.encodeCompact(into: &self)
        } else {
            append(1)
            appendCompact(error?.code ?? TYDFSError.Code.protocolViolation.rawValue)
            appendCompact(error?.message ?? "an item of a batch was answered with neither a value nor an error")
        }
    }

    mutating func appendCompact(_ value: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) { append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }

    mutating func appendCompact(_ value: Int64) { appendCompact(UInt64(bitPattern: value)) }

    mutating func appendCompact(_ value: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) { append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }

    mutating func appendCompact(_ value: Bool) { append(value ? 1 : 0) }

    mutating func appendCompact(count: Int) { appendCompact(UInt32(count)) }

    mutating func appendCompact(_ text: String) {
        appendCompact(UInt32(text.utf8.count))
        append(contentsOf: text.utf8)
    }
}

extension LookupResponse: CompactCodable {
    public func encodeCompact(into bytes: inout [UInt8]) {
        bytes.appendCompact(count: answers.count)
        for answer in answers { bytes.appendCompactAnswer(answer.file, error: answer.error) }
    }

    public init(compact reader: inout CompactReader) throws {
        let count = try reader.count(ofItemsOfAtLeast: 9)
        var answers: [Answer] = []
        answers.reserveCapacity(CompactReader.reserved(count))
        for _ in 0..<count { answers.append(Answer(try reader.answer(FileInfo.self))) }
        self.init(answers: answers)
    }
}

extension FileInfo: CompactCodable {
    public func encodeCompact(into bytes: inout [UInt8]) {
        bytes.appendCompact(path.value)
        bytes.appendCompact(sizeBytes)
        bytes.appendCompact(mtimeMillis)
        bytes.appendCompact(checksum)
        bytes.appendCompact(chunkSizeBytes)
        bytes.appendCompact(Int64(replication))
        bytes.appendCompact(underReplicated)
        bytes.appendCompact(count: chunks.count)
        for chunk in chunks {
            bytes.appendCompact(Int64(chunk.index))
            bytes.appendCompact(chunk.id.high)
            bytes.appendCompact(chunk.id.low)
            bytes.appendCompact(chunk.sizeBytes)
            bytes.appendCompact(chunk.crc32c)
            bytes.appendCompact(count: chunk.replicas.count)
            for replica in chunk.replicas { replica.encodeCompact(into: &bytes) }
            bytes.appendCompact(chunk.token != nil)
            if let token = chunk.token { bytes.appendCompact(token) }
        }
        bytes.appendCompactAttributes(attributes)
    }

    public init(compact reader: inout CompactReader) throws {
        let path = try RemotePath(try reader.string())
        let sizeBytes = try reader.int64()
        let mtimeMillis = try reader.int64()
        let checksum = try reader.string()
        let chunkSizeBytes = try reader.int64()
        let replication = Int(try reader.int64())
        let underReplicated = try reader.bool()
        let chunkCount = try reader.count(ofItemsOfAtLeast: 41)
        var chunks: [ChunkInfo] = []
        chunks.reserveCapacity(CompactReader.reserved(chunkCount))
        for _ in 0..<chunkCount {
            let index = Int(try reader.int64())
            let id = ChunkID(high: try reader.uint64(), low: try reader.uint64())
            let size = try reader.int64()
            let crc32c = try reader.string()
            let replicaCount = try reader.count(ofItemsOfAtLeast: 9)
            var replicas: [DataKeeperAddress] = []
            replicas.reserveCapacity(CompactReader.reserved(replicaCount))
            for _ in 0..<replicaCount { replicas.append(try DataKeeperAddress(compact: &reader)) }
            let token = try reader.bool() ? try reader.string() : nil
            chunks.append(ChunkInfo(index: index, id: id, sizeBytes: size, crc32c: crc32c, replicas: replicas, token: token))
        }
        let attributes = try reader.attributes()
        self.init(
            path: path, sizeBytes: sizeBytes, mtimeMillis: mtimeMillis, checksum: checksum, chunkSizeBytes: chunkSizeBytes,
            replication: replication, underReplicated: underReplicated, chunks: chunks, attributes: attributes)
    }
}

extension BatchResponse: CompactCodable where Value: CompactCodable {
    public func encodeCompact(into bytes: inout [UInt8]) {
        bytes.appendCompact(count: answers.count)
        for answer in answers { bytes.appendCompactAnswer(answer.value, error: answer.error) }
    }

    public init(compact reader: inout CompactReader) throws {
        let count = try reader.count(ofItemsOfAtLeast: 9)
        var answers: [BatchAnswer<Value>] = []
        answers.reserveCapacity(CompactReader.reserved(count))
        for _ in 0..<count { answers.append(BatchAnswer(try reader.answer(Value.self))) }
        self.init(answers: answers)
    }
}

extension UploadSession: CompactCodable {
    public func encodeCompact(into bytes: inout [UInt8]) {
        bytes.appendCompact(uploadID)
        bytes.appendCompact(chunkSizeBytes)
        bytes.appendCompact(Int64(replication))
        bytes.appendCompact(firstChunk != nil)
        if let firstChunk {
            bytes.appendCompact(firstChunk.chunkID.high)
            bytes.appendCompact(firstChunk.chunkID.low)
            bytes.appendCompact(count: firstChunk.targets.count)
            for target in firstChunk.targets { target.encodeCompact(into: &bytes) }
            bytes.appendCompact(Int64(firstChunk.replication))
            bytes.appendCompact(firstChunk.token != nil)
            if let token = firstChunk.token { bytes.appendCompact(token) }
        }
        bytes.appendCompact(committed != nil)
        committed?.encodeCompact(into: &bytes)
    }

    public init(compact reader: inout CompactReader) throws {
        let uploadID = try reader.string()
        let chunkSizeBytes = try reader.int64()
        let replication = Int(try reader.int64())
        var firstChunk: ChunkAllocation?
        if try reader.bool() {
            let chunkID = ChunkID(high: try reader.uint64(), low: try reader.uint64())
            let count = try reader.count(ofItemsOfAtLeast: 9)
            var targets: [DataKeeperAddress] = []
            targets.reserveCapacity(CompactReader.reserved(count))
            for _ in 0..<count { targets.append(try DataKeeperAddress(compact: &reader)) }
            let allocationReplication = Int(try reader.int64())
            let token = try reader.bool() ? try reader.string() : nil
            firstChunk = ChunkAllocation(chunkID: chunkID, targets: targets, replication: allocationReplication, token: token)
        }
        let committed = try reader.bool() ? try FileInfo(compact: &reader) : nil
        self.init(uploadID: uploadID, chunkSizeBytes: chunkSizeBytes, replication: replication, firstChunk: firstChunk, committed: committed)
    }
}

extension DataKeeperAddress: CompactCodable {
    public func encodeCompact(into bytes: inout [UInt8]) {
        bytes.appendCompact(id.value)
        bytes.appendCompact(address)
        bytes.appendCompact(alive)
    }

    public init(compact reader: inout CompactReader) throws {
        let id = try DataKeeperID(try reader.string())
        self.init(id: id, address: try reader.string(), alive: try reader.bool())
    }
}

extension ChunkWriteResult: CompactCodable {
    public func encodeCompact(into bytes: inout [UInt8]) {
        bytes.appendCompact(count: stored.count)
        for id in stored { bytes.appendCompact(id.value) }
        bytes.appendCompact(dataBytes)
        bytes.appendCompact(crc32c)
        bytes.appendCompact(count: failures.count)
        for failure in failures { bytes.appendCompact(failure) }
    }

    public init(compact reader: inout CompactReader) throws {
        let storedCount = try reader.count(ofItemsOfAtLeast: 4)
        var stored: [DataKeeperID] = []
        stored.reserveCapacity(CompactReader.reserved(storedCount))
        for _ in 0..<storedCount { stored.append(try DataKeeperID(try reader.string())) }
        let dataBytes = try reader.int64()
        let crc32c = try reader.uint32()
        let failureCount = try reader.count(ofItemsOfAtLeast: 4)
        var failures: [String] = []
        failures.reserveCapacity(CompactReader.reserved(failureCount))
        for _ in 0..<failureCount { failures.append(try reader.string()) }
        self.init(stored: stored, dataBytes: dataBytes, crc32c: crc32c, failures: failures)
    }
}

extension ListResponse: CompactCodable {
    public func encodeCompact(into bytes: inout [UInt8]) {
        bytes.appendCompact(path)
        bytes.appendCompact(count: entries.count)
        for entry in entries {
            bytes.appendCompact(entry.path)
            bytes.appendCompact(entry.isDirectory)
            bytes.appendCompact(entry.sizeBytes)
            bytes.appendCompact(entry.mtimeMillis)
            bytes.appendCompact(entry.checksum != nil)
            if let checksum = entry.checksum { bytes.appendCompact(checksum) }
            bytes.appendCompactAttributes(entry.attributes)
        }
        bytes.appendCompactAttributes(attributes)
        bytes.appendCompact(mtimeMillis != nil)
        if let mtimeMillis { bytes.appendCompact(mtimeMillis) }
        bytes.appendCompact(subdirectoryCount != nil)
        if let subdirectoryCount { bytes.appendCompact(Int64(subdirectoryCount)) }
        // Last, and only on a page that more follow: a client from before paging never asks
        // for a page, and reads every other answer as it did.
        if let nextAfter { bytes.appendCompact(nextAfter) }
    }

    public init(compact reader: inout CompactReader) throws {
        let path = try reader.string()
        let count = try reader.count(ofItemsOfAtLeast: 23)
        var entries: [ListEntry] = []
        entries.reserveCapacity(CompactReader.reserved(count))
        for _ in 0..<count {
            let entryPath = try reader.string()
            let isDirectory = try reader.bool()
            let sizeBytes = try reader.int64()
            let mtimeMillis = try reader.int64()
            let checksum = try reader.bool() ? try reader.string() : nil
            entries.append(ListEntry(
                path: entryPath, isDirectory: isDirectory, sizeBytes: sizeBytes, mtimeMillis: mtimeMillis, checksum: checksum,
                attributes: try reader.attributes()))
        }
        let attributes = try reader.attributes()
        let mtimeMillis = try reader.bool() ? try reader.int64() : nil
        let subdirectoryCount = try reader.bool() ? Int(try reader.int64()) : nil
        let nextAfter = reader.isAtEnd ? nil : try reader.string()
        self.init(
            path: path, entries: entries, attributes: attributes, mtimeMillis: mtimeMillis, subdirectoryCount: subdirectoryCount,
            nextAfter: nextAfter)
    }
}

// MARK: - Requests (sent in the compact form only to a master that has not refused it)

extension LookupRequest: CompactCodable {
    public func encodeCompact(into bytes: inout [UInt8]) {
        bytes.appendCompact(count: items.count)
        for item in items {
            bytes.appendCompact(item.path.value)
            bytes.appendCompact(item.inspect ?? false)
        }
    }

    public init(compact reader: inout CompactReader) throws {
        let count = try reader.count(ofItemsOfAtLeast: 5)
        var items: [Item] = []
        items.reserveCapacity(CompactReader.reserved(count))
        for _ in 0..<count {
            let path = try RemotePath(try reader.string())
            items.append(Item(path: path, inspect: try reader.bool()))
        }
        self.init(items: items)
    }
}

extension BatchRequest: CompactCodable where Item: CompactCodable {
    public func encodeCompact(into bytes: inout [UInt8]) {
        bytes.appendCompact(count: items.count)
        for item in items { item.encodeCompact(into: &bytes) }
    }

    public init(compact reader: inout CompactReader) throws {
        let count = try reader.count(ofItemsOfAtLeast: 4)
        var items: [Item] = []
        items.reserveCapacity(CompactReader.reserved(count))
        for _ in 0..<count { items.append(try Item(compact: &reader)) }
        self.init(items: items)
    }
}

extension CreateUploadRequest: CompactCodable {
    public func encodeCompact(into bytes: inout [UInt8]) {
        bytes.appendCompact(path.value)
        bytes.appendCompact(overwrite)
        bytes.appendCompact(firstChunkBytes != nil)
        if let firstChunkBytes { bytes.appendCompact(firstChunkBytes) }
        bytes.appendCompact(commitID != nil)
        if let commitID { bytes.appendCompact(commitID) }
        bytes.appendCompactChunks(adopt)
    }

    public init(compact reader: inout CompactReader) throws {
        let path = try RemotePath(try reader.string())
        let overwrite = try reader.bool()
        let firstChunkBytes = try reader.bool() ? try reader.int64() : nil
        let commitID = try reader.bool() ? try reader.string() : nil
        self.init(path: path, overwrite: overwrite, firstChunkBytes: firstChunkBytes, commitID: commitID, adopt: try reader.chunks())
    }
}

extension UploadCommit: CompactCodable {
    public func encodeCompact(into bytes: inout [UInt8]) {
        bytes.appendCompact(uploadID)
        bytes.appendCompact(commit.sizeBytes)
        bytes.appendCompact(commit.crc32c)
        bytes.appendCompactChunks(commit.chunks)
        bytes.appendCompactAttributes(commit.attributes)
    }

    public init(compact reader: inout CompactReader) throws {
        let uploadID = try reader.string()
        let sizeBytes = try reader.int64()
        let crc32c = try reader.uint32()
        guard let chunks = try reader.chunks() else { throw TYDFSError(.protocolViolation, "a compact commit without its list of chunks") }
        let attributes = try reader.attributes()
        self.init(uploadID: uploadID, commit: CommitUploadRequest(sizeBytes: sizeBytes, crc32c: crc32c, chunks: chunks, attributes: attributes))
    }
}

extension Array where Element == UInt8 {
    /// A file's attributes (see `FileInfo.attributes`), or their absence (nil) told apart from none.
    mutating func appendCompactAttributes(_ attributes: [String: String]?) {
        appendCompact(attributes != nil)
        guard let attributes else { return }
        appendCompact(count: attributes.count)
        for (key, value) in attributes.sorted(by: { $0.key < $1.key }) {
            appendCompact(key)
            appendCompact(value)
        }
    }

    /// Committed chunks, or their absence (nil) told apart from none.
    mutating func appendCompactChunks(_ chunks: [CommittedChunk]?) {
        appendCompact(chunks != nil)
        guard let chunks else { return }
        appendCompact(count: chunks.count)
        for chunk in chunks {
            appendCompact(Int64(chunk.index))
            appendCompact(chunk.id.high)
            appendCompact(chunk.id.low)
            appendCompact(chunk.sizeBytes)
            appendCompact(chunk.crc32c)
            appendCompact(count: chunk.replicas.count)
            for replica in chunk.replicas { appendCompact(replica.value) }
            appendCompact(chunk.token != nil)
            if let token = chunk.token { appendCompact(token) }
        }
    }
}

extension CompactReader {
    /// See `appendCompactAttributes`.
    mutating func attributes() throws -> [String: String]? {
        guard try bool() else { return nil }
        let count = try count(ofItemsOfAtLeast: 8)
        var attributes: [String: String] = [:]
        for _ in 0..<count {
            let key = try string()
            attributes[key] = try string()
        }
        return attributes
    }

    /// See `appendCompactChunks`.
    mutating func chunks() throws -> [CommittedChunk]? {
        guard try bool() else { return nil }
        let count = try count(ofItemsOfAtLeast: 41)
        var chunks: [CommittedChunk] = []
        chunks.reserveCapacity(CompactReader.reserved(count))
        for _ in 0..<count {
            let index = Int(try int64())
            let id = ChunkID(high: try uint64(), low: try uint64())
            let sizeBytes = try int64()
            let crc32c = try uint32()
            let replicaCount = try self.count(ofItemsOfAtLeast: 4)
            var replicas: [DataKeeperID] = []
            replicas.reserveCapacity(CompactReader.reserved(replicaCount))
            for _ in 0..<replicaCount { replicas.append(try DataKeeperID(try string())) }
            let token = try bool() ? try string() : nil
            chunks.append(CommittedChunk(index: index, id: id, sizeBytes: sizeBytes, crc32c: crc32c, replicas: replicas, token: token))
        }
        return chunks
    }
}
