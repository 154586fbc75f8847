import Foundation
import Logging
import TernProtocol
import XCTest

@testable import TernBroker
@testable import TernCluster
@testable import TernServer

/// Broker-to-broker channels open one connection per peer: concurrent first sends used to each
/// open their own (the actor let them all in while the first connect was awaited), and every
/// connection but the last stayed open, unused, for good.
final class BrokerChannelsTests: BrokerTestCase {
    override func configure(_ config: inout BrokerConfig) { config.port = 0 }

    func testConcurrentFirstSendsShareOneConnection() async throws {
        let server = try await KafkaServer(broker: broker, logger: Logger(label: "test"), threads: 1)
        let port = Int32(try XCTUnwrap(server.localPort))
        var image = MetadataImage(cluster: "c")
        let registration = BrokerRegistration(nodeId: 0, host: "127.0.0.1", port: port)
        try image.load([EtcdKeyValue(key: image.brokersKey + "0", value: Array(try JSONEncoder().encode(registration)),
                                     createRevision: 1, modRevision: 1, version: 1, lease: 0)], at: 1)
        let channels = BrokerChannels(nodeId: 7, image: { [image] in image })
        let answers = try await withThrowingTaskGroup(of: Int16.self) { group in
            for _ in 0..<20 {
                group.addTask {
                    try await channels.send(ApiVersionsRequest(), to: 0, api: .apiVersions, maxVersion: 0, as: ApiVersionsResponse.self).errorCode
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        XCTAssertEqual(answers, Array(repeating: 0, count: 20))
        XCTAssertEqual(broker.connectionCount, 1, "one connection for twenty first sends")
        await channels.shutdown()
        await server.shutdown()
    }
}
