import NIOCore

/// The Java client's default partitioner for keyed records: murmur2 of the key bytes, made
/// non-negative, modulo the partition count — so Tern's producer and Java's agree on placement.
public enum Murmur2 {
    public static func hash(_ data: ByteBuffer) -> Int32 {
        data.withUnsafeReadableBytes { bytes in
            let length = bytes.count
            let m: UInt32 = 0x5bd1_e995
            var h: UInt32 = 0x9747_b28c ^ UInt32(length)
            var i = 0
            while i + 4 <= length {
                var k = UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24
                k = k &* m
                k ^= k >> 24
                k = k &* m
                h = h &* m
                h ^= k
                i += 4
            }
            let rest = length & 3
            if rest == 3 { h ^= UInt32(bytes[i + 2]) << 16 }
            if rest >= 2 { h ^= UInt32(bytes[i + 1]) << 8 }
            if rest >= 1 {
                h ^= UInt32(bytes[i])
                h = h &* m
            }
            h ^= h >> 13
            h = h &* m
            h ^= h >> 15
            return Int32(bitPattern: h)
        }
    }

    public static func partition(for key: ByteBuffer, partitions: Int32) -> Int32 {
        (hash(key) & 0x7fff_ffff) % partitions
    }
}
