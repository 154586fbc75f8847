import Foundation
import NIOCore
import TernProtocol

#if canImport(Glibc)
    import Glibc
#endif

/// `tern-fuzz live`: fuzzes running broker processes over TCP, as a hostile client would. Each
/// case is one request frame — generated for an advertised API and version (`FuzzSource` from a
/// seeded PRNG), or a captured real-client frame with a few bytes mutated — sent on a long-lived
/// connection to one of the brokers. After every case a fresh connection must get an ApiVersions
/// answer within 1 s and every broker process must be alive; every 100 cases their RSS and open
/// descriptors are read from /proc and must stay under the limits. A finding writes the last 64
/// cases (frames without their size prefix) to the findings directory and exits 1.
struct LiveFuzz {
    struct Options {
        var brokers: [(host: String, port: Int)] = []
        var pids: [Int32] = []
        var cases = 10_000
        var seed: UInt64 = 1
        var corpus: String?
        var findings = "live-fuzz-findings"
        var maxRSSMegabytes = 2048
        var maxDescriptors = 4096
        var replicationFactor: Int16 = -1
        var probeTimeoutMs = 1000
    }

    static let usage = """
        usage: tern-fuzz live --brokers HOST:PORT[,HOST:PORT...] --pids PID[,PID...] [--cases N] [--seed S]
                              [--corpus DIR] [--findings DIR] [--max-rss-mb M] [--max-fds F] [--replication-factor R]
        """

    static func parse(_ args: [String]) -> Options? {
        var o = Options()
        var rest = args[...]
        while let flag = rest.popFirst() {
            guard let value = rest.popFirst() else { return nil }
            switch flag {
            case "--brokers":
                o.brokers = value.split(separator: ",").compactMap { hp in
                    let parts = hp.split(separator: ":")
                    guard parts.count == 2, let port = Int(parts[1]) else { return nil }
                    return (String(parts[0]), port)
                }
            case "--pids": o.pids = value.split(separator: ",").compactMap { Int32($0) }
            case "--cases": o.cases = Int(value) ?? o.cases
            case "--seed": o.seed = UInt64(value) ?? o.seed
            case "--corpus": o.corpus = value
            case "--findings": o.findings = value
            case "--max-rss-mb": o.maxRSSMegabytes = Int(value) ?? o.maxRSSMegabytes
            case "--max-fds": o.maxDescriptors = Int(value) ?? o.maxDescriptors
            case "--replication-factor": o.replicationFactor = Int16(value) ?? o.replicationFactor
            default: return nil
            }
        }
        return o.brokers.isEmpty ? nil : o
    }

    let options: Options
    private var recent: [(broker: Int, frame: ByteBuffer)] = []
    private var connections: [BlockingConnection?]
    private var sentOnConnection: [Int]
    private var maxRSS = 0
    private var maxDescriptors = 0
    private var slowestProbeMs = 0.0

    init(options: Options) {
        self.options = options
        connections = Array(repeating: nil, count: options.brokers.count)
        sentOnConnection = Array(repeating: 0, count: options.brokers.count)
    }

    mutating func run() -> Int32 {
        signal(SIGPIPE, SIG_IGN)
        var seeding = LiveTransport(broker: options.brokers[0])
        let apis = advertisedApis(&seeding)
        guard !apis.isEmpty else { return report(finding: "no ApiVersions answer from \(options.brokers[0]) before fuzzing") }
        // Each broker in turn: in a cluster, groups and transactions are seeded only where their
        // coordinator is, and partitions only where they are led.
        var world = seedBroker(&seeding, replicationFactor: options.replicationFactor)
        for broker in options.brokers.dropFirst() {
            var other = LiveTransport(broker: broker)
            world.merge(seedBroker(&other, replicationFactor: options.replicationFactor))
        }
        let captured = Self.loadCorpus(options.corpus)
        var f = FuzzSource(seed: options.seed, world: world)
        let started = Date()
        print("live fuzz: \(options.cases) cases against \(options.brokers.count) broker(s), \(apis.count) APIs, seed \(options.seed), "
            + "\(captured.count) captured frames, \(world.topicIds.count) topics, \(world.members.count - 2) members seeded")
        for n in 1...max(1, options.cases) {
            let broker = f.below(options.brokers.count)
            let frame: ByteBuffer
            if !captured.isEmpty && f.byte() < 80 {
                frame = Self.mutate(f.pick(captured), &f)
            } else {
                guard let generated = generatedFrame(&f, apis: apis, correlationId: Int32(truncatingIfNeeded: n)) else { continue }
                frame = generated
            }
            recent.append((broker, frame))
            if recent.count > 64 { recent.removeFirst() }
            send(frame, to: broker, wrongSize: f.byte() > 250)
            if let finding = check(broker: broker, resources: n % 100 == 0) { return report(finding: finding) }
            if n % 10_000 == 0 {
                let rate = Double(n) / Date().timeIntervalSince(started)
                print("  \(n) cases, \(Int(rate))/s, max RSS \(maxRSS / 1024) MB, max fds \(maxDescriptors), slowest ApiVersions \(Int(slowestProbeMs)) ms")
            }
        }
        if let finding = check(broker: 0, resources: true) { return report(finding: finding) }
        print("live fuzz: \(options.cases) cases, 0 findings in \(Int(Date().timeIntervalSince(started))) s; "
            + "max RSS \(maxRSS / 1024) MB, max fds \(maxDescriptors), slowest ApiVersions \(Int(slowestProbeMs)) ms")
        return 0
    }

