import Foundation
import NIOCore
import TernProtocol

/// What a generated field holds (from its schema's `entityType` or name; `FuzzEmitter`), so the
/// source can pick a value the broker under test knows.
enum FuzzHint {
    case none, topic, topicId, group, member, instance, transactionalId, producerId, producerEpoch, broker, partition
    case generation, milliseconds, bytes, count, offset, timestamp, configName, configValue, consumerProtocol
}

/// A request type the generator can fill from a source (every API's request: `Generated/`).
protocol FuzzedRequest: KafkaMessage {
    static func fuzzed(version: Int16, _ f: inout FuzzSource) -> Self
}

/// The names and ids a broker under test knows — topics, groups and their members, producers —
/// learned while seeding it, so generated requests are mostly about real state.
struct FuzzWorld: Sendable {
    var topics = ["fuzz", "fuzz-compact", "__consumer_offsets", "__transaction_state", "fuzz-unknown"]
    var topicIds: [KafkaUUID] = []
    var groups = ["fuzz-group", "fuzz-consumer-group", "fuzz-empty"]
    var members = ["", "unknown-member"]
    var instances = ["fuzz-instance"]
    var transactionalIds = ["fuzz-txn", "fuzz-txn-2"]
    var producerIds: [Int64] = []
    var producerEpochs: [Int16] = [0]
    var generations: [Int32] = [-1, 0, 1, 2]
    var brokers: [Int32] = [0, 1, 2, -1]

    /// What another broker's seeding learned, added to this.
    mutating func merge(_ other: FuzzWorld) {
        func union<T: Equatable>(_ a: inout [T], _ b: [T]) { a += b.filter { !a.contains($0) } }
        union(&topicIds, other.topicIds)
        union(&members, other.members)
        union(&producerIds, other.producerIds)
        union(&producerEpochs, other.producerEpochs)
        union(&generations, other.generations)
        union(&brokers, other.brokers)
    }
}

/// Where every choice of a generated request comes from: libFuzzer's input (so coverage guides
/// the choices, and an input replays exactly) or a seeded PRNG (the live driver). Past the end of
/// the input every byte is 0, which picks the first, plausible option everywhere.
///
/// Values mix what the broker knows (`FuzzWorld`), small numbers, and the extremes that break
/// unchecked arithmetic: each type's minimum and maximum, ±1 around them and around the Int16 and
/// Int32 boundaries. Strings may be invalid UTF-8 (written as DEL by the generator and turned into
/// 0xFF by `FuzzWriter`), or long enough that a decoder's repair grows them past their length field.
struct FuzzSource {
    private let input: [UInt8]
    private var position = 0
    private var prng: UInt64?
    var world: FuzzWorld

    init(bytes: [UInt8], world: FuzzWorld) {
        self.input = bytes
        self.world = world
    }

    init(seed: UInt64, world: FuzzWorld) {
        self.input = []
        self.prng = seed | 1
        self.world = world
    }

    var exhausted: Bool { prng == nil && position >= input.count }

    mutating func byte() -> UInt8 {
        if var x = prng {
            // xorshift64*
            x ^= x >> 12
            x ^= x << 25
            x ^= x >> 27
            prng = x
            return UInt8(truncatingIfNeeded: (x &* 2_685_821_657_736_338_717) >> 56)
        }
        guard position < input.count else { return 0 }
        defer { position += 1 }
        return input[position]
    }

    mutating func below(_ n: Int) -> Int {
        precondition(n > 0)
        let wide = Int(byte()) << 8 | Int(byte())
        return wide % n
    }

    mutating func pick<T>(_ choices: [T]) -> T { choices[below(choices.count)] }

    mutating func bool() -> Bool { byte() & 1 == 1 }

    /// About one nullable field in ten is null.
    mutating func null() -> Bool { byte() < 26 }

    mutating func double() -> Double { pick([0, -1, 1.5, .infinity, -.infinity, .nan, .greatestFiniteMagnitude, 1e-300]) }

