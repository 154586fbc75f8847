import NIOCore

/// The cleaner's map from key to the newest offset seen for it, with a fixed memory budget
/// (`log.cleaner.dedupe.buffer.size`), as Kafka's SkimpyOffsetMap: keys are kept as 128-bit
/// digests, not copies, so an entry costs the same whatever the key's size. When the map is full
/// the pass stops there and the next pass starts after it.
///
/// A digest collision would make two keys one; at 128 bits the odds for a billion keys are about
/// 10^-21 per pass — the same trade Kafka makes with MD5. The digests are seeded per process
/// (Swift's `Hasher`), which is enough: a map lives for one pass.
struct CleanerOffsetMap {
    struct Digest: Hashable {
        let high: UInt64
        let low: UInt64

        init(_ key: ByteBuffer) {
            var h1 = Hasher()
            var h2 = Hasher()
            h2.combine(0x7465_726e as UInt32)  // a second, independent 64 bits
            key.withUnsafeReadableBytes { bytes in
                h1.combine(bytes: bytes)
                h2.combine(bytes: bytes)
            }
            high = UInt64(bitPattern: Int64(h1.finalize()))
            low = UInt64(bitPattern: Int64(h2.finalize()))
        }
    }

    /// What one entry is counted as: a 16-byte digest and an 8-byte offset in a hash table kept at
    /// most 3/4 full, plus the table's per-slot metadata, rounded up.
    static let bytesPerEntry = 40

    let capacity: Int
    private(set) var newest: [Digest: Int64] = [:]

    init(budgetBytes: Int) {
        capacity = max(1, budgetBytes / Self.bytesPerEntry)
        newest.reserveCapacity(min(capacity, 1 << 20))
    }

    var count: Int { newest.count }

    /// Room for `records` more keys (always true while empty, so every pass makes progress).
    func hasRoom(for records: Int) -> Bool { newest.isEmpty || newest.count + records <= capacity }

    mutating func record(_ key: ByteBuffer, at offset: Int64) { newest[Digest(key)] = offset }

    func newestOffset(of key: ByteBuffer) -> Int64? { newest[Digest(key)] }
}
