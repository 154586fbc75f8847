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
        let levels = BrokerConfigLevels(broker: self)
        return DescribeConfigsResponse(results: request.resources.map { r in
            var result = DescribeConfigsResponse.DescribeConfigsResult(errorMessage: nil, resourceType: r.resourceType, resourceName: r.resourceName)
            do {
                let entries: [DescribeConfigsResponse.DescribeConfigsResourceResult]
                switch r.resourceType {
                case Self.topicResource:
                    guard TopicName.isValid(r.resourceName) else { throw DescribedKafkaError(.invalidTopic, "Invalid topic name \(r.resourceName)") }
                    guard let topic = view.topic(r.resourceName) else { throw KafkaError.unknownTopicOrPartition }
                    entries = TopicConfigCatalog.all.map { topicEntry($0, overrides: topic.configs, levels: levels, request: request) }
                case Self.brokerResource:
                    try checkBrokerName(r.resourceName, allowEmpty: true)
                    entries = r.resourceName.isEmpty
                        ? clusterDefaultEntries(levels.dynamic, request: request)
                        : BrokerConfigCatalog.all.map { brokerEntry($0, levels: levels, request: request) }
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
    /// the broker settings that would give it, level by level; the source is the first synonym's.
    private func topicEntry(_ d: TopicConfigDefinition, overrides: [String: String], levels: BrokerConfigLevels, request: DescribeConfigsRequest)
        -> DescribeConfigsResponse.DescribeConfigsResourceResult
    {
        let synonyms = levels.topicSynonyms(d, overrides: overrides)
        return .init(
            name: d.name, value: TopicConfigCatalog.value(d.name, overrides: overrides, broker: levels.live) ?? "", readOnly: false,
            configSource: (synonyms.first?.source ?? .defaultConfig).rawValue, isSensitive: false,
            synonyms: request.includeSynonyms ? synonyms.map { .init(name: $0.name, value: $0.value, source: $0.source.rawValue) } : [],
            configType: d.type.rawValue, documentation: request.includeDocumentation ? d.documentation : nil)
    }

    /// One broker setting: its value where it is set highest (or the value in effect), its
    /// synonyms level by level, and whether it can change at run time.
    private func brokerEntry(_ e: BrokerConfigCatalog.Entry, levels: BrokerConfigLevels, request: DescribeConfigsRequest)
        -> DescribeConfigsResponse.DescribeConfigsResourceResult
    {
        var synonyms = levels.brokerSynonyms(e.name)
        let own = synonyms.first { $0.name == e.name }
        let value = own?.value ?? e.value(levels.live)
        if own == nil, let value { synonyms.append((e.name, value, .defaultConfig)) }
        return .init(
            name: e.name, value: value, readOnly: !BrokerConfigCatalog.dynamicNames.contains(e.name),
            configSource: (synonyms.first?.source ?? .defaultConfig).rawValue, isSensitive: false,
            synonyms: request.includeSynonyms ? synonyms.map { .init(name: $0.name, value: $0.value, source: $0.source.rawValue) } : [],
            configType: e.type.rawValue, documentation: request.includeDocumentation ? e.documentation : nil)
    }

    /// The BROKER resource "": the cluster-wide dynamic defaults that are set, and nothing else
    /// (as Kafka answers it).
    private func clusterDefaultEntries(_ dynamic: DynamicBrokerConfigs, request: DescribeConfigsRequest)
        -> [DescribeConfigsResponse.DescribeConfigsResourceResult]
    {
        dynamic.settings(of: DynamicBrokerConfigs.clusterDefault).sorted { $0.key < $1.key }.map { name, value in
            let source = ConfigSource.dynamicDefaultBrokerConfig.rawValue
            let entry = BrokerConfigCatalog.byName[name]
            return .init(
                name: name, value: value, readOnly: false, configSource: source, isSensitive: false,
                synonyms: request.includeSynonyms ? [.init(name: name, value: value, source: source)] : [],
                configType: (entry?.type ?? .unknown).rawValue, documentation: request.includeDocumentation ? entry?.documentation : nil)
        }
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

    /// How a broker entity's new dynamic settings are stored: `change` (already checked against
    /// the current settings) is collected, and applied to the settings current when it is
    /// written, after the handler returns (`writeBrokerConfigs`).
    typealias BrokerConfigWrite = (_ entity: String, _ change: @escaping @Sendable ([String: String]) throws -> [String: String]) -> Void

    struct ConfigWriters {
        let topic: ConfigWrite
        let broker: BrokerConfigWrite
    }

    var localConfigWrite: ConfigWrite {
        { [topics] name, configs, validateOnly in try topics.replaceConfigs(name, with: configs, validateOnly: validateOnly) }
    }

    /// AlterConfigs (the pre-KIP-339 API): the given configs replace all of the resource's
    /// settings — a topic's overrides, or a broker entity's dynamic configs.
    func alterConfigs(_ request: AlterConfigsRequest, version: Int16, writers: ConfigWriters) -> AlterConfigsResponse {
        let dynamic = dynamicConfigs
        let duplicated = Self.duplicatedResources(request.resources.map { ($0.resourceType, $0.resourceName) })
        return AlterConfigsResponse(responses: request.resources.map { r in
            var result = AlterConfigsResponse.AlterConfigsResourceResponse(errorMessage: nil, resourceType: r.resourceType, resourceName: r.resourceName)
            do {
                guard !duplicated.contains(Self.ResourceKey(r.resourceType, r.resourceName)) else {
                    throw DescribedKafkaError(.invalidRequest, "Each resource must appear at most once.")
                }
                try Self.checkDistinct(r.configs.map(\.name))
                let nulls = r.configs.filter { $0.value == nil }.map(\.name)
                guard nulls.isEmpty else { throw DescribedKafkaError(.invalidRequest, "Null value not supported for : \(nulls.joined(separator: ", "))") }
                let configs = Dictionary(r.configs.map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { _, last in last })
                switch try alterable(r.resourceType, r.resourceName) {
                case .topic(let name):
                    try writers.topic(name, configs, request.validateOnly)
                case .broker(let entity):
                    let change: @Sendable ([String: String]) throws -> [String: String] = { _ in
                        try DynamicBrokerConfigs.validate(configs, entity: entity)
                        return configs
                    }
                    _ = try change(dynamic.settings(of: entity))
                    if !request.validateOnly { writers.broker(entity, change) }
                }
            } catch {
                (result.errorCode, result.errorMessage) = Self.configError(error)
            }
            return result
        })
    }

    /// IncrementalAlterConfigs (KIP-339): SET, DELETE, and APPEND/SUBTRACT on list configs.
    func incrementalAlterConfigs(_ request: IncrementalAlterConfigsRequest, version: Int16, writers: ConfigWriters) -> IncrementalAlterConfigsResponse {
        let view = self.view
        let dynamic = dynamicConfigs
        let live = dynamic.applied(to: config)
        let duplicated = Self.duplicatedResources(request.resources.map { ($0.resourceType, $0.resourceName) })
        return IncrementalAlterConfigsResponse(responses: request.resources.map { r in
            var result = IncrementalAlterConfigsResponse.AlterConfigsResourceResponse(
                errorMessage: nil, resourceType: r.resourceType, resourceName: r.resourceName)
            do {
                guard !duplicated.contains(Self.ResourceKey(r.resourceType, r.resourceName)) else {
                    throw DescribedKafkaError(.invalidRequest, "Each resource must appear at most once.")
                }
                try Self.checkDistinct(r.configs.map(\.name))
                let nulls = r.configs.filter { $0.configOperation != 1 && $0.value == nil }.map(\.name)
                guard nulls.isEmpty else { throw DescribedKafkaError(.invalidRequest, "Null value not supported for : \(nulls.joined(separator: ", "))") }
                let operations = r.configs.map { Self.ConfigOperation(name: $0.name, operation: $0.configOperation, value: $0.value ?? "") }
                switch try alterable(r.resourceType, r.resourceName) {
                case .topic(let name):
                    guard let current = view.topic(name)?.configs else { throw KafkaError.unknownTopicOrPartition }
                    var configs = current
                    for op in operations {
                        guard let definition = TopicConfigCatalog.byName[op.name] else {
                            throw DescribedKafkaError(.invalidConfig, "Unknown topic config name: \(op.name)")
                        }
                        let effective = TopicConfigCatalog.value(op.name, overrides: configs, broker: live) ?? ""
                        try op.apply(to: &configs, isList: definition.type == .list, effective: effective)
                    }
                    try writers.topic(name, configs, request.validateOnly)
                case .broker(let entity):
                    let change: @Sendable ([String: String]) throws -> [String: String] = { current in
                        var settings = current
                        for op in operations {
                            guard let entry = BrokerConfigCatalog.byName[op.name] else {
                                throw DescribedKafkaError(.invalidConfig, "Unknown broker config name: \(op.name)")
                            }
                            try op.apply(to: &settings, isList: entry.type == .list, effective: entry.value(live) ?? "")
                        }
                        try DynamicBrokerConfigs.validate(settings, entity: entity)
                        return settings
                    }
                    _ = try change(dynamic.settings(of: entity))
                    if !request.validateOnly { writers.broker(entity, change) }
                }
            } catch {
                (result.errorCode, result.errorMessage) = Self.configError(error)
            }
            return result
        })
    }

    /// One IncrementalAlterConfigs operation: 0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT.
    struct ConfigOperation: Sendable {
        let name: String
        let operation: Int8
        let value: String

        /// `effective`: the value in effect before this change (what APPEND and SUBTRACT start
        /// from when the resource has no value of its own).
        func apply(to configs: inout [String: String], isList: Bool, effective: String) throws {
            switch operation {
            case 0: configs[name] = value
            case 1: configs[name] = nil
            case 2, 3:
                guard isList else {
                    throw DescribedKafkaError(.invalidConfig, "Config value \(operation == 2 ? "append" : "subtract") is not allowed for config key: \(name)")
                }
                var items = Broker.listItems(configs[name] ?? effective)
                let given = Broker.listItems(value)
                if operation == 2 {
                    items += given.filter { !items.contains($0) }
                } else {
                    items.removeAll { given.contains($0) }
                }
                configs[name] = items.joined(separator: ",")
            default:
                throw DescribedKafkaError(.invalidRequest, "Unknown config operation \(operation) for \(name)")
            }
        }
    }

    enum AlterableResource {
        case topic(String)
        /// A broker entity: "" (cluster-wide defaults) or this broker's id.
        case broker(String)
    }

    /// Topics (not internal ones) and BROKER resources can be altered. A BROKER resource is the
    /// cluster-wide defaults ("") or this broker (Kafka's `validateResourceNameIsCurrentNodeId`).
    private func alterable(_ type: Int8, _ name: String) throws -> AlterableResource {
        switch type {
        case Self.topicResource:
            guard !Self.internalTopics.contains(name) else {
                throw DescribedKafkaError(.invalidTopic, "Topic \(name) is internal: its configs cannot be altered")
            }
            return .topic(name)
        case Self.brokerResource:
            if !name.isEmpty {
                guard let id = Int32(name) else { throw DescribedKafkaError(.invalidRequest, "Node id must be an integer, but it is: \(name)") }
                guard id == config.nodeId else {
                    throw DescribedKafkaError(.invalidRequest, "Unexpected broker id, expected \(config.nodeId), but received \(name)")
                }
            }
            return .broker(name)
        case Self.brokerLoggerResource:
            throw DescribedKafkaError(.invalidRequest, "Tern's log level is set when the broker starts (--log-level); it cannot be altered at run time")
        default:
            throw DescribedKafkaError(.invalidRequest, "Unknown resource type \(type)")
        }
    }

    struct ResourceKey: Hashable {
        let type: Int8
        let name: String
        init(_ type: Int8, _ name: String) { (self.type, self.name) = (type, name) }
    }

    /// Resources named more than once in one request: Kafka refuses every copy.
    static func duplicatedResources(_ resources: [(Int8, String)]) -> Set<ResourceKey> {
        var seen = Set<ResourceKey>()
        var duplicated = Set<ResourceKey>()
        for (type, name) in resources where !seen.insert(ResourceKey(type, name)).inserted {
            duplicated.insert(ResourceKey(type, name))
        }
        return duplicated
    }

    private static func checkDistinct(_ names: [String]) throws {
        guard Set(names).count == names.count else { throw DescribedKafkaError(.invalidRequest, "Error due to duplicate config keys") }
    }

    static func listItems(_ value: String) -> [String] {
        value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    static func configError(_ error: Error) -> (Int16, String?) {
        if let described = error as? DescribedKafkaError { return (described.code.rawValue, described.message) }
        let code = KafkaError(error)
        return (code.rawValue, "\(code)")
    }
}
