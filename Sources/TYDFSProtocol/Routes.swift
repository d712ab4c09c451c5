/// Route paths and header names of the TYDFS HTTP protocol, shared by servers and the client so
/// the two can never disagree about them.
public enum Route {
    // Master
    public static let heartbeat = "/v1/heartbeat"
    public static let uploads = "/v1/uploads"
    public static func uploadChunks(_ uploadID: String) -> String { "/v1/uploads/\(uploadID)/chunks" }
    public static func uploadCommit(_ uploadID: String) -> String { "/v1/uploads/\(uploadID)/commit" }
    public static func upload(_ uploadID: String) -> String { "/v1/uploads/\(uploadID)" }
    /// `GET` (stat, with read order), `DELETE` (rm); the path is in the `path` query item.
    public static let files = "/v1/files"
    /// `GET ?path=` — one level of the namespace.
    public static let list = "/v1/list"
    public static let nodes = "/v1/nodes"
    public static let health = "/v1/health"
    /// `POST` a `BadReplicaReport`.
    public static let badReplicas = "/v1/bad-replicas"
    /// `GET ?path=` — `FsckReport`.
    public static let fsck = "/v1/fsck"

    // DataKeeper
    public static func chunk(_ id: String) -> String { "/v1/chunks/\(id)" }
}

/// HTTP header names of the data path.
public enum Header {
    /// On a chunk `PUT`: the datakeepers still to receive the chunk after this one, in order,
    /// as `id=host:port` separated by commas (the HDFS-style write pipeline).
    public static let forward = "X-TYDFS-Forward"
    /// On a chunk `PUT`: the number of data bytes in the frame (without the 4-byte trailer).
    public static let dataBytes = "X-TYDFS-Data-Bytes"
}

/// One hop of a write pipeline: who the datakeeper is and where to reach it.
public struct PipelineHop: Equatable, Sendable {
    public var id: String
    public var address: String

    public init(id: String, address: String) {
        self.id = id
        self.address = address
    }

    /// `id=host:port,id=host:port` — the value of `Header.forward`.
    public static func encode(_ hops: [PipelineHop]) -> String {
        hops.map { "\($0.id)=\($0.address)" }.joined(separator: ",")
    }

    public static func decode(_ text: String) -> [PipelineHop]? {
        if text.isEmpty { return [] }
        var hops: [PipelineHop] = []
        for part in text.split(separator: ",") {
            let pieces = part.split(separator: "=", maxSplits: 1)
            guard pieces.count == 2, !pieces[0].isEmpty, !pieces[1].isEmpty else { return nil }
            hops.append(PipelineHop(id: String(pieces[0]), address: String(pieces[1])))
        }
        return hops
    }
}
