/// A Kafka schema version range: "0+", "3-5", "7" or "none".
public struct VersionRange: Equatable, Sendable {
    public let lowest: Int
    /// Inclusive; `Int(Int16.max)` for an open range ("N+").
    public let highest: Int

    public static let none = VersionRange(lowest: 1, highest: 0)
    public var isEmpty: Bool { lowest > highest }
    public var isOpen: Bool { highest == Int(Int16.max) }

    public init(lowest: Int, highest: Int) {
        self.lowest = lowest
        self.highest = highest
    }

    public init(parsing text: String) throws {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t == "none" {
            self = .none
        } else if t.hasSuffix("+"), let lo = Int(t.dropLast()) {
            self.init(lowest: lo, highest: Int(Int16.max))
        } else if let dash = t.firstIndex(of: "-"), let lo = Int(t[..<dash]), let hi = Int(t[t.index(after: dash)...]) {
            self.init(lowest: lo, highest: hi)
        } else if let v = Int(t) {
            self.init(lowest: v, highest: v)
        } else {
            throw GeneratorError.badSchema("version range '\(text)'")
        }
    }

    public func contains(_ v: Int) -> Bool { v >= lowest && v <= highest }

    public func intersection(_ other: VersionRange) -> VersionRange {
        VersionRange(lowest: max(lowest, other.lowest), highest: min(highest, other.highest))
    }

    /// True when every version in `within` is in this range.
    public func covers(_ within: VersionRange) -> Bool {
        within.isEmpty || (lowest <= within.lowest && highest >= within.highest)
    }

    /// A Swift boolean expression over `version` that is true inside this range, given that
    /// `version` is already known to lie in `within`. Returns "true"/"false" when constant.
    public func condition(within: VersionRange) -> String {
        let r = intersection(within)
        if r.isEmpty { return "false" }
        if r == within { return "true" }
        var parts: [String] = []
        if r.lowest > within.lowest { parts.append("version >= \(r.lowest)") }
        if r.highest < within.highest { parts.append("version <= \(r.highest)") }
        return parts.joined(separator: " && ")
    }
}

public enum GeneratorError: Error, CustomStringConvertible {
    case badSchema(String)
    public var description: String {
        switch self {
        case .badSchema(let s): return "bad schema: \(s)"
        }
    }
}
