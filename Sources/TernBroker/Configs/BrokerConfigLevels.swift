/// The places a broker setting can come from, highest precedence first — this broker's dynamic
/// configs, the cluster-wide dynamic defaults, server.properties — read once for one request, so
/// every entry of a DescribeConfigs answer comes from the same snapshot.
struct BrokerConfigLevels {
    typealias Synonym = (name: String, value: String?, source: ConfigSource)

    let dynamic: DynamicBrokerConfigs
    /// The settings in effect under this snapshot.
    let live: BrokerConfig
    private let levels: [(source: ConfigSource, settings: [String: String])]

    init(broker: Broker) {
        let dynamic = broker.dynamicConfigs
        self.dynamic = dynamic
        live = dynamic.applied(to: broker.config)
        levels = [
            (.dynamicBrokerConfig, dynamic.settings(of: "\(broker.config.nodeId)")),
            (.dynamicDefaultBrokerConfig, dynamic.settings(of: DynamicBrokerConfigs.clusterDefault)),
            (.staticBrokerConfig, broker.config.explicitSettings),
        ]
    }

    /// A broker setting's synonyms (`BrokerConfigCatalog.synonyms`) wherever they are set, level by
    /// level, as Kafka's ConfigHelper lists them.
    func brokerSynonyms(_ name: String) -> [Synonym] {
        levels.flatMap { level in
            BrokerConfigCatalog.synonyms(of: name).compactMap { n in level.settings[n].map { (n, $0, level.source) } }
        }
    }

    /// A topic config's synonyms: the topic's own value, then the broker settings that would give
    /// it level by level, then the documented defaults. The first is the one in effect.
    func topicSynonyms(_ d: TopicConfigDefinition, overrides: [String: String]) -> [Synonym] {
        var synonyms: [Synonym] = []
        if let own = overrides[d.name] { synonyms.append((d.name, own, .topicConfig)) }
        for level in levels {
            for s in d.brokerSynonyms {
                if let value = level.settings[s.name] { synonyms.append((s.name, value, level.source)) }
            }
        }
        for s in d.brokerSynonyms {
            if let kafkaDefault = s.kafkaDefault { synonyms.append((s.name, kafkaDefault, .defaultConfig)) }
        }
        return synonyms
    }
}
