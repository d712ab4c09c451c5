#if canImport(Glibc)
import Glibc
#endif
import TYDFSCore

/// What a mount shows of a file or directory beyond its bytes and time: its type and permission
/// bits, owner, group, device number and a symbolic link's target.
///
/// The cluster keeps these as attributes beside the file's bytes or the directory's entry
/// (`posix-mode` in octal, as `st_mode`; `posix-uid`, `posix-gid`, `posix-rdev`; `posix-link`),
/// so `rename` moves them, a put over a regular file keeps its mode and owner
/// (`IdentityAttributes`), and every mount of the cluster shows the same. A file or directory
/// that has none (put with `tydfs put`, or through S3) shows the mount's defaults. Pure: parsed
/// and rendered without a mount.
public struct PosixAttributes: Sendable, Equatable {
    /// Type and permission bits, as `st_mode`; nil: the mount's default.
    public var mode: UInt32?
    public var uid: UInt32?
    public var gid: UInt32?
    /// A character or block device's number (`st_rdev`).
    public var deviceNumber: UInt64?
    /// A symbolic link's target.
    public var linkTarget: String?

    /// The file types a mount keeps besides directories: regular files, symbolic links, FIFOs,
    /// sockets and device files (whose bytes the kernel serves, never the cluster).
    static let fileTypes: Set<UInt32> = [S_IFREG, S_IFLNK, S_IFIFO, S_IFSOCK, S_IFCHR, S_IFBLK]

    public init(mode: UInt32? = nil, uid: UInt32? = nil, gid: UInt32? = nil, deviceNumber: UInt64? = nil, linkTarget: String? = nil) {
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.deviceNumber = deviceNumber
        self.linkTarget = linkTarget
    }

    /// Read from a file's or directory's attributes; a value that does not parse counts as absent.
    public init(kept attributes: [String: String]?) {
        let attributes = attributes ?? [:]
        self.init(
            mode: attributes[IdentityAttributes.mode].flatMap { UInt32($0, radix: 8) },
            uid: attributes[IdentityAttributes.uid].flatMap { UInt32($0) },
            gid: attributes[IdentityAttributes.gid].flatMap { UInt32($0) },
            deviceNumber: attributes[IdentityAttributes.device].flatMap { UInt64($0) },
            linkTarget: attributes[IdentityAttributes.link])
    }

    /// The attributes that keep these (only those set).
    public var kept: [String: String] {
        var attributes: [String: String] = [:]
        if let mode { attributes[IdentityAttributes.mode] = String(mode, radix: 8) }
        if let uid { attributes[IdentityAttributes.uid] = String(uid) }
        if let gid { attributes[IdentityAttributes.gid] = String(gid) }
        if let deviceNumber { attributes[IdentityAttributes.device] = String(deviceNumber) }
        if let linkTarget { attributes[IdentityAttributes.link] = linkTarget }
        return attributes
    }

    /// `st_mode` for an entry of the namespace: the kept permission bits (else 0755 for a
    /// directory, 0644 for a file), and the kept type where it fits what the cluster says the
    /// path is (a directory is always one; a file is a regular file unless it keeps another).
    public func statusMode(isDirectory: Bool) -> UInt32 {
        let type = mode.map { $0 & S_IFMT }
        let permissions = mode.map { $0 & ~S_IFMT }
        if isDirectory { return S_IFDIR | (permissions ?? 0o755) }
        guard let type, Self.fileTypes.contains(type) else { return S_IFREG | (permissions ?? 0o644) }
        return type | permissions!
    }

    /// Whether this names a symbolic link.
    public var isSymbolicLink: Bool { mode.map { $0 & S_IFMT == S_IFLNK } ?? false }
}
