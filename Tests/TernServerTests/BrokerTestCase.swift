import Foundation
import Logging
import XCTest

@testable import TernBroker

/// A single broker in a fresh temporary directory for each test, shut down and removed after it;
/// subclasses adjust its config in `configure`.
class BrokerTestCase: XCTestCase {
    var dataDir: String!
    var broker: Broker!

    func configure(_ config: inout BrokerConfig) {}

    override func setUpWithError() throws {
        dataDir = NSTemporaryDirectory() + "tern-\(type(of: self))-" + UUID().uuidString
        var config = BrokerConfig()
        config.logDir = dataDir
        configure(&config)
        broker = try Broker(config: config, logger: Logger(label: "test"))
    }

    override func tearDown() {
        broker.shutdownSingleBroker()
        try? FileManager.default.removeItem(atPath: dataDir)
    }
}
