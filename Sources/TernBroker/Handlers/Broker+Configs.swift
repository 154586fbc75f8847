import Logging
import TernLog
import TernProtocol

/// DescribeConfigs, AlterConfigs and IncrementalAlterConfigs, answered from `TopicConfigCatalog`
/// and `BrokerConfigCatalog` the way Kafka's ConfigHelper answers them.
extension Broker {
    static let topicResource: Int8 = 2
    static let brokerResource: Int8 = 4
    static let brokerLoggerResource: Int8 = 8

    func describeConfigs(_ request: DescribeConfigsRequest, version: Int16) -> DescribeConfigsResponse {
        let view = self.view
        return DescribeConfigsResponse(results: request.resources.map { r in
            var result = DescribeConfigsResponse.DescribeConfigsResult(errorMessage: nil, resourceType: r.resourceType, resourceName: r.resourceName)
            do {
                let entries: [DescribeConfigsResponse.DescribeConfigsResourceResult]
                switch r.resourceType {
                case Self.topicResource:
                    guard TopicName.isValid(r.resourceName) else { throw DescribedKafkaError(.invalidTopic, "Invalid topic name \(r.resourceName)") }
                    guard let topic = view.topic(r.resourceName) else { throw KafkaError.unknownTopicOrPartition }
                    entries = TopicConfigCatalog.all.map { topicEntry($0, overrides: topic.configs, request: request) }
                case Self.brokerResource:
                    try checkBrokerName(r.resourceName, allowEmpty: true)
                    // An empty name asks for cluster-wide dynamic defaults, of which Tern has none.
                    entries = r.resourceName.isEmpty ? [] : BrokerConfigCatalog.all.map { brokerEntry($0, request: request) }
                case Self.brokerLoggerResource:
                    try checkBrokerName(r.resourceName, allowEmpty: false)
                    let level = logger.logLevel.rawValue.uppercased()
                    entries = ["root", logger.label].map {
                        .init(name: $0, value: level, readOnly: false, configSource: ConfigSource.dynamicBrokerLoggerConfig.rawValue,
                              isSensitive: false, configType: ConfigType.string.rawValue, documentation: nil)
                    }
                default:
                    throw DescribedKafkaError(.invalidRequest, "Unsupported resource type \(r.resourceType)")
                }
                let wanted = r.configurationKeys.flatMap { $0.isEmpty ? nil : Set($0) }
                result.configs = entries.filter { wanted?.contains($0.name) ?? true }.map { entry in
                    var e = entry
                    e.isDefault = e.configSource == ConfigSource.defaultConfig.rawValue  // v0's flag
                    return e
                }
            } catch {
                (result.errorCode, result.errorMessage) = Self.configError(error)
            }
            return result
        })
    }

    /// One topic config as Kafka describes it: the topic's override first among the synonyms, then
    /// the broker settings that would give it (explicit ones as STATIC_BROKER_CONFIG, documented
    /// defaults as DEFAULT_CONFIG); the source is the first synonym's.
    private func topicEntry(_ d: TopicConfigDefinition, overrides: [String: String], request: DescribeConfigsRequest)
        -> DescribeConfigsResponse.DescribeConfigsResourceResult
    {
        let value = TopicConfigCatalog.value(d.name, overrides: overrides, broker: config) ?? ""
        var synonyms: [DescribeConfigsResponse.DescribeConfigsSynonym] = []
        if let own = overrides[d.name] {
            synonyms.append(.init(name: d.name, value: own, source: ConfigSource.topicConfig.rawValue))
        }
        for s in d.brokerSynonyms {
            if let explicit = config.explicitSettings[s.name] {
                synonyms.append(.init(name: s.name, value: explicit, source: ConfigSource.staticBrokerConfig.rawValue))
            }
        }
        for s in d.brokerSynonyms {
            if let kafkaDefault = s.kafkaDefault {
                synonyms.append(.init(name: s.name, value: kafkaDefault, source: ConfigSource.defaultConfig.rawValue))
            }
        }
        return .init(
            name: d.name, value: value, readOnly: false, configSource: synonyms.first?.source ?? ConfigSource.defaultConfig.rawValue,
            isSensitive: false, synonyms: request.includeSynonyms ? synonyms : [], configType: d.type.rawValue,
            documentation: request.includeDocumentation ? d.documentation : nil)
    }

    private func brokerEntry(_ e: BrokerConfigCatalog.Entry, request: DescribeConfigsRequest) -> DescribeConfigsResponse.DescribeConfigsResourceResult {
        let explicit = config.explicitSettings[e.name]
        let source = explicit == nil ? ConfigSource.defaultConfig : .staticBrokerConfig
        let value = explicit ?? e.value(config)
        return .init(
            name: e.name, value: value, readOnly: true, configSource: source.rawValue, isSensitive: false,
            synonyms: request.includeSynonyms && value != nil ? [.init(name: e.name, value: value, source: source.rawValue)] : [],
            configType: e.type.rawValue, documentation: request.includeDocumentation ? e.about : nil)
    }

