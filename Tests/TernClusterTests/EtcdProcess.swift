import Foundation
import XCTest

@testable import TernCluster

#if canImport(Glibc)
    import Glibc
#endif

/// A real etcd server (Debian's `etcd-server`, installed by `make deps`) on free loopback ports with
/// a data directory of its own; `stop()` kills it and removes the directory. Tests fail — they do
/// not skip — when etcd is missing.
final class EtcdProcess {
    let clientURL: String
    let dataDir: String
    private let process = Process()

    init() throws {
        guard let binary = ["/usr/bin/etcd", "/usr/local/bin/etcd"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw Failure("etcd is not installed (apt-get install etcd-server, or `make deps`)")
        }
        let clientPort = try Self.freePort(), peerPort = try Self.freePort()
        clientURL = "http://127.0.0.1:\(clientPort)"
        dataDir = NSTemporaryDirectory() + "tern-etcd-" + UUID().uuidString
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = [
            "--name", "test", "--data-dir", dataDir,
            "--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
            "--listen-peer-urls", "http://127.0.0.1:\(peerPort)", "--initial-advertise-peer-urls", "http://127.0.0.1:\(peerPort)",
            "--initial-cluster", "test=http://127.0.0.1:\(peerPort)",
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if Self.accepts(port: clientPort) { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
        stop()
        throw Failure("etcd did not start listening on \(clientURL)")
    }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: dataDir)
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ d: String) { description = d }
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard bound else { throw Failure("no free port") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    static func accepts(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}

/// A test case with a fresh etcd and a client for it, stopped after each test.
class EtcdTestCase: XCTestCase {
    var etcd: EtcdProcess!
    var client: EtcdClient!

    override func setUp() async throws {
        etcd = try EtcdProcess()
        client = EtcdClient(endpoint: etcd.clientURL)
    }

    override func tearDown() async throws {
        try await client?.shutdown()
        etcd?.stop()
    }
}