    mutating func integer<T: FixedWidthInteger>(_ hint: FuzzHint) -> T {
        switch byte() {
        case 0..<120:
            if let v = plausible(hint) { return T(truncatingIfNeeded: v) }
            return T(truncatingIfNeeded: Int64(byte() % 8))
        case 120..<184:
            let extremes: [T] = [.min, .max, .max &- 1, .min &+ 1, 0 &- 1, 0 &- 2]
            let crossings: [Int64] = [
                Int64(Int16.max), Int64(Int16.max) + 1, Int64(Int16.min), Int64(Int32.max), Int64(Int32.max) + 1, Int64(Int32.min),
                Int64(Int32.min) - 1, Int64(UInt16.max), Int64(UInt32.max), .max, .min, 0x7f, 0x80, 0xff, 0x100, 1 << 24, 1 << 40,
            ]
            let n = below(extremes.count + crossings.count)
            return n < extremes.count ? extremes[n] : T(truncatingIfNeeded: crossings[n - extremes.count])
        case 184..<224:
            return T(truncatingIfNeeded: Int64(byte()) - 4)
        default:
            var v: UInt64 = 0
            for _ in 0..<(T.bitWidth / 8) { v = v << 8 | UInt64(byte()) }
            return T(truncatingIfNeeded: v)
        }
    }

    private mutating func plausible(_ hint: FuzzHint) -> Int64? {
        switch hint {
        case .partition: return pick([0, 1, 2, 0, 1, 2, 3, -1, 49, 50])
        case .producerId: return world.producerIds.isEmpty ? -1 : (byte() < 220 ? pick(world.producerIds) : -1)
        case .producerEpoch: return Int64(byte() < 200 ? pick(world.producerEpochs) : pick([-1, 1, 2, Int16.max]))
        case .generation: return Int64(pick(world.generations))
        case .broker: return Int64(pick(world.brokers))
        case .milliseconds: return pick([0, 1, 10, 100, 250, 500, 1000, 6000, 10000, 45000])
        case .bytes: return pick([0, 1, 100, 1 << 16, 1 << 20, 50 << 20])
        case .offset: return pick([0, 1, 2, 5, 10, 100, -1, -2, -3, -4, 1000])
        case .timestamp:
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            return pick([now, -1, -2, -3, 0, now - 86_400_000, now + 86_400_000, now - 3_600_000])
        case .count: return Int64(byte() % 7)
        default: return nil
        }
    }

    /// A length from the boundaries that matter for strings: an int16 length field, a topic
    /// name's 249 characters, and a third of 32767 (each invalid byte grows into a 3-byte U+FFFD).
    private mutating func length() -> Int {
        pick([1, 2, 100, 249, 250, 256, 1000, 10922, 10923, 16384, 32767])
    }

    mutating func string(_ hint: FuzzHint) -> String {
        switch byte() {
        case 0..<140: return plausibleString(hint) ?? shortString()
        case 140..<156: return ""
        case 156..<196: return shortString()
        case 196..<216: return String(repeating: "\u{7F}", count: length())  // invalid UTF-8 on the wire
        case 216..<236: return String(repeating: "a", count: length())
        default:
            let (char, width) = pick([("é", 2), ("€", 3), ("😀", 4)])
            return String(repeating: char, count: max(1, length() / width))
        }
    }

    private mutating func shortString() -> String {
        let alphabet = Array("abcxyz019._-/ \u{0}")
        return String((0..<Int(byte() % 24)).map { _ in pick(alphabet) })
    }

