#if canImport(Glibc)
import Glibc
#endif
import TYDFSCore

/// A failure the mount answers with a specific errno, beyond what a `TYDFSError` maps to
/// (a name longer than NAME_MAX, a rename flag the cluster cannot honour).
public struct MountError: Error, Sendable, Equatable {
    public var errno: Int32
    public var message: String

    public init(_ errno: Int32, _ message: String) {
        self.errno = errno
        self.message = message
    }
}

/// The errno a program sees for each failure, one table for every operation: what a missing
/// file, a taken name, a full cluster or a refused key looks like to `cp` and `rsync`.
public enum MountErrno {
    /// The errno for `error`. Anything the cluster could not do for reasons of its own (a master
    /// or datakeeper down, a checksum that did not match) is EIO, never a hang.
    public static func of(_ error: Error) -> Int32 {
        if let error = error as? MountError { return error.errno }
        guard let error = error as? TYDFSError else { return EIO }
        switch error.code {
        case .notFound: return ENOENT
        case .alreadyExists: return EEXIST
        case .directoryNotEmpty: return ENOTEMPTY
        case .insufficientSpace: return ENOSPC
        case .forbidden, .unauthenticated: return EACCES
        case .invalidArgument: return EINVAL
        default: return EIO
        }
    }

    /// The longest name a mount takes (NAME_MAX, which programs assume); the cluster itself
    /// limits only whole paths.
    public static let maxNameBytes = 255

    /// The path of `name` in the directory `parent`, or ENAMETOOLONG when the name or the whole
    /// path is longer than a mount takes.
    public static func child(_ name: String, of parent: String) throws -> RemotePath {
        guard name.utf8.count <= maxNameBytes else {
            throw MountError(ENAMETOOLONG, "the name is \(name.utf8.count) bytes long; the limit is \(maxNameBytes)")
        }
        let path = (parent == "/" ? "/" : parent + "/") + name
        guard path.utf8.count <= Limits.maxPathBytes else {
            throw MountError(ENAMETOOLONG, "the path is \(path.utf8.count) bytes long; the limit is \(Limits.maxPathBytes)")
        }
        do {
            return try RemotePath(path)
        } catch {
            throw MountError(EINVAL, "\(path) is not a valid path")
        }
    }
}
