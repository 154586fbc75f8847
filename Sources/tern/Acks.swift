import ArgumentParser

/// `--acks` as Kafka's tools spell it: `0`, `1`, `-1` or `all`. Parsed unconditionally, so
/// `--acks -1` is a value and not an unknown short option.
struct Acks: ExpressibleByArgument, CustomStringConvertible, Sendable {
    let value: Int16

    init(_ value: Int16) { self.value = value }

    init?(argument: String) {
        switch argument.lowercased() {
        case "all", "-1": value = -1
        case "0": value = 0
        case "1": value = 1
        default: return nil
        }
    }

    var description: String { value == -1 ? "all" : "\(value)" }
    static var allValueStrings: [String] { ["0", "1", "all"] }
}