    private mutating func plausibleString(_ hint: FuzzHint) -> String? {
        switch hint {
        case .topic: return pick(world.topics)
        case .group: return pick(world.groups)
        case .member: return pick(world.members)
        case .instance: return pick(world.instances)
        case .transactionalId: return pick(world.transactionalIds)
        case .configName:
            return pick([
                "cleanup.policy", "retention.ms", "retention.bytes", "segment.bytes", "segment.ms", "max.message.bytes",
                "min.insync.replicas", "message.timestamp.type", "compression.type", "message.timestamp.before.max.ms",
                "log.retention.ms", "num.partitions", "unknown.config", "delete.retention.ms", "index.interval.bytes",
                // Dynamic broker configs (not max.connections: closing the door on new connections is
                // an operator's right, and would read as a hang to the liveness probe).
                "message.max.bytes", "log.segment.bytes", "log.cleanup.policy", "log.retention.hours", "num.io.threads",
                "sasl.kerberos.min.time.before.relogin", "log.dirs",
            ])
        case .configValue:
            return pick([
                "compact", "delete", "compact,delete", "-1", "0", "1", "2147483648", "9223372036854775807", "-9223372036854775808",
                "LogAppendTime", "CreateTime", "lz4", "zstd", "x", "1e9", "",
            ])
        case .none: return pick(["consumer", "range", "roundrobin", "uniform", "PLAIN", "SCRAM-SHA-256", "x"])
        default: return nil
        }
    }

    mutating func uuid(_ hint: FuzzHint) -> KafkaUUID {
        if hint == .topicId, !world.topicIds.isEmpty, byte() < 200 { return pick(world.topicIds) }
        return byte() < 128 ? .zero : KafkaUUID(high: integer(.none), low: integer(.none))
    }

    mutating func bytes(_ hint: FuzzHint) -> ByteBuffer {
        if hint == .consumerProtocol, byte() < 180 { return consumerProtocol() }
        switch byte() {
        case 0..<40: return ByteBuffer()
        case 40..<220: return ByteBuffer(bytes: (0..<Int(byte() % 40)).map { _ in byte() })
        default: return ByteBuffer(repeating: byte(), count: length())
        }
    }

    /// A subscription or assignment of the "consumer" protocol, as clients embed in JoinGroup
    /// and SyncGroup: an int16 version, then the body of that version (or of another).
    private mutating func consumerProtocol() -> ByteBuffer {
        let version: Int16 = byte() < 200 ? Int16(byte() % 4) : integer(.none)
        var out = FuzzWriter()
        out.writeKafkaInteger(version)
        let bodyVersion = min(max(version, 0), 3)
        if bool() {
            ConsumerProtocolSubscription.fuzzed(version: bodyVersion, &self).encode(to: &out, version: bodyVersion)
        } else {
            ConsumerProtocolAssignment.fuzzed(version: bodyVersion, &self).encode(to: &out, version: bodyVersion)
        }
        return out.buffer
    }

    mutating func array<T>(_ make: (inout FuzzSource) -> T) -> [T] {
        let count: Int
        switch byte() {
        case 0..<40: count = 0
        case 40..<170: count = 1
        case 170..<205: count = 2
        case 205..<230: count = 3
        case 230..<252: count = Int(byte() % 16)
        default: count = pick([64, 300])
        }
        return (0..<count).map { _ in make(&self) }
    }

    mutating func records() -> KafkaRecords {
        switch byte() {
        case 0..<16: return .empty
        case 16..<32: return .bytes(ByteBuffer(bytes: (0..<Int(byte())).map { _ in byte() }))
        default:
            var out = ByteBuffer()
            for _ in 0..<(byte() < 230 ? 1 : 2) { out.writeImmutableBuffer(batch()) }
            return .bytes(out)
        }
    }

