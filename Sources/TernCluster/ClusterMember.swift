import Foundation
import Logging
import NIOConcurrencyHelpers

/// What a broker publishes about itself in etcd while it is alive.
public struct BrokerRegistration: Codable, Sendable, Equatable {
    public var nodeId: Int32
    public var host: String
    public var port: Int32
    public var rack: String?
    /// The broker epoch: etcd's revision of this registration. A broker that lost its lease and
    /// registers again gets a larger one, so anything fenced by the old epoch stays fenced.
    public var epoch: Int64 = 0
    /// Set by a broker that received SIGTERM: the controller moves its leaderships away before it
    /// leaves (Kafka's controlled shutdown).
    public var shuttingDown: Bool?
    /// The broker's data directory id: a registration left by an earlier process on the same
    /// directory (killed before its lease ran out) may be taken over; one from another directory
    /// is another broker.
    public var directoryId: String?

    public init(nodeId: Int32, host: String, port: Int32, rack: String? = nil, directoryId: String? = nil) {
        self.nodeId = nodeId
        self.host = host
        self.port = port
        self.rack = rack
        self.directoryId = directoryId
    }
}

/// The controller, as recorded in etcd: which broker, elected at which revision. Every controller
/// write is meant to be fenced with `electionRevision` (compare on the controller key's create
/// revision), so a controller that lost its lease cannot write after another was elected.
public struct ControllerRecord: Codable, Sendable, Equatable {
    public var nodeId: Int32
    public var electionRevision: Int64
}

public enum ClusterError: Error, Equatable, CustomStringConvertible {
    case duplicateNodeId(Int32)
    /// This broker is not (or no longer) the controller.
    case notController
    /// No heartbeat reached etcd within the lease: this broker may have been replaced.
    case fenced
    case topicExists(String)
    case unknownTopic(String)
    /// A compare-and-swap kept losing to other writers.
    case conflict(String)

    public var description: String {
        switch self {
        case .duplicateNodeId(let id): return "another broker is already registered with node id \(id); refusing to start"
        case .notController: return "this broker is not the controller"
        case .fenced: return "this broker has not reached etcd within its lease and may have been replaced"
        case .topicExists(let t): return "Topic '\(t)' already exists."
        case .unknownTopic(let t): return "Topic '\(t)' does not exist."
        case .conflict(let k): return "concurrent changes to \(k); try again"
        }
    }
}

