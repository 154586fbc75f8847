import NIOConcurrencyHelpers
import NIOCore
import TernCluster
import TernProtocol

/// AlterConfigs and IncrementalAlterConfigs, in two steps: the handler checks every resource and
/// collects the changes, then they are written. A single broker writes topic overrides in its
/// topic store at once; a cluster writes them to the topic's record in etcd (a compare-and-swap
/// any broker may make, as Kafka brokers wrote topic configs to ZooKeeper) and every broker
/// applies them when the change reaches its image. Dynamic broker configs are always written
/// afterwards, off the event loop (`writeBrokerConfigs`). A failed write turns that resource's
/// result into the error.
extension Broker {
    func alteringConfigs<Response: ConfigResults>(
        on loop: EventLoop, _ compute: (ConfigWriters) -> Response
    ) -> EventLoopFuture<Response> {
        let topicWrites = NIOLockedValueBox<[(String, [String: String])]>([])
        let brokerWrites = NIOLockedValueBox<[(String, @Sendable ([String: String]) throws -> [String: String])]>([])
        let view = self.view
        let topicWrite: ConfigWrite
        if cluster == nil {
            topicWrite = localConfigWrite
        } else {
            topicWrite = { name, configs, validateOnly in
                try TopicConfigCatalog.validate(configs)
                guard view.topic(name) != nil else { throw KafkaError.unknownTopicOrPartition }
                if !validateOnly { topicWrites.withLockedValue { $0.append((name, configs)) } }
            }
        }
        let computed = compute(ConfigWriters(topic: topicWrite, broker: { entity, change in brokerWrites.withLockedValue { $0.append((entity, change)) } }))
        let (topics, brokers) = (topicWrites.withLockedValue { $0 }, brokerWrites.withLockedValue { $0 })
        guard !topics.isEmpty || !brokers.isEmpty else { return loop.makeSucceededFuture(computed) }
        let cluster = self.cluster
        return loop.makeFutureWithTask { [self] in
            var response = computed
            for (name, configs) in topics {
                guard let cluster else { preconditionFailure("a single broker writes topic configs at once") }
                do {
                    try await cluster.member.updateTopic(name, byController: false) { record in
                        var next = record
                        next.configs = configs
                        return next
                    }
                } catch {
                    let (code, message) = Self.configError(error)
                    response.fail(resourceType: Self.topicResource, name: name, code: code, message: message)
                }
            }
            for (entity, change) in brokers {
                do {
                    try await writeBrokerConfigs(entity, change)
                } catch {
                    let (code, message) = Self.configError(error)
                    response.fail(resourceType: Self.brokerResource, name: entity, code: code, message: message)
                }
            }
            return response
        }
    }
}

/// A config-altering response whose per-resource result can be turned into an error afterwards.
protocol ConfigResults: Sendable {
    mutating func fail(resourceType: Int8, name: String, code: Int16, message: String?)
}

extension AlterConfigsResponse: ConfigResults {
    mutating func fail(resourceType: Int8, name: String, code: Int16, message: String?) {
        for i in responses.indices where responses[i].resourceType == resourceType && responses[i].resourceName == name {
            responses[i].errorCode = code
            responses[i].errorMessage = message
        }
    }
}

extension IncrementalAlterConfigsResponse: ConfigResults {
    mutating func fail(resourceType: Int8, name: String, code: Int16, message: String?) {
        for i in responses.indices where responses[i].resourceType == resourceType && responses[i].resourceName == name {
            responses[i].errorCode = code
            responses[i].errorMessage = message
        }
    }
}
