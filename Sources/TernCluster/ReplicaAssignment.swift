/// Where a new topic's replicas go, the way Kafka's controller places them: the first replica of
/// partition p on the broker `start + p` (so leaders spread evenly), the others at a shift from it
/// that grows by one each time the partitions wrap around the brokers (so followers spread too).
/// With racks, brokers are ordered alternating between racks and a partition takes a replica from
/// a rack it already uses only once every rack has one.
public enum ReplicaAssignment {
    public struct Broker: Sendable, Equatable {
        public var id: Int32
        public var rack: String?
        public init(id: Int32, rack: String? = nil) {
            self.id = id
            self.rack = rack
        }
    }

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case replicationFactorTooLarge(requested: Int, brokers: Int)
        case invalidCount(String)
        case someBrokersWithoutRack

        public var description: String {
            switch self {
            case .replicationFactorTooLarge(let rf, let n):
                return "Replication factor: \(rf) larger than available brokers: \(n)."
            case .invalidCount(let what): return what
            case .someBrokersWithoutRack: return "Not all brokers have rack information for replica rack aware assignment."
            }
        }
    }

    /// Replica lists for `partitions` new partitions numbered from `firstPartition` (CreatePartitions
    /// continues a topic). `start` picks the first broker (random in Kafka; fixed for repeatable
    /// tests). Brokers are used in node id order.
    public static func assign(partitions: Int, replicationFactor: Int, brokers: [Broker], firstPartition: Int = 0, start: Int) throws -> [[Int32]] {
        guard partitions > 0 else { throw Failure.invalidCount("Number of partitions must be larger than 0.") }
        guard replicationFactor > 0 else { throw Failure.invalidCount("Replication factor must be larger than 0.") }
        guard replicationFactor <= brokers.count else {
            throw Failure.replicationFactorTooLarge(requested: replicationFactor, brokers: brokers.count)
        }
        let withRacks = brokers.filter { $0.rack != nil }.count
        if withRacks == 0 {
            return spread(partitions, replicationFactor, brokers.sorted { $0.id < $1.id }, firstPartition, start, racks: nil)
        }
        guard withRacks == brokers.count else { throw Failure.someBrokersWithoutRack }
        let ordered = alternatingRacks(brokers)
        return spread(partitions, replicationFactor, ordered, firstPartition, start, racks: ordered.map { $0.rack! })
    }

    /// Brokers ordered rack by rack in turn — a1, b1, c1, a2, b2, … — racks and brokers in order.
    static func alternatingRacks(_ brokers: [Broker]) -> [Broker] {
        let byRack = Dictionary(grouping: brokers, by: { $0.rack! }).mapValues { $0.sorted { $0.id < $1.id } }
        let racks = byRack.keys.sorted()
        var out: [Broker] = []
        var round = 0
        while out.count < brokers.count {
            for rack in racks where round < byRack[rack]!.count { out.append(byRack[rack]![round]) }
            round += 1
        }
        return out
    }

    private static func spread(_ partitions: Int, _ rf: Int, _ brokers: [Broker], _ firstPartition: Int, _ start: Int, racks: [String]?) -> [[Int32]] {
        let n = brokers.count
        let rackCount = Set(racks ?? []).count
        var shift = start
        var result: [[Int32]] = []
        for p in firstPartition..<(firstPartition + partitions) {
            if p > 0 && p % n == 0 { shift += 1 }
            let first = (p + start) % n
            var chosen = [first]
            var usedRacks: Set<String> = racks.map { [$0[first]] } ?? []
            var k = 0
            while chosen.count < rf {
                // The j-th follower of a partition sits 1 + (shift + j) mod (n - 1) places after its
                // leader; with racks, a candidate in a rack already used is passed over until
                // every rack holds a replica.
                let candidate = (first + 1 + (shift + k) % max(n - 1, 1)) % n
                k += 1
                if chosen.contains(candidate) {
                    if k > 2 * n { chosen.append(firstUnused(chosen, n)) }
                    continue
                }
                if let racks, usedRacks.count < rackCount, usedRacks.contains(racks[candidate]), k <= 2 * n { continue }
                chosen.append(candidate)
                if let racks { usedRacks.insert(racks[candidate]) }
            }
            result.append(chosen.map { brokers[$0].id })
        }
        return result
    }

    private static func firstUnused(_ chosen: [Int], _ n: Int) -> Int {
        (0..<n).first { !chosen.contains($0) }!
    }
}
