/// Attributes that describe a file or directory itself rather than its bytes: its type, mode and
/// owner as a mount shows them (see `PosixAttributes` in TYDFSMount). A put over an existing
/// regular file keeps the mode and owner it does not give, as writing a file anew keeps them
/// in POSIX, so a mount rewriting a file never undoes a `chmod` made meanwhile through another.
public enum IdentityAttributes {
    /// Every identity attribute's name begins with this.
    public static let prefix = "posix-"
    /// Type and permission bits, in octal, as `st_mode`.
    public static let mode = prefix + "mode"
    public static let uid = prefix + "uid"
    public static let gid = prefix + "gid"
    /// A device file's number (`st_rdev`).
    public static let device = prefix + "rdev"
    /// A symbolic link's target.
    public static let link = prefix + "link"

    private static let typeBits: UInt32 = 0o170_000
    private static let regularFile: UInt32 = 0o100_000
    private static let setIDBits: UInt32 = 0o6000

    /// `given`, plus the mode, owner and group of `replaced` that `given` does not name, when
    /// `replaced` was a regular file: a put makes a regular file, so a link's target, a device's
    /// number or another type never pass to it. New bytes keep no set-user-ID or set-group-ID bit
    /// unless the put gives them.
    public static func carried(from replaced: [String: String], into given: [String: String]) -> [String: String] {
        let replacedMode = replaced[mode].flatMap { UInt32($0, radix: 8) }
        if let replacedMode, replacedMode & typeBits != 0, replacedMode & typeBits != regularFile { return given }
        var result = given
        for name in [uid, gid] where result[name] == nil { result[name] = replaced[name] }
        if result[mode] == nil, let replacedMode { result[mode] = String(replacedMode & ~setIDBits, radix: 8) }
        return result
    }
}