    /// A record batch v2 that is mostly well formed — so it gets past the CRC and framing checks to
    /// the rules behind them — with fields drawn from the extremes: timestamps, offsets, counts,
    /// key and value lengths below -1, producer fields of known and unknown producers, control and
    /// transactional bits, every codec.
    mutating func batch() -> ByteBuffer {
        let count = pick([1, 1, 1, 2, 3, 5, 0, 50])
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let baseTimestamp: Int64 = byte() < 200 ? now : integer(.timestamp)
        var records = ByteBuffer()
        for i in 0..<count {
            var r = ByteBuffer()
            r.writeInteger(UInt8(0))
            r.writeVarlong(byte() < 230 ? Int64(i) : integer(.none))
            r.writeVarint(byte() < 230 ? Int32(i) : integer(.none))
            for _ in 0..<2 {  // key, value
                let length: Int32 = byte() < 220 ? pick([-1, 0, 1, 5]) : pick([-2, -7, -9, Int32.min, 1 << 20])
                r.writeVarint(length)
                if length > 0 && length < 100 { r.writeRepeatingByte(0x61, count: Int(length)) }
            }
            let headers: Int32 = byte() < 220 ? pick([0, 0, 1]) : pick([-1, 2, 1000])
            r.writeVarint(headers)
            for _ in 0..<max(0, min(headers, 2)) {
                r.writeVarint(1)
                r.writeString("h")
                r.writeVarint(byte() < 200 ? 1 : pick([-1, -2]))
                r.writeString("v")
            }
            records.writeVarint(byte() < 240 ? Int32(r.readableBytes) : integer(.none))
            records.writeImmutableBuffer(r)
        }
        var attributes: Int16 = byte() < 180 ? 0 : Int16(byte() % 5)
        if byte() > 230 { attributes |= 0x10 }  // transactional
        if byte() > 245 { attributes |= 0x20 }  // control
        if byte() > 240 { attributes |= 0x08 }  // LogAppendTime
        if byte() > 250 { attributes = integer(.none) }
        if let codec = CompressionCodec(rawValue: attributes & 0x7), codec != .none,
            let compressed = try? RecordCompression.compress(records, codec: codec)
        {
            records = compressed
        }
        let producer: (Int64, Int16, Int32) =
            world.producerIds.isEmpty || byte() < 120
            ? (-1, -1, -1) : (pick(world.producerIds), pick(world.producerEpochs), pick([0, 0, 1, 5, -1, Int32.max]))
        var b = ByteBuffer()
        b.writeInteger(byte() < 230 ? Int64(0) : integer(.offset))
        b.writeInteger(Int32(49 + records.readableBytes))
        b.writeInteger(Int32(-1))
        b.writeInteger(byte() < 245 ? Int8(2) : integer(.none))
        b.writeInteger(UInt32(0))
        b.writeInteger(attributes)
        b.writeInteger(byte() < 220 ? Int32(max(0, count - 1)) : integer(.count))
        b.writeInteger(baseTimestamp)
        b.writeInteger(byte() < 220 ? baseTimestamp : integer(.timestamp))
        b.writeInteger(producer.0)
        b.writeInteger(producer.1)
        b.writeInteger(producer.2)
        b.writeInteger(byte() < 220 ? Int32(count) : integer(.count))
        b.writeImmutableBuffer(records)
        if byte() < 245 { RecordBatch.updateCRC(in: &b, batchAt: 0) }
        return b
    }
}

/// Writes generated requests: as a `ByteBuffer`, except that a string's DEL bytes become 0xFF, so
/// the generator can put invalid UTF-8 (which no Swift `String` holds) where a string goes.
struct FuzzWriter: KafkaWriter {
    var buffer = ByteBuffer()

    mutating func writeKafkaInteger<T: FixedWidthInteger>(_ value: T) { buffer.writeInteger(value) }
    mutating func appendKafkaRaw(_ bytes: ByteBuffer) { buffer.writeImmutableBuffer(bytes) }
    mutating func appendKafkaRecords(_ records: KafkaRecords) { buffer.writeImmutableBuffer(records.bytes) }
    mutating func appendKafkaUTF8(_ string: String) { buffer.writeBytes(string.utf8.map { $0 == 0x7F ? 0xFF : $0 }) }
}

/// One request frame (without its size prefix): the header for `version`, then the generated body.
func fuzzedFrame<R: FuzzedRequest>(_ type: R.Type, version: Int16, correlationId: Int32, _ f: inout FuzzSource) -> ByteBuffer {
    var out = FuzzWriter()
    let flexible = version >= R.firstFlexibleVersion
    RequestHeader(requestApiKey: R.apiKey, requestApiVersion: version, correlationId: correlationId, clientId: f.byte() < 240 ? "tern-fuzz" : nil)
        .encode(to: &out.buffer, version: flexible ? 2 : 1)
    R.fuzzed(version: version, &f).encode(to: &out, version: version)
    return out.buffer
}
