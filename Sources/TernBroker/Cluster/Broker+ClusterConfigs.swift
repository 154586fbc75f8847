import NIOConcurrencyHelpers
import NIOCore
import TernCluster
import TernProtocol

/// AlterConfigs and IncrementalAlterConfigs in cluster mode: the handlers check every resource as
/// on a single broker, collecting the new overrides; they are then written to the topic's record
/// in etcd (a compare-and-swap on the record any broker may make, as Kafka brokers wrote topic
/// configs to ZooKeeper), and every broker applies them when the change reaches its image. A
/// failed write turns that resource's result into the error.
extension Broker {
    func alteringTopicConfigs<Response: TopicConfigResults>(
        on loop: EventLoop, _ compute: (@escaping ConfigWrite) -> Response
    ) -> EventLoopFuture<Response> {
        guard let cluster else { return loop.makeSucceededFuture(compute(localConfigWrite)) }
        let pending = NIOLockedValueBox<[(String, [String: String])]>([])
        let view = self.view
        let computed = compute { name, configs, validateOnly in
            try TopicConfigCatalog.validate(configs)
            guard view.topic(name) != nil else { throw KafkaError.unknownTopicOrPartition }
            if !validateOnly { pending.withLockedValue { $0.append((name, configs)) } }
        }
        let writes = pending.withLockedValue { $0 }
        guard !writes.isEmpty else { return loop.makeSucceededFuture(computed) }
        return loop.makeFutureWithTask {
            var response = computed
            for (name, configs) in writes {
                do {
                    try await cluster.member.updateTopic(name, byController: false) { record in
                        var next = record
                        next.configs = configs
                        return next
                    }
                } catch {
                    let (code, message) = Self.configError(error)
                    response.fail(topic: name, code: code, message: message)
                }
            }
            return response
        }
    }
}

/// A config-altering response whose per-topic result can be turned into an error afterwards.
protocol TopicConfigResults: Sendable {
    mutating func fail(topic: String, code: Int16, message: String?)
}

extension AlterConfigsResponse: TopicConfigResults {
    mutating func fail(topic: String, code: Int16, message: String?) {
        for i in responses.indices where responses[i].resourceType == Broker.topicResource && responses[i].resourceName == topic {
            responses[i].errorCode = code
            responses[i].errorMessage = message
        }
    }
}

extension IncrementalAlterConfigsResponse: TopicConfigResults {
    mutating func fail(topic: String, code: Int16, message: String?) {
        for i in responses.indices where responses[i].resourceType == Broker.topicResource && responses[i].resourceName == topic {
            responses[i].errorCode = code
            responses[i].errorMessage = message
        }
    }
}
