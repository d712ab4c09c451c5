/// Attributes that describe a file or directory itself rather than its bytes: its type, mode and
/// owner as a mount shows them (`posix-mode`, `posix-uid`, …; see `PosixAttributes` in
/// TYDFSMount). A put over an existing file keeps those it does not give, as writing a file
/// anew keeps its mode and owner in POSIX, so a mount rewriting a file never undoes a `chmod`
/// made meanwhile through another mount.
public enum IdentityAttributes {
    /// Every identity attribute's name begins with this.
    public static let prefix = "posix-"

    /// `given`, plus each identity attribute of `replaced` that `given` does not name.
    public static func carried(from replaced: [String: String], into given: [String: String]) -> [String: String] {
        var result = given
        for (name, value) in replaced where name.hasPrefix(prefix) && result[name] == nil {
            result[name] = value
        }
        return result
    }
}