    /// A BROKER or BROKER_LOGGER resource names this broker by id (BROKER also accepts "" for the
    /// cluster-wide defaults).
    private func checkBrokerName(_ name: String, allowEmpty: Bool) throws {
        if name.isEmpty {
            guard allowEmpty else { throw DescribedKafkaError(.invalidRequest, "Broker id must not be empty") }
            return
        }
        guard Int32(name) == config.nodeId else {
            throw DescribedKafkaError(.invalidRequest, "Unexpected broker id, expected \(config.nodeId) or empty string, but received \(name)")
        }
    }

    /// How a topic's new overrides are stored: on a single broker, in its topic store; in a cluster
    /// they are collected and written to etcd afterwards (`Broker+ClusterConfigs`).
    typealias ConfigWrite = (_ topic: String, _ configs: [String: String], _ validateOnly: Bool) throws -> Void

    var localConfigWrite: ConfigWrite {
        { [topics] name, configs, validateOnly in try topics.replaceConfigs(name, with: configs, validateOnly: validateOnly) }
    }

    /// AlterConfigs (the pre-KIP-339 API): the given configs replace all of the topic's overrides.
    func alterConfigs(_ request: AlterConfigsRequest, version: Int16, write: ConfigWrite) -> AlterConfigsResponse {
        AlterConfigsResponse(responses: request.resources.map { r in
            var result = AlterConfigsResponse.AlterConfigsResourceResponse(errorMessage: nil, resourceType: r.resourceType, resourceName: r.resourceName)
            do {
                let name = try alterableTopic(r.resourceType, r.resourceName)
                var configs: [String: String] = [:]
                for c in r.configs {
                    guard let value = c.value else { throw DescribedKafkaError(.invalidRequest, "Null value not supported for topic configs: \(c.name)") }
                    configs[c.name] = value
                }
                try write(name, configs, request.validateOnly)
            } catch {
                (result.errorCode, result.errorMessage) = Self.configError(error)
            }
            return result
        })
    }

    /// IncrementalAlterConfigs (KIP-339): SET, DELETE, and APPEND/SUBTRACT on list configs.
    func incrementalAlterConfigs(_ request: IncrementalAlterConfigsRequest, version: Int16, write: ConfigWrite) -> IncrementalAlterConfigsResponse {
        let view = self.view
        return IncrementalAlterConfigsResponse(responses: request.resources.map { r in
            var result = IncrementalAlterConfigsResponse.AlterConfigsResourceResponse(
                errorMessage: nil, resourceType: r.resourceType, resourceName: r.resourceName)
            do {
                let name = try alterableTopic(r.resourceType, r.resourceName)
                guard let current = view.topic(name)?.configs else { throw KafkaError.unknownTopicOrPartition }
                var configs = current
                for c in r.configs {
                    guard let definition = TopicConfigCatalog.byName[c.name] else {
                        throw DescribedKafkaError(.invalidConfig, "Unknown topic config name: \(c.name)")
                    }
                    switch c.configOperation {
                    case 0: configs[c.name] = c.value ?? ""
                    case 1: configs[c.name] = nil
                    case 2, 3:
                        guard definition.type == .list else {
                            throw DescribedKafkaError(.invalidConfig, "Config value append is not allowed for config key: \(c.name)")
                        }
                        let effective = TopicConfigCatalog.value(c.name, overrides: configs, broker: config) ?? ""
                        var items = Self.listItems(effective)
                        let given = Self.listItems(c.value ?? "")
                        if c.configOperation == 2 {
                            items += given.filter { !items.contains($0) }
                        } else {
                            items.removeAll { given.contains($0) }
                        }
                        configs[c.name] = items.joined(separator: ",")
                    default:
                        throw DescribedKafkaError(.invalidRequest, "Unknown config operation \(c.configOperation) for \(c.name)")
                    }
                }
                try write(name, configs, request.validateOnly)
            } catch {
                (result.errorCode, result.errorMessage) = Self.configError(error)
            }
            return result
        })
    }

    /// Only topics can be altered (Tern has no dynamic broker configs), and not internal ones.
    private func alterableTopic(_ type: Int8, _ name: String) throws -> String {
        switch type {
        case Self.topicResource:
            guard !Self.internalTopics.contains(name) else {
                throw DescribedKafkaError(.invalidTopic, "Topic \(name) is internal: its configs cannot be altered")
            }
            return name
        case Self.brokerResource, Self.brokerLoggerResource:
            throw DescribedKafkaError(.invalidRequest, "Broker configs are read-only in Tern: set them in server.properties and restart")
        default:
            throw DescribedKafkaError(.invalidRequest, "Unsupported resource type \(type)")
        }
    }

    private static func listItems(_ value: String) -> [String] {
        value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    static func configError(_ error: Error) -> (Int16, String?) {
        if let described = error as? DescribedKafkaError { return (described.code.rawValue, described.message) }
        let code = KafkaError(error)
        return (code.rawValue, "\(code)")
    }
}
