import Foundation
import TYDFSCore

/// The key the master and its datakeepers share: it signs what they say to each other
/// (heartbeats, chunk reports, leaving) and the chunk tokens the master hands out, so a process
/// without it can neither join nor command nor move chunk bytes.
///
/// 32 random bytes, kept as 64 hex digits in a file of mode 0600 (`tydfs keygen`).
public struct ClusterSecret: Sendable {
    /// The key's bytes (`SigningSecret` makes the `SymmetricKey` per use: swift-crypto 3's is not `Sendable`).
    let bytes: [UInt8]

    public init(bytes: [UInt8]) throws {
        guard bytes.count >= 32 else {
            throw TYDFSError(.invalidArgument, "a cluster secret is at least 32 bytes (64 hex digits), not \(bytes.count)")
        }
        self.bytes = bytes
    }

    /// Parses the file's text: 64 or more hex digits, surrounding white space ignored.
    public init(text: String) throws {
        let digits = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let bytes = Hex.decode(digits) else {
            throw TYDFSError(.invalidArgument, "a cluster secret file holds hex digits only (make one with `tydfs keygen --out FILE`)")
        }
        try self.init(bytes: bytes)
    }

    public static func generate() -> ClusterSecret {
        var generator = SystemRandomNumberGenerator()
        return try! ClusterSecret(bytes: (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
    }

    /// The file's text.
    public var text: String { Hex.encode(bytes) + "\n" }

    /// HMAC-SHA256 of `message` under this secret.
    func mac(_ message: String) -> [UInt8] { SigningSecret(cluster: self).mac(message) }

    /// Whether `code` is the HMAC of `message`, compared in constant time.
    func isValid(_ code: [UInt8], for message: String) -> Bool {
        SigningSecret(cluster: self).isValid(code, for: message)
    }

    // MARK: - The file

    /// Reads the secret from `path`, refusing a file that others may read.
    public static func read(from path: String) throws -> ClusterSecret {
        var status = stat()
        guard stat(path, &status) == 0 else {
            throw TYDFSError(.notFound, "cluster secret file \(path) does not exist; give the master's (<master data>/cluster.secret) with --secret-file")
        }
        guard status.st_mode & 0o077 == 0 else {
            throw TYDFSError(.invalidArgument, "cluster secret file \(path) may be read by others (mode \(String(status.st_mode & 0o777, radix: 8))); chmod 600 it")
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw TYDFSError(.io, "cannot read cluster secret file \(path)")
        }
        do {
            return try ClusterSecret(text: text)
        } catch let error as TYDFSError {
            throw TYDFSError(error.code, "\(path): \(error.message)")
        }
    }

    /// Writes a new secret to `path` with mode 0600; refuses to replace an existing file.
    public func write(to path: String) throws {
        try SecretFile.create(path, contents: text)
    }

    /// The secret in `path`, made there first if the file does not exist yet (the master's own).
    public static func readOrCreate(at path: String) throws -> (secret: ClusterSecret, created: Bool) {
        if FileManager.default.fileExists(atPath: path) { return (try read(from: path), false) }
        let secret = generate()
        try secret.write(to: path)
        return (secret, true)
    }
}

/// Files holding secrets: created with mode 0600 from the start (never readable by others, not
/// even for a moment), written whole and fsynced.
public enum SecretFile {
    public static func create(_ path: String, contents: String, replacing: Bool = false) throws {
        let temporary = path + ".tmp-\(UInt32.random(in: .min ... .max))"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw TYDFSError(.io, "cannot create \(path): \(String(cString: strerror(errno)))")
        }
        let bytes = Array(contents.utf8)
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        let synced = fsync(descriptor) == 0
        close(descriptor)
        guard written == bytes.count, synced else {
            unlink(temporary)
            throw TYDFSError(.io, "cannot write \(path)")
        }
        if !replacing {
            // link(2) fails if the name exists: never replaces another secret.
            defer { unlink(temporary) }
            guard link(temporary, path) == 0 else {
                throw TYDFSError(errno == EEXIST ? .alreadyExists : .io, errno == EEXIST
                    ? "\(path) already exists; remove it first or choose another --out"
                    : "cannot create \(path): \(String(cString: strerror(errno)))")
            }
            return
        }
        guard rename(temporary, path) == 0 else {
            unlink(temporary)
            throw TYDFSError(.io, "cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }
}
