import Foundation

/// A config value's type as DescribeConfigs v3+ reports it (`config_type`), Kafka's ids.
enum ConfigType: Int8, Sendable {
    case unknown = 0, boolean, string, int, short, long, double, list, classType, password
}

/// Where a described config value comes from (`config_source`), Kafka's ids.
enum ConfigSource: Int8, Sendable {
    case unknown = 0
    case topicConfig = 1
    case dynamicBrokerConfig = 2
    case dynamicDefaultBrokerConfig = 3
    case staticBrokerConfig = 4
    case defaultConfig = 5
    case dynamicBrokerLoggerConfig = 6
}

/// Checks one config value, answering why it is invalid (in Kafka's words) or nil.
struct ConfigCheck: Sendable {
    let problem: @Sendable (String) -> String?

    static func long(atLeast minimum: Int64) -> ConfigCheck {
        ConfigCheck { value in
            guard let v = Int64(value) else { return "Not a number of type LONG" }
            return v >= minimum ? nil : "Value must be at least \(minimum)"
        }
    }

    static let anyLong = ConfigCheck { Int64($0) == nil ? "Not a number of type LONG" : nil }

    static func int(atLeast minimum: Int32, atMost maximum: Int32 = .max) -> ConfigCheck {
        ConfigCheck { value in
            guard let v = Int32(value) else { return "Not a number of type INT" }
            if v < minimum { return "Value must be at least \(minimum)" }
            return v <= maximum ? nil : "Value must be no more than \(maximum)"
        }
    }

    static func double(between low: Double, and high: Double) -> ConfigCheck {
        ConfigCheck { value in
            guard let v = Double(value) else { return "Not a number of type DOUBLE" }
            return v >= low && v <= high ? nil : "Value must be between \(low) and \(high)"
        }
    }

    static let boolean = ConfigCheck { ["true", "false"].contains($0.lowercased()) ? nil : "Expected value to be either true or false" }

    static func oneOf(_ allowed: [String]) -> ConfigCheck {
        ConfigCheck { allowed.contains($0) ? nil : "String must be one of: \(allowed.joined(separator: ", "))" }
    }

    /// A comma-separated list whose items are all in `allowed` (an empty list only if `allowEmpty`).
    static func list(of allowed: [String], allowEmpty: Bool) -> ConfigCheck {
        ConfigCheck { value in
            let items = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            if items.isEmpty && !allowEmpty { return "Empty list is not allowed" }
            if let bad = items.first(where: { !allowed.contains($0) }) {
                return "Invalid value \(bad) for configuration: String must be one of: \(allowed.joined(separator: ", "))"
            }
            return nil
        }
    }

    static let any = ConfigCheck { _ in nil }
}
