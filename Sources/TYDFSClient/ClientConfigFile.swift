import Foundation
import TYDFSCore
import TYDFSSecurity

/// A client config file as the master (`<data>/admin-client.conf`) and `tydfs cluster` write
/// it: the master URL, one access key and, with TLS, the CA file, as top-level settings of the
/// JSON config file every client command reads (see `tydfs config`). Mode 0600: it holds a secret.
public struct ClientConfigFile: Sendable {
    /// The admin's file in the master's data folder.
    public static let adminFileName = "admin-client.conf"

    public var masterURL: String
    public var key: AccessKey
    public var caFile: String?

    public init(masterURL: String, key: AccessKey, caFile: String?) {
        self.masterURL = masterURL
        self.key = key
        // Absolute: the file is read from wherever the client runs.
        self.caFile = caFile.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
    }

    /// The settings' names in the file.
    public enum Setting {
        public static let masterURL = "master-url"
        public static let accessKeyID = "access-key-id"
        public static let secretAccessKey = "secret-access-key"
        public static let caFile = "ca-file"
    }

    public func write(to path: String) throws {
        var settings = [Setting.masterURL: masterURL, Setting.accessKeyID: key.accessKeyID, Setting.secretAccessKey: key.secretAccessKey]
        if let caFile { settings[Setting.caFile] = caFile }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let text = String(decoding: try encoder.encode(settings), as: UTF8.self) + "\n"
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try SecretFile.create(path, contents: text, replacing: true)
    }
}
