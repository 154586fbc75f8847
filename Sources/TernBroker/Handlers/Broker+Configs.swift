import TernLog
import TernProtocol

extension Broker {
    /// Topic resources only (type 2); SET and DELETE operations (APPEND/SUBTRACT apply to list
    /// configs, which Tern's topic configs are not).
    func incrementalAlterConfigs(_ request: IncrementalAlterConfigsRequest, version: Int16) -> IncrementalAlterConfigsResponse {
        IncrementalAlterConfigsResponse(responses: request.resources.map { r in
            var result = IncrementalAlterConfigsResponse.AlterConfigsResourceResponse(
                errorMessage: nil, resourceType: r.resourceType, resourceName: r.resourceName)
            do {
                guard r.resourceType == 2 else { throw KafkaError.invalidRequest }
                guard !Self.internalTopics.contains(r.resourceName) else { throw KafkaError.invalidTopic }
                var set: [String: String] = [:]
                var delete: [String] = []
                for c in r.configs {
                    switch c.configOperation {
                    case 0: set[c.name] = c.value ?? ""
                    case 1: delete.append(c.name)
                    default: throw KafkaError.invalidRequest
                    }
                }
                try topics.alterConfigs(r.resourceName, set: set, delete: delete, validateOnly: request.validateOnly)
            } catch {
                let code = KafkaError(error)
                result.errorCode = code.rawValue
                result.errorMessage = "\(code)"
            }
            return result
        })
    }

    /// Topic configs: the topic's own values (source TOPIC_CONFIG) and the broker defaults for the
    /// rest (source DEFAULT_CONFIG).
    func describeConfigs(_ request: DescribeConfigsRequest, version: Int16) -> DescribeConfigsResponse {
        DescribeConfigsResponse(results: request.resources.map { r in
            var result = DescribeConfigsResponse.DescribeConfigsResult(errorMessage: nil, resourceType: r.resourceType, resourceName: r.resourceName)
            guard r.resourceType == 2, let topic = topics.topic(r.resourceName) else {
                result.errorCode = (r.resourceType == 2 ? KafkaError.unknownTopicOrPartition : .invalidRequest).rawValue
                return result
            }
            let own = topic.metadata.configs
            let defaults = brokerTopicDefaults()
            let keys = r.configurationKeys ?? Array(Set(defaults.keys).union(own.keys)).sorted()
            result.configs = keys.compactMap { key in
                guard let value = own[key] ?? defaults[key] else { return nil }
                let isDefault = own[key] == nil
                return .init(name: key, value: value, readOnly: false, isDefault: isDefault, configSource: isDefault ? 5 : 1, isSensitive: false)
            }
            return result
        })
    }

    private func brokerTopicDefaults() -> [String: String] {
        let l = config.log
        return [
            "segment.bytes": "\(l.segmentBytes)", "segment.ms": "\(l.rollMs)", "retention.ms": "\(l.retentionMs)",
            "retention.bytes": "\(l.retentionBytes)", "delete.retention.ms": "\(l.deleteRetentionMs)",
            "cleanup.policy": [l.cleanupPolicy.contains(.delete) ? "delete" : nil, l.cleanupPolicy.contains(.compact) ? "compact" : nil]
                .compactMap { $0 }.joined(separator: ","),
            "compression.type": config.compression.rawValue, "index.interval.bytes": "\(l.indexIntervalBytes)",
            "max.message.bytes": "\(config.messageMaxBytes)",
        ]
    }
}
