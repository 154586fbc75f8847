import Foundation
import NIOConcurrencyHelpers

/// `tern verify --local-cluster N`: etcd and N Tern brokers as child processes, each with its own
/// data directory under `root`, with what the nemesis does to them — kill -9 and restart, SIGSTOP
/// and SIGCONT, a full disk, a network partition, a wall-clock jump. On loopback, or — for
/// partitions, as root — each broker in a network namespace of its own (`ClusterNetwork`).
/// Brokers' output goes to `root/broker-<id>.log`.
///
/// Sendable: the process table is under a lock; the nemesis and the run's shutdown use it.
public final class LocalCluster: Sendable {
    public struct Member: Sendable {
        public let nodeId: Int32
        public let port: Int
        public let dataDir: String
    }

    public let root: String
    public let members: [Member]
    private let ternBinary: String
    private let brokerSettings: [String]
    private let etcdPort: Int
    private let etcdPeerPort: Int
    private let processes = NIOLockedValueBox<[Int32: Process]>([:])
    private let etcd = NIOLockedValueBox<Process?>(nil)
    /// Brokers' lease: short, so that a killed leader is replaced in seconds.
    public static let sessionTimeoutMs = 3000

    /// Size of each broker's own tmpfs when the disk can be filled (`smallDisks`).
    public static let diskBytes = 256 << 20
    private let smallDisks: Bool
    /// The brokers' namespaces and bridge, when partitions are wanted.
    let network: ClusterNetwork?
    /// The clock shim (`CSources/TernClockShim`), preloaded into every broker when clock jumps are
    /// wanted: each broker's wall clock is offset by what its `clock-<id>` file says (re-read every
    /// 100 ms). The kernel has no per-process wall clock (time namespaces offset only the
    /// monotonic clocks, and only at creation), and moving the machine's would move the host's
    /// too. Monotonic time — timers, sleeps, session timeouts — is left alone, as an NTP step
    /// leaves it.
    private let clockShim: String?
    static let clockShimName = "libTernClockShim.so"

    /// `brokerSettings`: extra `key=value` broker settings (`--set`). `smallDisks` mounts a tmpfs
    /// of `diskBytes` as each broker's data directory (needs root), so that the nemesis can fill
    /// one broker's disk without touching the machine's.
    /// `network`: each broker in a network namespace of its own (root), so it can be partitioned.
    /// `clockJumps`: brokers run with the clock shim preloaded (it is looked for beside `ternBinary`,
    /// where `swift build` puts it), so the nemesis can move their clocks.
    public init(
        size: Int, root: String, ternBinary: String, brokerSettings: [String], smallDisks: Bool = false, network: Bool = false,
        clockJumps: Bool = false
    ) throws {
        precondition(size >= 1)
        if clockJumps {
            let directory = URL(fileURLWithPath: ternBinary).resolvingSymlinksInPath().deletingLastPathComponent()
            let library = directory.appendingPathComponent(Self.clockShimName).path
            guard FileManager.default.fileExists(atPath: library) else {
                throw VerifyError.setup("clock jumps need \(Self.clockShimName) beside tern (swift build --product TernClockShim)")
            }
            clockShim = library
        } else {
            clockShim = nil
        }
        self.root = root
        self.ternBinary = ternBinary
        self.brokerSettings = brokerSettings
        self.smallDisks = smallDisks
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        etcdPort = try Self.freePort()
        etcdPeerPort = try Self.freePort()
        members = try (1...size).map { id in
            Member(nodeId: Int32(id), port: try Self.freePort(), dataDir: "\(root)/data-\(id)")
        }
        if smallDisks {
            guard geteuid() == 0 else { throw VerifyError.setup("the disk-full nemesis mounts a small tmpfs per broker: run as root") }
            var mounted: [String] = []
            do {
                for m in members {
                    try FileManager.default.createDirectory(atPath: m.dataDir, withIntermediateDirectories: true)
                    try Self.run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(Self.diskBytes)", "tern-verify", m.dataDir])
                    mounted.append(m.dataDir)
                }
            } catch {
                for dir in mounted { try? Self.run("/bin/umount", [dir]) }
                throw error
            }
        }
        do {
            self.network = network ? try ClusterNetwork(nodeIds: members.map(\.nodeId)) : nil
        } catch {
            if smallDisks { for m in members { try? Self.run("/bin/umount", [m.dataDir]) } }
            throw error
        }
    }

    public var bootstrap: String { members.map { "\(host($0.nodeId)):\($0.port)" }.joined(separator: ",") }

    /// Where broker `node` listens.
    func host(_ node: Int32) -> String { network?.address(node) ?? "127.0.0.1" }
    private var etcdHost: String { network?.etcdAddress ?? "127.0.0.1" }

