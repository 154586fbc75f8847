/// Kafka's 128-bit UUID (topic ids), written as 16 raw big-endian bytes. All zero means "none".
public struct KafkaUUID: Hashable, Sendable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64

    public static let zero = KafkaUUID(high: 0, low: 0)

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// A random version-4 UUID.
    public static func random() -> KafkaUUID {
        var g = SystemRandomNumberGenerator()
        let high = (g.next() & ~UInt64(0xF000)) | 0x4000
        let low = (g.next() & ~(UInt64(0xC) << 60)) | (UInt64(0x8) << 60)
        return KafkaUUID(high: high, low: low)
    }

    public var description: String {
        let h = String(high, radix: 16), l = String(low, radix: 16)
        return String(repeating: "0", count: 16 - h.count) + h + String(repeating: "0", count: 16 - l.count) + l
    }

    /// Parses the 32-hex-digit form produced by `description`.
    public init?(hex: String) {
        guard hex.count == 32, let h = UInt64(hex.prefix(16), radix: 16), let l = UInt64(hex.suffix(16), radix: 16) else {
            return nil
        }
        self.init(high: h, low: l)
    }
}
