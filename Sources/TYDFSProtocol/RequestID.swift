import TYDFSCore

/// The id of one client operation (a put, a get, …), carried in `Header.requestID` from the
/// client through the master to every datakeeper of the pipeline, so that one upload can be
/// followed in every component's log. Held in a task-local: whatever runs inside the request's
/// task (handlers, actor calls, forwarding) sees it, and log lines pick it up through the
/// logger's metadata provider.
public enum RequestID {
    @TaskLocal public static var current: String?

    /// A new id: 16 hex digits.
    public static func make() -> String { hex64(UInt64.random(in: .min ... .max)) }

    /// Accepts an id from a peer only if it is short and printable, so a log line cannot be forged.
    public static func validated(_ text: String) -> String? {
        guard (1...64).contains(text.utf8.count), text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") }) else {
            return nil
        }
        return text
    }
}
