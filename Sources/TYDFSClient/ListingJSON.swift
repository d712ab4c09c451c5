import Foundation
import TYDFSCore
import TYDFSProtocol

/// How the CLI writes its `--json` documents: pretty-printed, keys sorted, `/` unescaped. One
/// encoder for all of them, and for the listings `ListingJSON` writes page by page.
public enum OutputJSON {
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}

/// `tydfs ls --json` of a directory of any size: the document `OutputJSON.encoder` makes of
/// the whole listing (a `ListResponse`), written page by page as the pages come, so the client
/// holds one page and not the directory (a folder of millions of entries was held whole, with
/// its JSON, before the first byte was printed).
public struct ListingJSON {
    private let encoder = OutputJSON.encoder()
    /// The document of the listing without entries, cut where its entries go: before the array's
    /// contents, the empty array's contents, and what follows the array.
    private var frame: (head: String, empty: String, tail: String)?
    private var entriesWritten = 0

    public init() {}

    /// The text that follows what earlier pages gave, for `page`, the next page of the listing;
    /// the first page's path and the directory's own attributes and time make the document's.
    public mutating func add(_ page: ListResponse) throws -> String {
        var text = ""
        if frame == nil {
            var bare = page
            bare.entries = []
            // The whole listing has no next page, whatever a page said.
            bare.nextAfter = nil
            let document = String(decoding: try encoder.encode(bare), as: UTF8.self)
            let key = "\n  \"entries\" : ["
            guard let opening = document.range(of: key), let closing = document[opening.upperBound...].firstIndex(of: "]") else {
                throw TYDFSError(.internal, "the listing's JSON has no entries array")
            }
            frame = (String(document[..<opening.upperBound]), String(document[opening.upperBound..<closing]), String(document[closing...]))
            text += frame!.head
        }
        guard !page.entries.isEmpty else { return text }
        // The page's entries as one array, `[\n  {…},\n  {…}\n]`, its elements moved in by two
        // more spaces, as the document's array nests them; an empty line (inside an empty
        // object) stays empty. A newline is always the encoder's: one inside a name is `\n`.
        let array = Array(try encoder.encode(page.entries).dropFirst(2).dropLast(2))
        var elements: [UInt8] = Array((entriesWritten == 0 ? "\n  " : ",\n  ").utf8)
        elements.reserveCapacity(elements.count + array.count + array.count / 8)
        for (index, byte) in array.enumerated() {
            elements.append(byte)
            if byte == UInt8(ascii: "\n"), index + 1 < array.count, array[index + 1] != UInt8(ascii: "\n") {
                elements.append(contentsOf: [UInt8(ascii: " "), UInt8(ascii: " ")])
            }
        }
        entriesWritten += page.entries.count
        return text + String(decoding: elements, as: UTF8.self)
    }

    /// The text that ends the document (without a final newline), once every page was added.
    public func finish() throws -> String {
        guard let frame else { throw TYDFSError(.internal, "a listing ended before its first page") }
        return (entriesWritten == 0 ? frame.empty : "\n  ") + frame.tail
    }
}
