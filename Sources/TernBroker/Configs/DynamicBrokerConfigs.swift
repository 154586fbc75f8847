/// Dynamic broker configs: settings changed while brokers run (`kafka-configs --entity-type
/// brokers --alter`), per broker and as a cluster-wide default, kept in the cluster's metadata
/// (etcd) or, on a single broker, in `tern-broker-configs.json` beside its logs.
///
/// Precedence is Kafka's, level by level: a broker's own dynamic setting, then the cluster-wide
/// default, then server.properties, then the built-in default. Within a level, synonyms apply
/// the finer unit last (`log.retention.ms` over `.minutes` over `.hours`), so a dynamic
/// `log.retention.hours` overrides a static `log.retention.ms`, as DescribeConfigs' synonym
/// order says it does.
public struct DynamicBrokerConfigs: Sendable, Equatable {
    /// "" (the cluster-wide defaults) or a broker id → its settings.
    public var entities: [String: [String: String]]

    public static let clusterDefault = ""

    public init(_ entities: [String: [String: String]] = [:]) {
        self.entities = entities.filter { !$0.value.isEmpty }
    }

    public func settings(of entity: String) -> [String: String] { entities[entity] ?? [:] }

    /// The config broker `nodeId` runs with: `base` (its static settings) with the cluster-wide
    /// defaults and then its own settings applied. Stored values were checked when written; one
    /// that no longer parses (written by another release) is skipped rather than stopping the
    /// broker.
    public func applied(to base: BrokerConfig) -> BrokerConfig {
        var config = base
        for entity in [Self.clusterDefault, "\(base.nodeId)"] {
            for (name, value) in Self.inApplyOrder(settings(of: entity)) {
                try? BrokerProperties.applyValue(name, value, to: &config)
            }
        }
        return config
    }

    /// Coarser synonyms first, so the finer one given at the same level wins.
    static func inApplyOrder(_ settings: [String: String]) -> [(String, String)] {
        func rank(_ name: String) -> Int { name.hasSuffix(".hours") ? 0 : name.hasSuffix(".minutes") ? 1 : 2 }
        return settings.sorted { (rank($0.key), $0.key) < (rank($1.key), $1.key) }
    }

    /// Checks new settings for one entity as Kafka's `DynamicBrokerConfig.validateConfigs` does:
    /// a broker setting that cannot change at run time is INVALID_REQUEST ("Cannot update these
    /// configs dynamically"), an unknown name INVALID_CONFIG, a bad value INVALID_REQUEST with
    /// the parser's reason (KAFKA-13609 keeps INVALID_REQUEST for compatibility).
    static func validate(_ settings: [String: String], entity: String) throws {
        let unknown = settings.keys.filter { BrokerConfigCatalog.byName[$0] == nil }.sorted()
        guard unknown.isEmpty else {
            throw DescribedKafkaError(.invalidConfig, "Unknown broker config name: \(unknown.joined(separator: ", "))")
        }
        let fixed = settings.keys.filter { !BrokerConfigCatalog.dynamicNames.contains($0) }.sorted()
        guard fixed.isEmpty else {
            throw DescribedKafkaError(.invalidRequest, "Cannot update these configs dynamically: Set(\(fixed.joined(separator: ", ")))")
        }
        if entity == Self.clusterDefault {
            let perBroker = settings.keys.filter { BrokerConfigCatalog.perBrokerOnly.contains($0) }.sorted()
            guard perBroker.isEmpty else {
                throw DescribedKafkaError(
                    .invalidRequest, "Cannot update these configs at default cluster level, broker id must be specified: Set(\(perBroker.joined(separator: ", ")))")
            }
        }
        var scratch = BrokerConfig()
        for (name, value) in inApplyOrder(settings) {
            do {
                try BrokerProperties.applyValue(name, value, to: &scratch)
            } catch {
                throw DescribedKafkaError(.invalidRequest, "Invalid value \(value) for configuration \(name)")
            }
        }
    }
}
