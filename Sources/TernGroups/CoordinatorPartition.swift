/// Which partition of `__consumer_offsets` (or `__transaction_state`) holds a group's (or
/// transactional id's) state: Kafka's `Utils.abs(key.hashCode()) % partitions`, with Java's
/// String.hashCode over UTF-16 code units — the same partition Kafka picks, so a data directory
/// moved between the two keeps every group where it was.
public enum CoordinatorPartition {
    public static func of(_ key: String, partitions: Int) -> Int {
        precondition(partitions > 0, "an internal topic has at least one partition")
        var h: Int32 = 0
        for unit in key.utf16 { h = h &* 31 &+ Int32(unit) }
        let nonNegative = h == Int32.min ? 0 : abs(h)
        return Int(nonNegative) % partitions
    }
}
