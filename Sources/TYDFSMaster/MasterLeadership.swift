import Foundation
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import TYDFSClient
import TYDFSCore
import TYDFSMetadata
import TYDFSProtocol
import TYDFSSecurity
import TYDFSServerSupport

/// What a master needs to lead, made once per process: a new leadership term builds its state
/// from the database with these (`lead`).
struct LeaderParts: Sendable {
    let configuration: MasterConfiguration
    let tokens: ChunkTokenIssuer
    let reader: TYDFSClient
    let access: AccessMiddleware<BasicRequestContext>
    let logger: Logger

    /// A leader's state, routes and services for `epoch`, from everything `store` holds.
    struct Leader: Sendable {
        let state: MasterState
        let committer: GroupCommitter
        let responder: RouterResponder<BasicRequestContext>
        /// The metadata writer first, then the replication manager and the clock.
        let services: [any Service]
    }

    func lead(store: any MetadataStore, epoch: LeaderEpoch, failed: @escaping @Sendable (TYDFSError) -> Void = { _ in }) async throws -> Leader {
        let loadStarted = ContinuousClock.now
        let namespace = try await store.loadNamespace()
        logger.info("namespace loaded", metadata: [
            "files": "\(namespace.fileCount)", "chunks": "\(namespace.chunks.count)", "epoch": "\(epoch)",
            "seconds": "\((ContinuousClock.now - loadStarted).components.seconds)",
        ])
        let committer = GroupCommitter(store: store)
        var configuration = configuration
        configuration.maxPathBytes = store.maxPathBytes
        let state = MasterState(configuration: configuration, namespace: namespace, committer: committer, tokens: tokens, epoch: epoch, logger: logger)
        return Leader(
            state: state, committer: committer,
            responder: MasterServer.router(state: state, reader: reader, access: access).buildResponder(),
            services: [
                MetadataWriter(committer: committer, state: state, failed: failed),
                ReplicationManager(state: state, intervalSeconds: configuration.repairIntervalSeconds, logger: logger),
                MasterClockTicker(state: state),
            ])
    }
}

/// What the master's HTTP listener serves now: the leader's routes, or a standby's answers.
enum MasterRoleView: Sendable {
    /// `leader`: the URL the lease names, when its lease is live.
    case standby(leader: String?, epoch: LeaderEpoch)
    /// The lease is taken; the namespace is loading (no routes yet), or loaded and the
    /// datakeepers are checking in: their routes are served, clients wait.
    case starting(LeaderEpoch, RouterResponder<BasicRequestContext>?)
    case leading(LeaderEpoch, RouterResponder<BasicRequestContext>)
}

/// The current `MasterRoleView`, switched by the leadership service, read by every request.
final class MasterRoleBoard: Sendable {
    private let view = NIOLockedValueBox<MasterRoleView>(.standby(leader: nil, epoch: LeaderEpoch(0)))

    var current: MasterRoleView { view.withLockedValue { $0 } }

    /// The latest epoch this master has seen, whatever its role.
    var epoch: LeaderEpoch {
        switch current {
        case .standby(_, let epoch), .starting(let epoch, _), .leading(let epoch, _): epoch
        }
    }
    func set(_ new: MasterRoleView) { view.withLockedValue { $0 = new } }
}

/// The master's one HTTP responder. A leader's requests go to its router. A standby answers
/// liveness and `Route.role` itself, and everything else with a 307 to the leader (the same
/// path and query; `Header.leader` names it) or, while no one leads, a 503 `not_leader`.
struct MasterResponder: HTTPResponder {
    typealias Context = BasicRequestContext
    let board: MasterRoleBoard
    /// The URL this master advertises.
    let url: String

    func respond(to request: Request, context: Context) async throws -> Response {
        let view = board.current
        if request.uri.path == Route.role { return try JSON.response(role(view)) }
        if case .leading(_, let responder) = view { return try await responder.respond(to: request, context: context) }
        if case .starting(_, let responder?) = view, Self.dataKeeperRoutes.contains(request.uri.path) {
            return try await responder.respond(to: request, context: context)
        }
        switch request.uri.path {
        case Route.health, Route.healthz:
            return try JSON.response(["status": "ok"])
        default:
            if case .standby(let leader?, _) = view, leader != url {
                var response = try JSON.response(
                    ErrorResponse(TYDFSError(.notLeader, "this master is a standby; the leader is \(leader)")), status: .temporaryRedirect)
                response.headers[.location] = leader + request.uri.description
                response.headers[.tydfsLeader] = leader
                return response
            }
            let error = TYDFSError(.notLeader, "no master leads yet (a new leader is taking over; it takes a few seconds): try again")
            return try JSON.response(ErrorResponse(error), status: error.status)
        }
    }

