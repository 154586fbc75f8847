import NIOPosix
import TernCluster

/// Dynamic broker configs on a broker: where they are read from, how a change is written, and
/// how it takes effect (every topic without a value of its own takes the new default at once).
extension Broker {
    /// The dynamic broker configs as last written: the cluster's image, or this broker's file.
    var dynamicConfigs: DynamicBrokerConfigs {
        if let cluster { return DynamicBrokerConfigs(cluster.image.brokerConfigs) }
        return dynamicConfigFile?.current ?? DynamicBrokerConfigs()
    }

    /// The settings this broker runs with: server.properties with the dynamic configs applied.
    public var liveConfig: BrokerConfig { topics.brokerConfig }

    /// Reconfigures the topics when the dynamic configs differ from those last applied. Cluster
    /// mode: on the apply thread, with each image; single broker: after a change is written.
    func applyDynamicConfigs(_ dynamic: DynamicBrokerConfigs) {
        let changed = appliedDynamicConfigs.withLockedValue { applied in
            defer { applied = dynamic }
            return applied != dynamic
        }
        guard changed else { return }
        topics.reconfigure(broker: dynamic.applied(to: config))
        logger.info(
            "dynamic broker configs applied",
            metadata: ["cluster-default": "\(dynamic.settings(of: DynamicBrokerConfigs.clusterDefault))", "broker": "\(dynamic.settings(of: "\(config.nodeId)"))"])
    }

    /// Writes `entity`'s new settings (`change` of its current ones) where they are kept. On a
    /// single broker the file is written on NIO's blocking-I/O pool and the change applied at
    /// once; in a cluster the write goes to etcd and every broker applies it from its image.
    func writeBrokerConfigs(_ entity: String, _ change: @escaping @Sendable ([String: String]) throws -> [String: String]) async throws {
        if let cluster {
            try await cluster.member.updateBrokerConfigs(entity, change)
            return
        }
        guard let file = dynamicConfigFile else { preconditionFailure("a single broker has its dynamic config file") }
        let written = try await NIOThreadPool.singleton.runIfActive { [self] in
            try file.update(entity, change, apply: applyDynamicConfigs)
        }
        logger.info("altered broker configs", metadata: ["entity": "\(entity.isEmpty ? "<default>" : entity)", "configs": "\(written.settings(of: entity))"])
    }
}
