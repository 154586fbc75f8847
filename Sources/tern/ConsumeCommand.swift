import ArgumentParser
import Foundation
import NIOCore
import TernClient
import TernProtocol

struct ConsumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consume", abstract: "Print records of a topic.",
        discussion: """
            Format placeholders: %t topic, %p partition, %o offset, %T timestamp, %k key, %v value, %h headers (k=v,…), \
            \\n newline, \\t tab. Default "%v\\n".
            """)

    @OptionGroup var options: ClientOptions
    @Argument var topic: String
    @Option(name: [.short, .long], help: "start | end | <offset> | @<timestamp ms> (ignored for partitions the group committed).") var offset: String = "start"
    @Option(name: [.short, .long], help: "Only this partition; repeatable.") var partition: [Int32] = []
    @Option(name: [.short, .long], help: "Consume as a member of this group, committing as it goes.") var group: String?
    @Option(name: [.short, .long], help: "Output format.") var format: String = "%v\\n"
    @Option(name: [.customShort("n"), .long], help: "Stop after this many records.") var count: Int?
    @Flag(name: [.customShort("e"), .customLong("exit-at-end")], help: "Stop at the end of every partition.") var exitAtEnd = false

    mutating func run() async throws {
        let start: Consumer.StartOffset
        switch offset {
        case "start", "beginning", "earliest": start = .earliest
        case "end", "latest": start = .latest
        case let s where s.hasPrefix("@"):
            guard let t = Int64(s.dropFirst()) else { throw ValidationError("bad timestamp \(s)") }
            start = .timestamp(t)
        default:
            guard let o = Int64(offset) else { throw ValidationError("bad offset \(offset)") }
            start = .offset(o)
        }
        let (topic, partitions, groupName, format, limit, exitAtEnd) = (self.topic, self.partition, self.group, self.format, self.count, self.exitAtEnd)
        try await withClient(options) { client in
            let consumer = Consumer(client: client)
            var member: GroupMember?
            var printed = 0
            var lastHeartbeat = Date()
            func assignFromGroup(_ m: GroupMember) async throws {
                let mine = try await m.join()
                let committed = try await m.committed()
                consumer.unassignAll()
                for tp in mine {
                    if let o = committed[tp] {
                        consumer.assign([tp: o])
                    } else {
                        try await consumer.assign(topic: tp.topic, partitions: [tp.partition], from: start)
                    }
                }
            }
            if let groupName {
                let m = GroupMember(client: client, group: groupName, topics: [topic])
                member = m
                try await assignFromGroup(m)
            } else {
                try await consumer.assign(topic: topic, partitions: partitions.isEmpty ? nil : partitions, from: start)
            }
            let out = FileHandle.standardOutput
            loop: while true {
                let records = try await consumer.poll()
                for r in records {
                    out.write(Data(Self.render(format, r).utf8))
                    printed += 1
                    if let limit, printed >= limit { break loop }
                }
                if let m = member {
                    if !records.isEmpty { try await m.commit(consumer.positions) }
                    if Date().timeIntervalSince(lastHeartbeat) > 1 {
                        lastHeartbeat = Date()
                        if try await !m.heartbeat() { try await assignFromGroup(m) }
                    }
                }
                if exitAtEnd && consumer.caughtUp { break }
            }
            if let m = member {
                try await m.commit(consumer.positions)
                await m.leave()
            }
        }
    }

    static func render(_ format: String, _ r: ConsumedRecord) -> String {
        var s = ""
        var chars = format.makeIterator()
        while let c = chars.next() {
            if c == "%", let n = chars.next() {
                switch n {
                case "t": s += r.topic
                case "p": s += "\(r.partition)"
                case "o": s += "\(r.offset)"
                case "T": s += "\(r.timestamp)"
                case "k": s += r.key.map { String(buffer: $0) } ?? ""
                case "v": s += r.value.map { String(buffer: $0) } ?? ""
                case "h": s += r.headers.map { "\($0.key)=\($0.value.map { String(buffer: $0) } ?? "")" }.joined(separator: ",")
                case "%": s += "%"
                default: s += "%\(n)"
                }
            } else if c == "\\", let n = chars.next() {
                s += n == "n" ? "\n" : n == "t" ? "\t" : "\\\(n)"
            } else {
                s.append(c)
            }
        }
        return s
    }
}
