import ArgumentParser
import Foundation
import NIOCore
import TernClient
import TernProtocol

struct ProduceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "produce", abstract: "Produce one record per line of standard input.",
        discussion: "With --key-separator, the text before the first separator is the key.")

    @OptionGroup var options: ClientOptions
    @Argument var topic: String
    @Option(name: [.short, .long], help: "Separator between key and value on each line.") var keySeparator: String?
    @Option(name: [.customShort("H"), .customLong("header")], help: "Header key=value on every record; repeatable.") var headers: [String] = []
    @Option(name: [.short, .long], help: "Partition (default: by key, sticky when unkeyed).") var partition: Int32?
    @Option(name: .long, help: "none, gzip, snappy, lz4 or zstd.") var compression: String = "none"
    @Option(name: .long, parsing: .unconditional, help: "0, 1, or -1 / all.") var acks = Acks(-1)

    mutating func run() async throws {
        let headers = try parsePairs(headers, what: "--header").map { RecordHeader(key: $0.0, value: ByteBuffer(string: $0.1)) }
        var config = Producer.Config()
        config.acks = acks.value
        guard let codec = CompressionCodec(kafkaName: compression) else {
            throw ValidationError("--compression must be none, gzip, snappy, lz4 or zstd")
        }
        config.compression = codec
        let (topic, separator, partition) = (self.topic, self.keySeparator, self.partition)
        try await withClient(options) { client in
            let producer = Producer(client: client, config: config)
            try await producer.prepare(topic: topic)
            let failures = FailureCounter()
            var count = 0
            while let line = readLine(strippingNewline: true) {
                var key: ByteBuffer?
                var value = line
                if let separator, let r = line.range(of: separator) {
                    key = ByteBuffer(string: String(line[..<r.lowerBound]))
                    value = String(line[r.upperBound...])
                }
                try producer.send(topic: topic, partition: partition, key: key, value: ByteBuffer(string: value), headers: headers) { result in
                    if case .failure(let e) = result { failures.record(e) }
                }
                count += 1
            }
            await producer.close()
            if let e = failures.first { throw e }
            FileHandle.standardError.write(Data("produced \(count) records to \(topic)\n".utf8))
        }
    }
}

/// Remembers the first failure reported by producer callbacks. Sendable: its state is only touched
/// under its lock.
final class FailureCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var error: Error?
    func record(_ e: Error) {
        lock.lock()
        if error == nil { error = e }
        lock.unlock()
    }
    var first: Error? {
        lock.lock()
        defer { lock.unlock() }
        return error
    }
}
