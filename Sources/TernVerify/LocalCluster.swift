import Foundation
import NIOConcurrencyHelpers

/// `tern verify --local-cluster N`: etcd and N Tern brokers as child processes on loopback, each
/// with its own data directory under `root`, with what the nemesis does to them — kill -9 and
/// restart, SIGSTOP and SIGCONT. Brokers' output goes to `root/broker-<id>.log`.
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

    /// `brokerSettings`: extra `key=value` broker settings (`--set`).
    public init(size: Int, root: String, ternBinary: String, brokerSettings: [String]) throws {
        precondition(size >= 1)
        self.root = root
        self.ternBinary = ternBinary
        self.brokerSettings = brokerSettings
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        etcdPort = try Self.freePort()
        etcdPeerPort = try Self.freePort()
        members = try (1...size).map { id in
            Member(nodeId: Int32(id), port: try Self.freePort(), dataDir: "\(root)/data-\(id)")
        }
    }

    public var bootstrap: String { members.map { "127.0.0.1:\($0.port)" }.joined(separator: ",") }

    public func start() async throws {
        guard let binary = ["/usr/bin/etcd", "/usr/local/bin/etcd"].first(where: FileManager.default.isExecutableFile) else {
            throw VerifyError.setup("etcd is not installed (apt-get install etcd-server)")
        }
        let client = "http://127.0.0.1:\(etcdPort)", peer = "http://127.0.0.1:\(etcdPeerPort)"
        let process = try launch(binary, [
            "--name", "verify", "--data-dir", "\(root)/etcd", "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", "verify=\(peer)",
        ], log: "\(root)/etcd.log")
        etcd.withLockedValue { $0 = process }
        try await Self.waitListening(port: etcdPort, what: "etcd")
        for m in members { try await start(m.nodeId) }
    }

    /// Starts (or restarts) a broker and waits until it listens.
    public func start(_ nodeId: Int32) async throws {
        guard let m = members.first(where: { $0.nodeId == nodeId }) else { return }
        let args = [
            "broker", "--node-id", "\(nodeId)", "--cluster", "etcd://127.0.0.1:\(etcdPort)",
            "--listeners", "PLAINTEXT://127.0.0.1:\(m.port)", "--log-dirs", m.dataDir, "--metrics-listener", "off",
            "--set", "broker.session.timeout.ms=\(Self.sessionTimeoutMs)",
        ] + brokerSettings.flatMap { ["--set", $0] }
        let process = try launch(ternBinary, args, log: "\(root)/broker-\(nodeId).log")
        processes.withLockedValue { $0[nodeId] = process }
        try await Self.waitListening(port: m.port, what: "broker \(nodeId)")
    }

    public func kill(_ nodeId: Int32) {
        guard let p = processes.withLockedValue({ $0.removeValue(forKey: nodeId) }) else { return }
        Foundation.kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
    }

    public func pause(_ nodeId: Int32) { signal(nodeId, SIGSTOP) }
    public func resume(_ nodeId: Int32) { signal(nodeId, SIGCONT) }

    public func isRunning(_ nodeId: Int32) -> Bool { processes.withLockedValue { $0[nodeId]?.isRunning ?? false } }

    /// Stops everything it started (resuming paused brokers first, so SIGKILL lands).
    public func stop() {
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
    }

    private func signal(_ nodeId: Int32, _ sig: Int32) {
        guard let p = processes.withLockedValue({ $0[nodeId] }), p.isRunning else { return }
        Foundation.kill(p.processIdentifier, sig)
    }

    private func launch(_ binary: String, _ args: [String], log: String) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = args
        if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        out.seekToEndOfFile()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        return p
    }

    private static func waitListening(port: Int, what: String) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if canConnect(port: port) { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw VerifyError.setup("\(what) did not start listening on port \(port)")
    }

    private static func canConnect(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
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
