import ArgumentParser
import Dispatch
import Foundation
import Logging
import Metrics
import NIOConcurrencyHelpers
import Prometheus
import TernBroker
import TernServer

#if canImport(Glibc)
    import Glibc
#endif

struct BrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker",
        abstract: "Run a broker.",
        discussion: """
            Settings use Kafka's server.properties names. Flags override the properties file; \
            --set key=value overrides anything.
            """)

    @Option(name: .long, help: "A server.properties file (Kafka key names).")
    var config: String?

    @Option(name: .long, help: "Listener, e.g. PLAINTEXT://127.0.0.1:9092 (listeners).")
    var listeners: String?

    @Option(name: .customLong("node-id"), help: "This broker's id (node.id).")
    var nodeId: Int32?

    @Option(name: .long, help: "Join a cluster whose metadata lives in etcd, e.g. etcd://127.0.0.1:2379 (tern.cluster.etcd).")
    var cluster: String?

    @Option(name: .customLong("log-dirs"), help: "Data directory (log.dirs).")
    var logDirs: String?

    @Option(name: .customLong("num-partitions"), help: "Default partitions for new topics (num.partitions).")
    var numPartitions: Int?

    @Option(name: .customLong("auto-create-topics"), help: "true/false (auto.create.topics.enable).")
    var autoCreateTopics: Bool?

    @Option(name: .customLong("log-segment-bytes"), help: "Segment size in bytes (log.segment.bytes).")
    var logSegmentBytes: Int?

    @Option(name: .customLong("set"), help: "Any setting as key=value; repeatable.")
    var overrides: [String] = []

    @Option(name: .customLong("metrics-listener"), help: "host:port for Prometheus /metrics (\"off\" to disable).")
    var metricsListener: String = "127.0.0.1:9644"

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    mutating func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .info
            return handler
        }
        var logger = Logger(label: "tern")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info

        let brokerConfig = try makeConfig()
        FileDescriptorLimit.raiseToHard(logger: logger)
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        // Cluster mode: no half-started broker — etcd unreachable, a duplicate node id or a
        // conflicting local topic ends the process here with the reason and exit code 1.
        var cluster: BrokerCluster?
        var broker: Broker
        if brokerConfig.unsafeAckBeforeReplication {
            logger.critical("tern.test.unsafe.ack.before.replication is set: acks=all does not wait for followers, acknowledged records WILL be lost on failover (a bug for testing checkers)")
        }
        do {
            if brokerConfig.etcdEndpoint != nil {
                cluster = try await BrokerCluster.join(config: brokerConfig, logger: logger)
            }
            broker = try Broker(config: brokerConfig, logger: logger, cluster: cluster)
            try await broker.registerLocalTopics()
        } catch {
            logger.critical("broker not started: \(error)")
            await cluster?.leave(controlled: false)
            throw ExitCode.failure
        }
        let server = try await KafkaServer(broker: broker, logger: logger)
        let metricsServer = try await startMetrics(registry, logger: logger)
        broker.startMaintenance()

        await waitForTerminationSignal()
        logger.info("shutting down")
        // Controlled shutdown first (leaderships move while this broker still answers, so clients
        // are told where to go), then stop serving and leave.
        if let cluster { await cluster.leave(controlled: brokerConfig.controlledShutdown) }
        await server.shutdown()
        await metricsServer?.shutdown()
        await broker.shutdown()
        logger.info("stopped")
    }

    private func makeConfig() throws -> BrokerConfig {
        var settings: [(String, String)] = []
        if let config {
            settings += try BrokerProperties.parse(String(contentsOfFile: config, encoding: .utf8))
        }
        if let listeners { settings.append(("listeners", listeners)) }
        if let nodeId { settings.append(("node.id", "\(nodeId)")) }
        if let cluster { settings.append(("tern.cluster.etcd", cluster)) }
        if let logDirs { settings.append(("log.dirs", logDirs)) }
        if let numPartitions { settings.append(("num.partitions", "\(numPartitions)")) }
        if let autoCreateTopics { settings.append(("auto.create.topics.enable", "\(autoCreateTopics)")) }
        if let logSegmentBytes { settings.append(("log.segment.bytes", "\(logSegmentBytes)")) }
        for o in overrides {
            guard let eq = o.firstIndex(of: "=") else { throw ValidationError("--set expects key=value, got '\(o)'") }
            settings.append((String(o[..<eq]), String(o[o.index(after: eq)...])))
        }
        var config = BrokerConfig()
        for (k, v) in settings {
            do {
                try BrokerProperties.apply(k, v, to: &config)
            } catch {
                throw ValidationError("\(error)")
            }
        }
        return config
    }

    /// The metrics endpoint is optional: failing to bind it (port taken) is logged, not fatal.
    private func startMetrics(_ registry: PrometheusCollectorRegistry, logger: Logger) async throws -> MetricsServer? {
        guard metricsListener != "off" else { return nil }
        guard let colon = metricsListener.lastIndex(of: ":"), let port = Int(metricsListener[metricsListener.index(after: colon)...]) else {
            throw ValidationError("--metrics-listener expects host:port")
        }
        do {
            return try await MetricsServer(host: String(metricsListener[..<colon]), port: port, registry: registry, logger: logger)
        } catch {
            logger.warning("metrics endpoint not started", metadata: ["listener": "\(metricsListener)", "error": "\(error)"])
            return nil
        }
    }
}

/// Suspends until SIGINT or SIGTERM arrives.
private func waitForTerminationSignal() async {
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        let queue = DispatchQueue(label: "tern.signals")
        let pending = NIOLockedValueBox<CheckedContinuation<Void, Never>?>(continuation)
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            // Whichever signal comes first resumes; later ones find nothing to resume.
            source.setEventHandler { pending.withLockedValue { c in defer { c = nil }; return c }?.resume() }
            source.resume()
            SignalSources.keep(source)
        }
    }
}

/// Keeps signal sources alive for the life of the process.
private enum SignalSources {
    nonisolated(unsafe) static var sources: [DispatchSourceSignal] = []
    static func keep(_ s: DispatchSourceSignal) { sources.append(s) }
}