    public func start() async throws {
        try await startEtcd()
        for m in members { try await start(m.nodeId) }
    }

    /// Starts (or restarts, on the same data directory and ports) the etcd member.
    public func startEtcd() async throws {
        guard let binary = ["/usr/bin/etcd", "/usr/local/bin/etcd"].first(where: FileManager.default.isExecutableFile) else {
            throw VerifyError.setup("etcd is not installed (apt-get install etcd-server)")
        }
        let client = "http://\(etcdHost):\(etcdPort)", peer = "http://127.0.0.1:\(etcdPeerPort)"
        let process = try launch(binary, [
            "--name", "verify", "--data-dir", "\(root)/etcd", "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", "verify=\(peer)",
        ], log: "\(root)/etcd.log")
        etcd.withLockedValue { $0 = process }
        try await Self.waitListening(host: etcdHost, port: etcdPort, what: "etcd")
    }

    /// kill -9 of the etcd member: brokers lose their leases' renewals (and fence themselves once
    /// the session timeout passes) until it is back.
    public func killEtcd() {
        guard let p = etcd.withLockedValue({ p in defer { p = nil }; return p }) else { return }
        Foundation.kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
    }

    /// Starts (or restarts) a broker and waits until it listens.
    public func start(_ nodeId: Int32) async throws {
        guard let m = members.first(where: { $0.nodeId == nodeId }) else { return }
        let args = [
            "broker", "--node-id", "\(nodeId)", "--cluster", "etcd://\(etcdHost):\(etcdPort)",
            "--listeners", "PLAINTEXT://\(host(nodeId)):\(m.port)", "--log-dirs", m.dataDir, "--metrics-listener", "off",
            "--set", "broker.session.timeout.ms=\(Self.sessionTimeoutMs)",
        ] + brokerSettings.flatMap { ["--set", $0] }
        // In its namespace, through `ip netns exec`, which execs the broker: the pid is the broker's.
        let (binary, arguments) = network?.command(nodeId, ternBinary, args) ?? (ternBinary, args)
        var environment: [String: String] = [:]
        if let clockShim {
            let clock = clockFile(nodeId)
            if !FileManager.default.fileExists(atPath: clock) { try "0\n".write(toFile: clock, atomically: true, encoding: .utf8) }
            // TERN_CLOCK_OFFSET_FILE_VARIABLE in TernClockShim.h.
            environment = ["LD_PRELOAD": clockShim, "TERN_CLOCK_OFFSET_FILE": clock]
        }
        let process = try launch(binary, arguments, log: "\(root)/broker-\(nodeId).log", environment: environment)
        processes.withLockedValue { $0[nodeId] = process }
        try await Self.waitListening(host: host(nodeId), port: m.port, what: "broker \(nodeId)")
    }

    public func kill(_ nodeId: Int32) {
        guard let p = processes.withLockedValue({ $0.removeValue(forKey: nodeId) }) else { return }
        Foundation.kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
    }

    public func pause(_ nodeId: Int32) { signal(nodeId, SIGSTOP) }

    /// Cuts the broker off the network: from its peers and etcd only (`split`: its clients still
    /// reach it), or from everything. Needs `network`.
    public func partition(_ nodeId: Int32, split: Bool) throws {
        guard let network else { throw VerifyError.setup("partitions need the brokers in network namespaces") }
        try network.partition(nodeId, split: split)
    }

    public func healPartition(_ nodeId: Int32) { network?.heal(nodeId) }

    private func clockFile(_ nodeId: Int32) -> String { "\(root)/clock-\(nodeId)" }

    /// Moves the broker's wall clock `seconds` away from the machine's (0: back to it); the broker
    /// sees it within 100 ms. Needs `clockJumps`.
    public func setClockOffset(_ nodeId: Int32, seconds: Int) throws {
        guard clockShim != nil else { throw VerifyError.setup("clock jumps need the brokers started with the clock shim") }
        // Atomically (a rename): the shim never reads half a number.
        try "\(seconds)\n".write(toFile: clockFile(nodeId), atomically: true, encoding: .utf8)
    }
    public func resume(_ nodeId: Int32) { signal(nodeId, SIGCONT) }

    public func isRunning(_ nodeId: Int32) -> Bool { processes.withLockedValue { $0[nodeId]?.isRunning ?? false } }