    /// Sends on the broker's fuzz connection (a new one after a close or every 64 cases, which also
    /// drops long polls waiting there) and reads back whatever has arrived, without waiting.
    private mutating func send(_ frame: ByteBuffer, to broker: Int, wrongSize: Bool) {
        if connections[broker] == nil || sentOnConnection[broker] >= 64 {
            connections[broker] = BlockingConnection(options.brokers[broker], timeoutMs: 1000)
            sentOnConnection[broker] = 0
        }
        guard let connection = connections[broker] else { return }
        var out = ByteBuffer()
        out.writeInteger(Int32(frame.readableBytes) &+ (wrongSize ? 3 : 0))
        out.writeImmutableBuffer(frame)
        sentOnConnection[broker] += 1
        if !connection.send(out) || !connection.drain() { connections[broker] = nil }
    }

    /// Nil when every broker is alive and the target broker answers a fresh ApiVersions in time.
    private mutating func check(broker: Int, resources: Bool) -> String? {
        for pid in options.pids where kill(pid, 0) != 0 { return "broker process \(pid) is gone" }
        let started = DispatchTime.now()
        var probe = LiveTransport(broker: options.brokers[broker])
        let answer = probe.call(ApiVersionsRequest(), version: 0, ApiVersionsResponse.self, timeout: .milliseconds(Int64(options.probeTimeoutMs)))
        let ms = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e6
        slowestProbeMs = max(slowestProbeMs, ms)
        if ms > 250, let last = recent.last?.frame {
            // Which request kept an event loop busy, for the closing summary's slow list.
            print("  slow ApiVersions (\(Int(ms)) ms) after API \(last.getInteger(at: last.readerIndex, as: Int16.self) ?? -1) "
                + "v\(last.getInteger(at: last.readerIndex + 2, as: Int16.self) ?? -1)")
        }
        guard answer?.errorCode == 0 else {
            return "broker \(options.brokers[broker]) did not answer ApiVersions on a fresh connection within \(options.probeTimeoutMs) ms"
        }
        guard resources else { return nil }
        for pid in options.pids {
            let rss = Self.residentKilobytes(pid), fds = Self.openDescriptors(pid)
            maxRSS = max(maxRSS, rss)
            maxDescriptors = max(maxDescriptors, fds)
            if rss > options.maxRSSMegabytes * 1024 { return "broker \(pid) RSS \(rss / 1024) MB is over \(options.maxRSSMegabytes) MB" }
            if fds > options.maxDescriptors { return "broker \(pid) holds \(fds) descriptors, over \(options.maxDescriptors)" }
        }
        return nil
    }

    private func report(finding: String) -> Int32 {
        try? FileManager.default.createDirectory(atPath: options.findings, withIntermediateDirectories: true)
        for (i, c) in recent.enumerated() {
            let name = String(format: "%@/case-%02d-broker%d", options.findings, i, c.broker)
            _ = FileManager.default.createFile(atPath: name, contents: Data(Self.brokerTargetInput(c.frame)))
        }
        print("live fuzz FINDING: \(finding); the last \(recent.count) cases are in \(options.findings) (the newest last), "
            + "as inputs of the in-process target: replay them with `tern-fuzz broker \(options.findings)`")
        return 1
    }

    /// A frame as one raw step of the `broker` target's input (tag, UInt16 length, frame).
    static func brokerTargetInput(_ frame: ByteBuffer) -> [UInt8] {
        let bytes = Array(frame.readableBytesView.prefix(Int(UInt16.max)))
        return [0xFF, UInt8(bytes.count >> 8), UInt8(bytes.count & 0xFF)] + bytes
    }

    static func loadCorpus(_ directory: String?) -> [ByteBuffer] {
        guard let directory, let files = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        return files.sorted().compactMap { name in
            guard let data = FileManager.default.contents(atPath: "\(directory)/\(name)"), data.count > 12 else { return nil }
            var frame = ByteBuffer(bytes: data)
            frame.moveReaderIndex(forwardBy: 4)
            return frame
        }
    }