/// One broker's membership in the cluster: its registration under an etcd lease kept alive by
/// heartbeats, its candidacy for controller (an etcd key created under the same lease — whoever
/// creates it is the controller until its lease ends), and a live view of the cluster's metadata,
/// kept by one list-then-watch of the cluster's prefix. While it is the controller it also runs
/// the controller's duties (`ClusterMember+Controller`).
///
/// Concurrency: an actor; its keep-alive, watch and controller loops are tasks that call back into
/// it. `onChange` hears every new image, in revision order, from the actor. etcd being unreachable
/// is tolerated until the lease would have expired; past that the member knows it may have been
/// replaced and reports itself fenced (`isFenced`, also readable without awaiting through
/// `fence`) until it registers again.
public actor ClusterMember {
    public let registration: BrokerRegistration
    let client: EtcdClient
    private let prefix: String
    let leaseTTL: Int64
    let logger: Logger
    /// Moves leadership back to preferred replicas (`auto.leader.rebalance.enable`), checked every
    /// `preferredLeaderCheckInterval` (`leader.imbalance.check.interval.seconds`).
    let preferredLeaderBalancing: Bool
    let preferredLeaderCheckInterval: Duration
    private let onChange: @Sendable (MetadataImage) -> Void

    private var lease: EtcdLease?
    /// Until when this broker may act on its own authority without hearing from etcd; readable
    /// from any thread (a request handler deciding whether to accept a write).
    public nonisolated let fence = LeaseFence()
    /// The cluster as this broker follows it; only the watch loop (and start) change it.
    public private(set) var image: MetadataImage
    private var tasks: [Task<Void, Never>] = []
    private(set) var stopped = false
    public private(set) var brokerEpoch: Int64 = 0
    /// A controller pass is running / another was asked for meanwhile (`requestControllerPass`).
    var controllerPassRunning = false
    var controllerPassAgain = false

    public init(
        client: EtcdClient, cluster: String = "tern", registration: BrokerRegistration, leaseTTLSeconds: Int64 = 6,
        preferredLeaderBalancing: Bool = true, preferredLeaderCheckInterval: Duration = .seconds(300), logger: Logger,
        onChange: @escaping @Sendable (MetadataImage) -> Void = { _ in }
    ) {
        self.preferredLeaderCheckInterval = preferredLeaderCheckInterval
        self.client = client
        self.prefix = "/\(cluster)/"
        self.image = MetadataImage(cluster: cluster)
        self.registration = registration
        self.leaseTTL = leaseTTLSeconds
        self.preferredLeaderBalancing = preferredLeaderBalancing
        self.logger = logger
        self.onChange = onChange
    }

    var brokerKey: String { image.brokersKey + "\(registration.nodeId)" }
    private var controllerKey: String { image.controllerKey }

    /// Registers (refusing a node id another live broker holds), campaigns for controller, and starts
    /// the heartbeat, watch and controller loops. Throws when etcd is unreachable: the broker must
    /// not start.
    public func start() async throws {
        try await register()
        try await campaign()
        let (values, revision) = try await client.list(prefix: prefix)
        try image.load(values, at: revision)
        onChange(image)
        tasks.append(Task { await self.keepAliveLoop() })
        tasks.append(Task { await self.watchLoop(from: revision + 1) })
        tasks.append(Task { await self.controllerLoop() })
    }

    /// Stops the loops and revokes the lease, so the registration and (if held) the controller key
    /// go at once instead of after the lease's TTL. `controlledShutdown` first comes before it.
    public func stop() async {
        stopped = true
        tasks.forEach { $0.cancel() }
        tasks = []
        if let lease { try? await client.revoke(lease.id) }
        lease = nil
        fence.revoke()
    }

    /// Test-only: stops heartbeating without revoking, as a broker killed with SIGKILL would.
    func abandonForTesting() {
        stopped = true
        tasks.forEach { $0.cancel() }
        tasks = []
    }

    public var liveBrokers: [BrokerRegistration] { image.liveBrokers }
    public var controllerId: Int32? { image.controller?.nodeId }
    public var isController: Bool { !isFenced && image.controller?.nodeId == registration.nodeId }

    /// No heartbeat has reached etcd for a whole lease TTL: another broker may have taken this one's
    /// place (and the controller role), so it must stop acting on its own authority.
    public var isFenced: Bool { lease == nil || fence.isFenced }

    // MARK: registration and election

    private func register(mayTakeOver: Bool = true) async throws {
        let granted = try await client.grantLease(ttlSeconds: leaseTTL)
        // The epoch is not stored: readers take it from the key's create revision.
        let value = try JSONEncoder().encode(registration)
        let (created, revision) = try await client.transaction(
            if: [.absent(brokerKey)], then: [.put(brokerKey, Array(value), lease: granted.id)])
        guard created else {
            if mayTakeOver, try await tookOverOwnStaleRegistration() {
                try? await client.revoke(granted.id)
                return try await register(mayTakeOver: false)
            }
            try? await client.revoke(granted.id)
            throw ClusterError.duplicateNodeId(registration.nodeId)
        }
        lease = granted
        fence.renewed(for: .seconds(leaseTTL))
        brokerEpoch = revision
        logger.info("registered with the cluster", metadata: ["node": "\(registration.nodeId)", "brokerEpoch": "\(revision)"])
    }

    /// A registration under this node id made from the same data directory is this broker's own,
    /// left by a process that died before its lease ran out: revoking that lease removes it (and
    /// the controller key, if the dead process held it) as if the process had shut down.
    private func tookOverOwnStaleRegistration() async throws -> Bool {
        guard let mine = registration.directoryId, let existing = try await client.get(brokerKey),
            let other = try? JSONDecoder().decode(BrokerRegistration.self, from: Data(existing.value)), other.directoryId == mine
        else { return false }
        logger.notice("taking over this broker's registration from a previous process on the same data directory",
                      metadata: ["node": "\(registration.nodeId)", "staleEpoch": "\(existing.createRevision)"])
        try await client.revoke(existing.lease)
        return true
    }

    /// Tries to become controller: creates the controller key under this broker's lease if no one
    /// holds it. The key's create revision is the election revision.
    private func campaign() async throws {
        guard let lease, !stopped else { return }
        let record = ControllerRecord(nodeId: registration.nodeId, electionRevision: 0)
        let (won, revision) = try await client.transaction(
            if: [.absent(controllerKey)], then: [.put(controllerKey, Array(try JSONEncoder().encode(record)), lease: lease.id)])
        if won {
            logger.info("elected controller", metadata: ["node": "\(registration.nodeId)", "electionRevision": "\(revision)"])
        }
    }

    /// Re-publishes this broker's registration (same lease, same key, so the same broker epoch),
    /// e.g. with `shuttingDown` set. Fails if the registration is no longer this one.
    func republish(_ updated: BrokerRegistration) async throws -> Bool {
        guard let lease else { return false }
        let (ok, _) = try await client.transaction(
            if: [.createRevision(of: brokerKey, is: brokerEpoch)],
            then: [.put(brokerKey, Array(try JSONEncoder().encode(updated)), lease: lease.id)])
        return ok
    }

    private func keepAliveLoop() async {
        let interval = Duration.milliseconds(leaseTTL * 1000 / 3)
        var wasFenced = false
        // Said when it changes — checked before and after each heartbeat, which may itself wait
        // out a request timeout while etcd is away.
        func noteFence() {
            guard isFenced != wasFenced else { return }
            wasFenced = isFenced
            if wasFenced {
                logger.error("no heartbeat reached etcd within the lease: refusing writes and reads as leader until etcd answers again",
                             metadata: ["node": "\(registration.nodeId)"])
            } else {
                logger.notice("etcd reachable again: serving as leader where the cluster says so", metadata: ["node": "\(registration.nodeId)"])
            }
        }
        while !stopped && !Task.isCancelled {
            try? await Task.sleep(for: interval)
            noteFence()
            guard !stopped, !Task.isCancelled, let lease else { continue }
            let sent = ContinuousClock.now
            do {
                if try await client.keepAlive(lease.id) > 0 {
                    // Measured from when the renewal was sent: etcd's clock started no earlier.
                    fence.renewed(for: .seconds(leaseTTL), from: sent)
                } else {
                    // The lease expired (etcd was unreachable too long, or the process paused): the
                    // registration is gone and another broker may hold this id's place. Register
                    // anew, with a new broker epoch.
                    logger.warning("lease expired; registering again", metadata: ["node": "\(registration.nodeId)"])
                    self.lease = nil
                    fence.revoke()
                    try await register()
                    try await campaign()
                }
            } catch {
                logger.warning("etcd heartbeat failed", metadata: ["error": "\(error)", "fenced": "\(isFenced)"])
            }
            noteFence()
        }
    }

    private func watchLoop(from revision: Int64) async {
        var next = revision
        while !stopped && !Task.isCancelled {
            do {
                for try await events in client.watch(prefix: prefix, fromRevision: next) {
                    for e in events {
                        try image.apply(e)
                        next = max(next, e.keyValue.modRevision + 1)
                    }
                    await imageChanged()
                }
            } catch {
                if stopped || Task.isCancelled { return }
                logger.debug("cluster watch interrupted; re-reading", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .milliseconds(200))
                // A compacted or broken watch: start over from a fresh read of the whole prefix.
                if let (values, at) = try? await client.list(prefix: prefix), (try? image.load(values, at: at)) != nil {
                    next = at + 1
                    await imageChanged()
                }
            }
        }
    }

    private func imageChanged() async {
        onChange(image)
        if image.controller == nil { try? await campaign() }
        if isController { requestControllerPass() }
    }
}

/// Until when a broker's lease is known to be alive: the last successful heartbeat (or
/// registration) plus the TTL. Past it the broker may have been replaced and must not accept
/// writes. Sendable: one lock around one value.
public final class LeaseFence: Sendable {
    private let until = NIOLockedValueBox<ContinuousClock.Instant?>(nil)

    public init() {}

    public var isFenced: Bool { until.withLockedValue { $0.map { ContinuousClock.now >= $0 } ?? true } }

    func renewed(for ttl: Duration, from start: ContinuousClock.Instant = .now) {
        until.withLockedValue { $0 = start + ttl }
    }

    func revoke() { until.withLockedValue { $0 = nil } }
}
