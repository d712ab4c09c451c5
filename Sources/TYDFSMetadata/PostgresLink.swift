import Foundation
import Logging
import NIOConcurrencyHelpers
import PostgresKit
import TYDFSCore

/// One connection to the PostgreSQL server a `postgres://` URL names, made again on first use
/// after it drops (a database restart, `pg_terminate_backend`). A master keeps two: one for
/// the metadata store and one for the leader lease, so a renewal never waits behind a batch.
///
/// Every session it opens ends a transaction left idle for `idleTransactionSeconds` (a master
/// paused in the middle of one must not hold the lease row for ever) and waits at most
/// `lockWaitSeconds` for a lock.
public final class PostgresLink: Sendable {
    private let configuration: PostgresConnection.Configuration
    /// The URL without its password, for messages.
    public let displayURL: String
    private let logger: Logger
    /// The open connection, if any, and how many times the link was closed. A connection made
    /// for a caller that was abandoned meanwhile (its time ran out and the link was closed under
    /// it) must not become the link's connection: it is kept only if no close came since.
    private let current = NIOLockedValueBox<(connection: PostgresConnection?, closes: Int)>((nil, 0))
    private let connecting = AsyncMutex()
    static let idleTransactionSeconds = 5
    static let lockWaitSeconds = 3

    /// `url` like `postgres://user@host:port/db` (`?sslmode=disable|prefer|require`).
    /// `applicationName` names the sessions in `pg_stat_activity` (which master holds which).
    public init(url: String, applicationName: String = "tydfs", logger: Logger) throws {
        guard let parsed = URL(string: url), var configuration = try? SQLPostgresConfiguration(url: parsed).coreConfiguration else {
            throw TYDFSError(.invalidArgument, "'\(Self.redacted(url))' is not a PostgreSQL URL like postgres://user@host:5432/database")
        }
        configuration.options.connectTimeout = .seconds(3)
        configuration.options.additionalStartupParameters = [("application_name", String(applicationName.prefix(63)))]
        self.configuration = configuration
        self.displayURL = Self.redacted(url)
        self.logger = logger
    }

    /// Whether `text` names a PostgreSQL database (`postgres://` or `postgresql://`) rather than a folder.
    public static func isURL(_ text: String) -> Bool {
        text.hasPrefix("postgres://") || text.hasPrefix("postgresql://")
    }

    /// `url` with any password replaced by `***`.
    public static func redacted(_ url: String) -> String {
        guard var parts = URLComponents(string: url), parts.password != nil else { return url }
        parts.password = "***"
        return parts.string ?? url
    }

    /// The open connection, made (again) if there is none.
    public func database() async throws -> any SQLDatabase {
        try await connection().sql(queryLogLevel: nil)
    }

    private func connection() async throws -> PostgresConnection {
        if let open = current.withLockedValue({ $0.connection }), !open.isClosed { return open }
        return try await connecting.withLock {
            let (existing, closes) = current.withLockedValue { ($0.connection, $0.closes) }
            if let open = existing, !open.isClosed { return open }
            let made: PostgresConnection
            do {
                made = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
            } catch {
                throw TYDFSError(.unreachable, "cannot reach the metadata database \(displayURL): \(Self.describe(error))")
            }
            do {
                let session = made.sql(queryLogLevel: nil)
                try await session.raw("SET idle_in_transaction_session_timeout = '\(unsafeRaw: String(Self.idleTransactionSeconds))s'").run()
                try await session.raw("SET lock_timeout = '\(unsafeRaw: String(Self.lockWaitSeconds))s'").run()
            } catch {
                await Self.close(made)
                throw TYDFSError(.unreachable, "cannot set up a session on the metadata database \(displayURL): \(Self.describe(error))")
            }
            let kept = !Task.isCancelled && current.withLockedValue { value in
                guard value.closes == closes else { return false }
                value.connection = made
                return true
            }
            guard kept else {
                await Self.close(made)
                throw TYDFSError(.unreachable, "the connection to the metadata database was closed while it was being made")
            }
            return made
        }
    }

    /// An error in words: PostgresNIO's errors hide their detail from `description` (it may
    /// quote data); the server's message and code are what an operator needs.
    public static func describe(_ error: Error) -> String {
        if let error = error as? TYDFSError { return error.message }
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] {
                return "\(message) (SQLSTATE \(error.serverInfo?[.sqlState] ?? "?"))"
            }
            return "\(error.code)" + (error.underlying.map { ": \($0)" } ?? "")
        }
        return "\(error)"
    }

    deinit {
        // A connection must be closed before it goes (PostgresNIO asserts it): a link dropped
        // without `close()` still ends its session.
        if let open = current.withLockedValue({ $0.connection }), !open.isClosed {
            let closing: EventLoopFuture<Void> = open.close()
            closing.whenComplete { _ in }
        }
    }

    /// Closes the connection (a later use makes a new one).
    public func close() async {
        let open = current.withLockedValue { value in
            defer { value = (nil, value.closes + 1) }
            return value.connection
        }
        if let open { await Self.close(open) }
    }

    /// How long closing a connection is waited for.
    static let closeWaitSeconds: Int64 = 2

    /// Starts closing `connection` and waits for it `closeWaitSeconds` at most: closing one the
    /// server just ended (`pg_terminate_backend` while its session was being set up) can take for
    /// ever, and a wait on it held the link's lock, so the master never wrote or renewed again.
    private static func close(_ connection: PostgresConnection) async {
        let closing: EventLoopFuture<Void> = connection.close()
        let waited = closing.eventLoop.makePromise(of: Void.self)
        let timer = closing.eventLoop.scheduleTask(in: .seconds(closeWaitSeconds)) { waited.succeed(()) }
        closing.whenComplete { _ in
            // Holds the connection until it is closed: PostgresNIO asserts that one is closed
            // before it goes, and the wait below may end first.
            withExtendedLifetime(connection) {}
            timer.cancel()
            waited.succeed(())  // a second completion of a promise is ignored
        }
        try? await waited.futureResult.get()
    }
}