    /// A captured frame with one to four mutations: a flipped bit, an interesting integer written
    /// over 2, 4 or 8 bytes (lengths, counts and offsets mostly), a cut, or inserted bytes.
    static func mutate(_ original: ByteBuffer, _ f: inout FuzzSource) -> ByteBuffer {
        var bytes = Array(original.readableBytesView)
        for _ in 0...f.below(4) where !bytes.isEmpty {
            // The API key and version are left alone most of the time, so the body's decoder runs.
            let at = f.byte() < 230 && bytes.count > 8 ? 8 + f.below(bytes.count - 8) : f.below(bytes.count)
            switch f.below(5) {
            case 0: bytes[at] ^= 1 << (f.byte() % 8)
            case 1:
                let width = f.pick([2, 4, 8])
                let value: Int64 = f.integer(.none)
                for i in 0..<width where at + i < bytes.count { bytes[at + i] = UInt8(truncatingIfNeeded: value >> (8 * (width - 1 - i))) }
            case 2: bytes.removeSubrange(at..<min(bytes.count, at + 1 + f.below(16)))
            case 3: bytes.insert(contentsOf: (0..<(1 + f.below(8))).map { _ in f.byte() }, at: at)
            default: bytes.removeSubrange(at...)
            }
        }
        return ByteBuffer(bytes: bytes)
    }

    static func residentKilobytes(_ pid: Int32) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return 0 }
        return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
    }

    static func openDescriptors(_ pid: Int32) -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? 0
    }
}

/// A fresh connection per request/response exchange: what the probe and seeding use.
struct LiveTransport: FuzzTransport {
    let broker: (host: String, port: Int)
    private var connection: BlockingConnection?

    init(broker: (host: String, port: Int)) { self.broker = broker }

    mutating func roundTrip(_ frame: ByteBuffer, timeout: TimeAmount) -> ByteBuffer? {
        let ms = Int(timeout.nanoseconds / 1_000_000)
        if connection == nil { connection = BlockingConnection(broker, timeoutMs: ms) }
        guard let c = connection else { return nil }
        var out = ByteBuffer()
        out.writeInteger(Int32(frame.readableBytes))
        out.writeImmutableBuffer(frame)
        guard c.send(out), let answer = c.receiveFrame(timeoutMs: ms) else {
            connection = nil
            return nil
        }
        return answer
    }
}

/// A plain blocking TCP socket with deadlines: enough to talk to a broker without an event loop.
final class BlockingConnection {
    private let fd: Int32

    init?(_ broker: (host: String, port: Int), timeoutMs: Int) {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(broker.port).bigEndian)
        inet_pton(AF_INET, broker.host, &address.sin_addr)
        var timeout = timeval(tv_sec: timeoutMs / 1000, tv_usec: (timeoutMs % 1000) * 1000)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            return nil
        }
    }

    deinit { close(fd) }

    func send(_ bytes: ByteBuffer) -> Bool {
        bytes.withUnsafeReadableBytes { raw in
            var done = 0
            while done < raw.count {
                let n = Glibc.send(fd, raw.baseAddress! + done, raw.count - done, Int32(MSG_NOSIGNAL))
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { return false }
                done += n
            }
            return true
        }
    }

    /// Reads and discards what has arrived; false once the peer has closed.
    func drain() -> Bool {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            if n > 0 { continue }
            if n == 0 { return false }
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR
        }
    }

    /// One response frame (without its size prefix), or nil on a close, a timeout or an absurd size.
    func receiveFrame(timeoutMs: Int) -> ByteBuffer? {
        let deadline = DispatchTime.now() + .milliseconds(timeoutMs)
        guard let size = receive(4, until: deadline)?.getInteger(at: 0, as: Int32.self), size >= 4, size < 64 << 20 else { return nil }
        return receive(Int(size), until: deadline)
    }

    private func receive(_ count: Int, until deadline: DispatchTime) -> ByteBuffer? {
        var out = ByteBuffer()
        var buffer = [UInt8](repeating: 0, count: min(count, 1 << 20))
        while out.readableBytes < count {
            guard DispatchTime.now() < deadline else { return nil }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let left = Int32(max(1, (deadline.uptimeNanoseconds - min(deadline.uptimeNanoseconds, DispatchTime.now().uptimeNanoseconds)) / 1_000_000))
            guard poll(&poller, 1, left) > 0 else { return nil }
            let n = recv(fd, &buffer, min(buffer.count, count - out.readableBytes), 0)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return nil }
            out.writeBytes(buffer[0..<n])
        }
        return out
    }
}