    /// What a datakeeper sends a master: served by a new leader before it serves clients.
    static let dataKeeperRoutes: Set<String> = [Route.heartbeat, Route.chunkReport, Route.leave]

    func role(_ view: MasterRoleView) -> MasterRole {
        switch view {
        case .standby(let leader, let epoch): MasterRole(url: url, role: "standby", epoch: epoch, leader: leader)
        case .starting(let epoch, _): MasterRole(url: url, role: "starting", epoch: epoch, leader: url)
        case .leading(let epoch, _): MasterRole(url: url, role: "leader", epoch: epoch, leader: url)
        }
    }
}

/// The shell around `LeadershipStateMachine` for masters sharing a PostgreSQL database: asks the
/// lease table what the machine asks for, and starts and stops leadership terms. A term is the
/// state loaded for one epoch and its services (writer, replication manager, clock); stepping
/// down stops them all and drops the state, so nothing of the old term acts again.
struct LeadershipService: Service {
    let link: PostgresLink
    let lease: LeaderLease
    let url: String
    let timing: LeadershipStateMachine.Timing
    let parts: LeaderParts
    let board: MasterRoleBoard
    /// This process among all masters, ever: a restarted master is a new holder.
    let instance = hex64(UInt64.random(in: .min ... .max))

    /// Events the term's writer reports (a refused epoch) while the loop sleeps.
    private let fencedEpochs = NIOLockedValueBox<[(epoch: LeaderEpoch, reason: String)]>([])

    init(link: PostgresLink, lease: LeaderLease, url: String, timing: LeadershipStateMachine.Timing, parts: LeaderParts, board: MasterRoleBoard) {
        self.link = link
        self.lease = lease
        self.url = url
        self.timing = timing
        self.parts = parts
        self.board = board
    }

    /// One running term.
    private struct Term {
        let epoch: LeaderEpoch
        let leader: LeaderParts.Leader
        let services: Task<Void, Never>
        /// Whether clients are served yet (see `MasterState.hasHeardFromDataKeepers`).
        var servesClients = false
    }

