/// The one error type that crosses module and process boundaries.
///
/// Every failure a user can see becomes a `TYDFSError`: a stable `code` that scripts and the
/// HTTP layer can switch on, and a `message` written for a person — what went wrong and, where
/// there is one, what to do about it. The CLI prints `message` on one line and exits non-zero.
public struct TYDFSError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What kind of failure this is. Extensible: new codes do not break old callers.
    public struct Code: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// A path, size, id or flag that breaks a rule (the message names the rule).
        public static let invalidArgument = Code(rawValue: "invalid_argument")
        /// The file, chunk or datakeeper does not exist.
        public static let notFound = Code(rawValue: "not_found")
        /// The path is already taken and overwriting was not asked for.
        public static let alreadyExists = Code(rawValue: "already_exists")
        /// A directory to remove still holds files or directories: HTTP 409.
        public static let directoryNotEmpty = Code(rawValue: "directory_not_empty")
        /// There are not enough live datakeepers (or none) to do the work.
        public static let unavailable = Code(rawValue: "unavailable")
        /// A datakeeper has no room for the chunk.
        public static let insufficientSpace = Code(rawValue: "insufficient_space")
        /// Bytes did not match their checksum.
        public static let checksumMismatch = Code(rawValue: "checksum_mismatch")
        /// A master or datakeeper did not answer, or answered something unexpected.
        public static let unreachable = Code(rawValue: "unreachable")
        /// A local file or disk operation failed.
        public static let io = Code(rawValue: "io")
        /// A peer broke the protocol (malformed request or response).
        public static let protocolViolation = Code(rawValue: "protocol_violation")
        /// The request carries no valid credentials (no key, a wrong signature, a forged or
        /// expired token): HTTP 401.
        public static let unauthenticated = Code(rawValue: "unauthenticated")
        /// The credentials are valid but do not allow this (a read-only key writing, a path
        /// outside the key's prefix, a token for another chunk): HTTP 403.
        public static let forbidden = Code(rawValue: "forbidden")
        /// The master does not know the upload named (it restarted, a new leader took over, or the
        /// upload was abandoned): the put must start again. HTTP 404.
        public static let uploadUnknown = Code(rawValue: "upload_unknown")
        /// This master does not lead (a standby, or a leader whose lease another master took):
        /// ask the leader it names. HTTP 307 with the leader's URL, or 503 while none leads.
        public static let notLeader = Code(rawValue: "not_leader")
        /// Inside a lookup's answers (`POST /v1/files/lookup`): this file was left out, because
        /// its chunks would make the answer too large; stat it on its own.
        public static let askAlone = Code(rawValue: "ask_alone")
        /// A bug or an unexpected state; the message carries the detail.
        public static let `internal` = Code(rawValue: "internal")
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    /// `error` itself when it is a `TYDFSError`, else an internal error carrying its description.
    public static func from(_ error: any Error) -> TYDFSError {
        error as? TYDFSError ?? TYDFSError(.internal, "\(error)")
    }
}
