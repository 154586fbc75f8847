import Foundation
import NIOConcurrencyHelpers

/// The network of a local cluster run as root: each broker in a network namespace of its own,
/// joined to a bridge in the host's namespace by a veth pair, so that a partition is real packet
/// loss rather than a killed process. Addresses are 10.231.S.0/24 (S from the process id, so two
/// runs do not collide): broker n is .n, etcd .253 — an address of its own on the bridge, so a
/// broker can lose etcd and keep its clients — and the clients (this process) .254.
///
/// Partitions, both healed by `heal`:
/// - `isolate`: the broker's link goes down — cut off from peers, etcd and clients alike.
/// - `split`: blackhole routes between the broker and every other broker and etcd, both ways;
///   clients still reach it. A minority of one that still hears producers: it must not
///   acknowledge what it cannot replicate.
///
/// Sendable: the set of partitioned brokers is under a lock; the rest is fixed at setup.
public final class ClusterNetwork: Sendable {
    let subnet: String
    let bridge: String
    let nodeIds: [Int32]
    private let partitioned = NIOLockedValueBox<[Int32: Partition]>([:])
    static let ip = "/usr/sbin/ip"

    enum Partition: Sendable {
        case isolated
        case split(from: [Int32])
    }

    var etcdAddress: String { "\(subnet).253" }
    var hostAddress: String { "\(subnet).254" }
    func address(_ node: Int32) -> String { "\(subnet).\(node)" }
    func namespace(_ node: Int32) -> String { "tvn\(subnetIndex)-\(node)" }
    private func hostSide(_ node: Int32) -> String { "tvh\(subnetIndex)-\(node)" }
    private let subnetIndex: Int

    /// Creates the bridge and one namespace per broker (node ids 1–9). Root only.
    init(nodeIds: [Int32]) throws {
        guard geteuid() == 0 else { throw VerifyError.setup("network partitions put each broker in a network namespace: run as root") }
        guard FileManager.default.isExecutableFile(atPath: Self.ip) else { throw VerifyError.setup("\(Self.ip) (iproute2) is not installed") }
        precondition(nodeIds.allSatisfy { (1...9).contains($0) }, "broker addresses are .1 to .9")
        subnetIndex = Int(getpid() % 200) + 20
        subnet = "10.231.\(subnetIndex)"
        bridge = "tvb\(subnetIndex)"
        self.nodeIds = nodeIds
        tearDown()  // what a crashed run with the same index left
        do {
            try Self.ip("link", "add", "name", bridge, "type", "bridge")
            try Self.ip("addr", "add", "\(hostAddress)/24", "dev", bridge)
            try Self.ip("addr", "add", "\(etcdAddress)/24", "dev", bridge)
            try Self.ip("link", "set", bridge, "up")
            for node in nodeIds {
                let ns = namespace(node)
                try Self.ip("netns", "add", ns)
                try Self.ip("link", "add", hostSide(node), "type", "veth", "peer", "name", ns)
                try Self.ip("link", "set", ns, "netns", ns)
                try Self.ip("link", "set", hostSide(node), "master", bridge)
                try Self.ip("link", "set", hostSide(node), "up")
                try Self.ip("netns", "exec", ns, Self.ip, "link", "set", "lo", "up")
                try Self.ip("netns", "exec", ns, Self.ip, "addr", "add", "\(address(node))/24", "dev", ns)
                try Self.ip("netns", "exec", ns, Self.ip, "link", "set", ns, "up")
            }
        } catch {
            tearDown()
            throw error
        }
    }

    /// The command line that runs `binary` in the broker's namespace.
    func command(_ node: Int32, _ binary: String, _ args: [String]) -> (String, [String]) {
        (Self.ip, ["netns", "exec", namespace(node), binary] + args)
    }

    /// Cuts `node` off: `split` keeps its clients, isolation does not.
    func partition(_ node: Int32, split: Bool) throws {
        let others = nodeIds.filter { $0 != node }
        if split {
            for other in others {
                try Self.ip("netns", "exec", namespace(node), Self.ip, "route", "add", "blackhole", "\(address(other))/32")
                try Self.ip("netns", "exec", namespace(other), Self.ip, "route", "add", "blackhole", "\(address(node))/32")
            }
            try Self.ip("netns", "exec", namespace(node), Self.ip, "route", "add", "blackhole", "\(etcdAddress)/32")
            partitioned.withLockedValue { $0[node] = .split(from: others) }
        } else {
            try Self.ip("link", "set", hostSide(node), "down")
            partitioned.withLockedValue { $0[node] = .isolated }
        }
    }

    func heal(_ node: Int32) {
        switch partitioned.withLockedValue({ $0.removeValue(forKey: node) }) {
        case .isolated?:
            try? Self.ip("link", "set", hostSide(node), "up")
        case .split(let others)?:
            for other in others {
                try? Self.ip("netns", "exec", namespace(node), Self.ip, "route", "del", "blackhole", "\(address(other))/32")
                try? Self.ip("netns", "exec", namespace(other), Self.ip, "route", "del", "blackhole", "\(address(node))/32")
            }
            try? Self.ip("netns", "exec", namespace(node), Self.ip, "route", "del", "blackhole", "\(etcdAddress)/32")
        case nil:
            break
        }
    }

    /// Removes the namespaces (their veth pairs go with them) and the bridge.
    func tearDown() {
        for node in nodeIds { try? Self.ip("netns", "del", namespace(node)) }
        try? Self.ip("link", "del", bridge)
    }

    private static func ip(_ args: String...) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: ip)
        p.arguments = args
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw VerifyError.setup("ip \(args.joined(separator: " ")) failed (\(p.terminationStatus))") }
    }
}