    func run() async throws {
        var machine = LeadershipStateMachine(timing: timing)
        var term: Term?
        let logger = parts.logger
        logger.info("master started as a standby; waiting for the leader lease", metadata: ["url": "\(url)", "instance": "\(instance)"])
        var prepared = false
        // Whether the last attempt to read the lease failed: said once, not twice a second.
        var leaseUnreadable = false
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let now = MasterState.monotonicSeconds()
            var actions = fencedEpochs.withLockedValue { epochs in
                defer { epochs = [] }
                return epochs
            }.map { machine.fenced($0.epoch, reason: $0.reason) }
            actions.append(machine.tick(now: now))
            while let action = actions.first {
                actions.removeFirst()
                switch action {
                case .none:
                    break
                case .tryToAcquire:
                    do {
                        if !prepared {
                            try await bounded(timing.leaseSeconds) { try await lease.prepare() }
                            prepared = true
                        }
                        if let epoch = try await bounded(timing.leaseSeconds, { try await lease.acquire(instance: instance, url: url, seconds: timing.leaseSeconds) }) {
                            logger.notice("this master took the leader lease", metadata: ["epoch": "\(epoch)"])
                            actions.append(machine.acquired(epoch, sentAt: now))
                        } else {
                            let holder = try await bounded(timing.leaseSeconds) { try await lease.holder() }
                            // A live lease with no URL is a migration's (`tydfs metadata migrate`): no leader.
                            board.set(.standby(leader: holder.live && !holder.url.isEmpty ? holder.url : nil, epoch: holder.epoch))
                            actions.append(machine.acquireFailed())
                        }
                        leaseUnreadable = false
                    } catch {
                        board.set(.standby(leader: nil, epoch: board.epoch))
                        if !leaseUnreadable {
                            logger.warning("cannot read the leader lease; trying again", metadata: ["error": "\(PostgresLink.describe(error))"])
                        }
                        leaseUnreadable = true
                        actions.append(machine.acquireFailed())
                    }
                case .startLeading(let epoch):
                    board.set(.starting(epoch, nil))
                    let (started, next) = try await start(epoch, machine: &machine)
                    term = started
                    actions += next
                case .renew(let epoch):
                    let sentAt = MasterState.monotonicSeconds()
                    do {
                        if try await renew(epoch) {
                            actions.append(machine.renewed(epoch, sentAt: sentAt))
                        } else {
                            actions.append(machine.renewRefused(epoch))
                        }
                    } catch {
                        logger.warning("cannot renew the leader lease", metadata: ["epoch": "\(epoch)", "error": "\(PostgresLink.describe(error))"])
                        actions.append(machine.renewFailed(epoch))
                    }
                case .stepDown(let epoch, let reason):
                    logger.warning("stepping down: this master no longer leads", metadata: ["epoch": "\(epoch)", "reason": "\(reason)"])
                    board.set(.standby(leader: nil, epoch: epoch))
                    await stop(term, refusing: TYDFSError(.notLeader, "this master stopped leading (epoch \(epoch)): \(reason)"))
                    term = nil
                }
            }
            if var current = term, !current.servesClients, await current.leader.state.hasHeardFromDataKeepers() {
                current.servesClients = true
                term = current
                board.set(.leading(current.epoch, current.leader.responder))
                logger.notice("serving clients", metadata: ["epoch": "\(current.epoch)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(100)) }
        }
        // Shutting down: finish the term's writes, then hand the lease on at once.
        if let term {
            board.set(.standby(leader: nil, epoch: term.epoch))
            await stop(term, refusing: TYDFSError(.unavailable, "the master is shutting down"))
            try? await bounded(timing.leaseSeconds) { try await lease.release(instance: instance, epoch: term.epoch) }
            logger.notice("leader lease released", metadata: ["epoch": "\(term.epoch)"])
        }
        await lease.close()
        await link.close()
    }

    /// Extends the lease of `epoch`, giving up after half the step-down time; false if another
    /// master took it.
    private func renew(_ epoch: LeaderEpoch) async throws -> Bool {
        try await bounded(timing.stepDownAfterSeconds / 2) { [lease, instance, timing] in
            try await lease.renew(instance: instance, epoch: epoch, seconds: timing.leaseSeconds)
        }
    }

    /// Takes over in `epoch`: loads the namespace (renewing the lease meanwhile, however long
    /// that takes) and starts the term's services; the datakeepers' routes are served at once,
    /// clients once the datakeepers have checked in. Returns the term, or nil, and what the
    /// machine says next. Throws, having given the lease back, when the database holds a
    /// namespace no master can load (`NamespaceConflict`): this master stops, naming what to
    /// mend, rather than every master taking the lease and failing in turn for ever.
    private func start(_ epoch: LeaderEpoch, machine: inout LeadershipStateMachine) async throws -> (Term?, [LeadershipStateMachine.Action]) {
        let logger = parts.logger
        let keeper = Task { [self] in
            var lastRenewal: Double?
            while !Task.isCancelled {
                let sentAt = MasterState.monotonicSeconds()
                switch try? await renew(epoch) {
                case true?: lastRenewal = sentAt
                case false?: return (lastRenewal, lost: true)
                case nil: break
                }
                try? await Task.sleep(for: .seconds(timing.attemptEverySeconds))
            }
            return (lastRenewal, lost: false)
        }
        let leader: LeaderParts.Leader
        let store: SQLMetadataStore
        do {
            store = try await SQLMetadataStore.openPostgres(link, epoch: epoch)
            leader = try await parts.lead(store: store, epoch: epoch) { [fencedEpochs] error in
                if error.code == .notLeader { fencedEpochs.withLockedValue { $0.append((epoch, error.message)) } }
            }
        } catch let conflict as NamespaceConflict {
            keeper.cancel()
            _ = await keeper.value
            logger.critical("cannot lead: \(conflict)", metadata: ["epoch": "\(epoch)"])
            board.set(.standby(leader: nil, epoch: epoch))
            try? await bounded(timing.leaseSeconds) { [lease, instance] in try await lease.release(instance: instance, epoch: epoch) }
            await lease.close()
            await link.close()
            throw conflict
        } catch {
            keeper.cancel()
            return (nil, [machine.startFailed(epoch, reason: PostgresLink.describe(error))])
        }
        keeper.cancel()
        let kept = await keeper.value
        if kept.lost {
            return (nil, [machine.startFailed(epoch, reason: "another master took the lease while the namespace loaded")])
        }
        if let renewal = kept.0 { _ = machine.renewed(epoch, sentAt: renewal) }
        let services = leader.services
        let term = Term(epoch: epoch, leader: leader, services: Task {
            await withTaskGroup(of: Void.self) { group in
                for service in services { group.addTask { try? await service.run() } }
            }
        })
        board.set(.starting(epoch, leader.responder))
        logger.notice("leading; waiting for the datakeepers to check in", metadata: ["epoch": "\(epoch)", "url": "\(url)"])
        return (term, [machine.started(epoch)])
    }

    /// Stops a term's services: its writer writes what is queued (refused by the database if
    /// the epoch is gone) and later edits are refused with `refusal`.
    private func stop(_ term: Term?, refusing refusal: TYDFSError) async {
        guard let term else { return }
        term.leader.committer.stop(refusing: refusal)
        term.services.cancel()
        await term.services.value
    }
}