    /// Fills the broker's disk: a file taking every free byte of its tmpfs (written, so the space
    /// is really used). `unfill` removes it.
    public func fill(_ nodeId: Int32) {
        guard let m = members.first(where: { $0.nodeId == nodeId }) else { return }
        let path = "\(m.dataDir)/.tern-verify-filler"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { return }
        defer { close(fd) }
        let chunk = [UInt8](repeating: 0, count: 1 << 20)
        var written = chunk.count
        while written > 0 { written = chunk.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } }
        // The last partial megabyte.
        var small = [UInt8](repeating: 0, count: 4096)
        while small.withUnsafeMutableBytes({ write(fd, $0.baseAddress, $0.count) }) > 0 {}
    }

    public func unfill(_ nodeId: Int32) {
        guard let m = members.first(where: { $0.nodeId == nodeId }) else { return }
        unlink("\(m.dataDir)/.tern-verify-filler")
    }

    /// Stops everything it started (resuming paused brokers first, so SIGKILL lands). With
    /// `keepingData`, the brokers' data on their tmpfs disks is copied to `<data dir>.kept` first —
    /// the evidence of a failed run would otherwise go with the unmount.
    public func stop(keepingData: Bool = false) {
        let all = processes.withLockedValue { p in defer { p = [:] }; return Array(p.values) }
        for p in all where p.isRunning {
            Foundation.kill(p.processIdentifier, SIGCONT)
            Foundation.kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
        }
        if let e = etcd.withLockedValue({ p in defer { p = nil }; return p }), e.isRunning {
            e.terminate()
            e.waitUntilExit()
        }
        network?.tearDown()
        if smallDisks {
            for m in members {
                if keepingData { try? Self.run("/bin/cp", ["-a", m.dataDir, m.dataDir + ".kept"]) }
                try? Self.run("/bin/umount", [m.dataDir])
            }
        }
    }

    private static func run(_ tool: String, _ args: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = args
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw VerifyError.setup("\(tool) \(args.joined(separator: " ")) failed (\(p.terminationStatus))") }
    }

    private func signal(_ nodeId: Int32, _ sig: Int32) {
        guard let p = processes.withLockedValue({ $0[nodeId] }), p.isRunning else { return }
        Foundation.kill(p.processIdentifier, sig)
    }

    private func launch(_ binary: String, _ args: [String], log: String, environment: [String: String] = [:]) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = args
        if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new } }
        if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        out.seekToEndOfFile()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        return p
    }

    private static func waitListening(host: String, port: Int, what: String) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if canConnect(host: host, port: port) { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw VerifyError.setup("\(what) did not start listening on port \(port)")
    }

    private static func canConnect(host: String, port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr(host)
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    /// A port the kernel had free a moment ago (bind to 0, read it back).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw VerifyError.setup("no socket for a free port") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard bound else { throw VerifyError.setup("could not find a free port") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}

extension LocalCluster {
    /// Every replica of each partition of `topic`, compared byte for byte once the cluster has
    /// settled: one copy may trail another, but where they part they hold different records at the
    /// same offsets — a violation whichever broker a consumer reads from (`offset-reused` across
    /// replicas), named by the first batch where they part.
    public func replicaDifferences(topic: String, partitions: Int32) -> [String] {
        var found: [String] = []
        for p in 0..<partitions {
            let copies: [(Int32, [UInt8])] = members.compactMap { m in
                let dir = "\(m.dataDir)/\(topic)-\(p)"
                guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return nil }
                let logs = names.filter { $0.hasSuffix(".log") }.sorted()
                var bytes: [UInt8] = []
                for name in logs { bytes += (FileManager.default.contents(atPath: "\(dir)/\(name)").map(Array.init) ?? []) }
                return (m.nodeId, bytes)
            }
            guard let (firstId, first) = copies.first else { continue }
            // A copy that is a prefix of another is only behind (a follower still fetching); one
            // that parts from it holds different records at the same offsets.
            for (id, other) in copies.dropFirst() where !first.starts(with: other) && !other.starts(with: first) {
                found.append("\(topic)-\(p): the copies on brokers \(firstId) and \(id) differ from offset \(Self.firstDifferingBatch(first, other))")
            }
        }
        return found
    }

    /// The base offset of the first batch where two logs' bytes differ (or where one ends).
    static func firstDifferingBatch(_ a: [UInt8], _ b: [UInt8]) -> Int64 {
        var position = 0
        func int64(_ x: [UInt8], _ at: Int) -> Int64 { x[at..<(at + 8)].reduce(0) { $0 << 8 | Int64($1) } }
        func int32(_ x: [UInt8], _ at: Int) -> Int { Int(Int32(bitPattern: x[at..<(at + 4)].reduce(0) { $0 << 8 | UInt32($1) })) }
        while position + 12 <= min(a.count, b.count) {
            let size = 12 + int32(a, position + 8)
            let end = position + size
            guard size > 12, end <= a.count, end <= b.count, a[position..<end] == b[position..<end] else { return int64(a, position) }
            position = end
        }
        return position + 8 <= a.count ? int64(a, position) : position + 8 <= b.count ? int64(b, position) : -1
    }
}
