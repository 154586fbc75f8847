/// A KIP-848 `SubscribedTopicRegex`, matched against whole topic names in time linear in the
/// name's length — as Kafka matches them with RE2/J. A backtracking engine (NSRegularExpression)
/// takes exponential time on patterns like `(a+)+b`, and the match runs on the group
/// coordinator's event loop: one heartbeat could stall every group.
///
/// RE2's syntax for what topic patterns use: literals, `.`, classes (`[a-z0-9._-]`, `[^…]`,
/// `\d \w \s` and their negations), groups (`(…)`, `(?:…)`, `(?P<name>…)`), `|`, the quantifiers
/// `* + ? {n} {n,} {n,m}` (lazy forms too; they match the same names), and the anchors `^ $`.
/// Anything else is refused as invalid, and so is a pattern whose program would exceed
/// `maxInstructions` (RE2 limits counted repetition to 1000 as well).
struct TopicRegex: Sendable {
    struct Invalid: Error, CustomStringConvertible {
        let description: String
    }

    static let maxInstructions = 5_000
    static let maxRepeat = 1_000

    /// One step of the compiled program (a Thompson NFA, simulated Pike-style).
    private enum Instruction: Sendable {
        case scalar(Unicode.Scalar)
        case set(ScalarSet)
        case any
        case split(Int, Int)
        case jump(Int)
        case start
        case end
        case match
    }

    private let program: [Instruction]

    init(_ pattern: String) throws {
        var parser = Parser(scalars: Array(pattern.unicodeScalars))
        let node = try parser.parseAll()
        var compiler = Compiler()
        try compiler.emit(node)
        try compiler.append(.match)
        program = compiler.program
    }

    /// Whether the whole of `name` matches.
    func matches(_ name: String) -> Bool {
        let scalars = Array(name.unicodeScalars)
        var current: [Int] = []
        var next: [Int] = []
        var seen = [Int](repeating: -1, count: program.count)
        // Follows jumps, splits and anchors from `pc` at `position`, adding the states that consume.
        func add(_ pc: Int, _ position: Int, _ list: inout [Int], _ mark: Int) {
            var stack = [pc]
            while let pc = stack.popLast() {
                guard seen[pc] != mark else { continue }
                seen[pc] = mark
                switch program[pc] {
                case .jump(let to): stack.append(to)
                case .split(let a, let b):
                    stack.append(b)
                    stack.append(a)
                case .start: if position == 0 { stack.append(pc + 1) }
                case .end: if position == scalars.count { stack.append(pc + 1) }
                default: list.append(pc)
                }
            }
        }
        add(0, 0, &current, 0)
        for (i, c) in scalars.enumerated() {
            next.removeAll(keepingCapacity: true)
            for pc in current {
                let consumes: Bool
                switch program[pc] {
                case .scalar(let s): consumes = s == c
                case .set(let set): consumes = set.contains(c)
                case .any: consumes = c != "\n"
                default: consumes = false
                }
                if consumes { add(pc + 1, i + 1, &next, i + 1) }
            }
            if next.isEmpty { return false }
            swap(&current, &next)
        }
        return current.contains { if case .match = program[$0] { true } else { false } }
    }

    // MARK: parsing

    private indirect enum Node {
        case empty
        case scalar(Unicode.Scalar)
        case set(ScalarSet)
        case any
        case start
        case end
        case concat([Node])
        case alternate([Node])
        case repeated(Node, min: Int, max: Int?)  // max nil: unbounded
    }

    private struct Parser {
        let scalars: [Unicode.Scalar]
        var position = 0
        var depth = 0

        init(scalars: [Unicode.Scalar]) { self.scalars = scalars }

        mutating func parseAll() throws -> Node {
            let node = try parseAlternation()
            guard position == scalars.count else { throw Invalid(description: "unmatched ')' at \(position)") }
            return node
        }

        private var peek: Unicode.Scalar? { position < scalars.count ? scalars[position] : nil }

        private mutating func take() throws -> Unicode.Scalar {
            guard let c = peek else { throw Invalid(description: "unexpected end of pattern") }
            position += 1
            return c
        }

        private mutating func parseAlternation() throws -> Node {
            var branches = [try parseConcatenation()]
            while peek == "|" {
                position += 1
                branches.append(try parseConcatenation())
            }
            return branches.count == 1 ? branches[0] : .alternate(branches)
        }

        private mutating func parseConcatenation() throws -> Node {
            var items: [Node] = []
            while let c = peek, c != "|", c != ")" {
                var atom = try parseAtom()
                while let q = peek, q == "*" || q == "+" || q == "?" || q == "{" {
                    guard let (min, max) = try parseQuantifier() else { break }
                    if case .start = atom { throw Invalid(description: "repetition of an anchor") }
                    if case .end = atom { throw Invalid(description: "repetition of an anchor") }
                    if case .repeated = atom { throw Invalid(description: "bad repetition operator at \(position)") }
                    atom = .repeated(atom, min: min, max: max)
                    if peek == "?" { position += 1 }  // lazy: the same names match
                }
                items.append(atom)
            }
            return items.isEmpty ? .empty : items.count == 1 ? items[0] : .concat(items)
        }

        /// nil: a `{` that does not start a counted repetition (RE2 takes it literally).
        private mutating func parseQuantifier() throws -> (Int, Int?)? {
            let c = try take()
            switch c {
            case "*": return (0, nil)
            case "+": return (1, nil)
            case "?": return (0, 1)
            default:
                let saved = position
                guard let min = number() else {
                    position = saved - 1
                    return nil
                }
                var max: Int? = min
                if peek == "," {
                    position += 1
                    max = peek == "}" ? nil : number()
                    if max == nil && peek != "}" {
                        position = saved - 1
                        return nil
                    }
                }
                guard peek == "}" else {
                    position = saved - 1
                    return nil
                }
                position += 1
                guard min <= TopicRegex.maxRepeat, (max ?? min) <= TopicRegex.maxRepeat, min <= (max ?? min) else {
                    throw Invalid(description: "bad repetition count {\(min),\(max.map(String.init) ?? "")}")
                }
                return (min, max)
            }
        }

        private mutating func number() -> Int? {
            var value = 0
            var digits = 0
            while let c = peek, ("0"..."9").contains(c) {
                value = min(value * 10 + Int(c.value - 48), 100_000)
                digits += 1
                position += 1
            }
            return digits == 0 ? nil : value
        }

        private mutating func parseAtom() throws -> Node {
            let c = try take()
            switch c {
            case "(":
                depth += 1
                guard depth <= 100 else { throw Invalid(description: "groups nested too deep") }
                if peek == "?" {
                    position += 1
                    if peek == ":" {
                        position += 1
                    } else if peek == "P" || peek == "<" {
                        if peek == "P" { position += 1 }
                        guard try take() == "<" else { throw Invalid(description: "bad named group") }
                        while let n = peek, n != ">" {
                            guard n.isASCII, n.properties.isAlphabetic || n == "_" || n.properties.numericType != nil else {
                                throw Invalid(description: "bad group name")
                            }
                            position += 1
                        }
                        guard try take() == ">" else { throw Invalid(description: "bad named group") }
                    } else {
                        throw Invalid(description: "flags and look-around are not supported")
                    }
                }
                let inner = try parseAlternation()
                guard try take() == ")" else { throw Invalid(description: "missing ')'") }
                depth -= 1
                return .concat([inner])  // a group may be repeated even when it holds a repetition
            case "[": return .set(try parseClass())
            case ".": return .any
            case "^": return .start
            case "$": return .end
            case "\\": return try parseEscape(inClass: false)
            case "*", "+", "?": throw Invalid(description: "missing argument to repetition operator '\(c)'")
            default: return .scalar(c)
            }
        }

        private mutating func parseEscape(inClass: Bool) throws -> Node {
            let c = try take()
            switch c {
            case "d": return .set(.digits)
            case "D": return .set(ScalarSet.digits.inverted)
            case "w": return .set(.word)
            case "W": return .set(ScalarSet.word.inverted)
            case "s": return .set(.space)
            case "S": return .set(ScalarSet.space.inverted)
            case "t": return .scalar("\t")
            case "n": return .scalar("\n")
            case "A" where !inClass: return .start
            case "z" where !inClass: return .end
            default:
                // RE2 escapes punctuation only; a letter or digit escape it does not know is an error.
                guard c.isASCII, !c.properties.isAlphabetic, c.properties.numericType == nil else {
                    throw Invalid(description: "invalid escape sequence \\\(c)")
                }
                return .scalar(c)
            }
        }

        private mutating func parseClass() throws -> ScalarSet {
            var set = ScalarSet()
            let negated = peek == "^"
            if negated { position += 1 }
            var first = true
            while true {
                let c = try take()
                if c == "]" && !first { break }
                first = false
                var low: Unicode.Scalar
                if c == "\\" {
                    switch try parseEscape(inClass: true) {
                    case .scalar(let s): low = s
                    case .set(let s):
                        set.formUnion(s)
                        continue
                    default: throw Invalid(description: "bad escape in a class")
                    }
                } else {
                    low = c
                }
                if peek == "-", position + 1 < scalars.count, scalars[position + 1] != "]" {
                    position += 1
                    var high = try take()
                    if high == "\\" {
                        guard case .scalar(let s) = try parseEscape(inClass: true) else { throw Invalid(description: "bad class range") }
                        high = s
                    }
                    guard low.value <= high.value else { throw Invalid(description: "bad class range \(low)-\(high)") }
                    set.insert(low...high)
                } else {
                    set.insert(low...low)
                }
            }
            set.normalize()
            return negated ? set.inverted : set
        }
    }

    // MARK: compiling

    private struct Compiler {
        var program: [Instruction] = []

        mutating func append(_ instruction: Instruction) throws {
            guard program.count < TopicRegex.maxInstructions else { throw Invalid(description: "pattern too large") }
            program.append(instruction)
        }

        mutating func emit(_ node: Node) throws {
            switch node {
            case .empty: break
            case .scalar(let s): try append(.scalar(s))
            case .set(let s): try append(.set(s))
            case .any: try append(.any)
            case .start: try append(.start)
            case .end: try append(.end)
            case .concat(let items): for item in items { try emit(item) }
            case .alternate(let branches):
                // split L1, next; L1: branch; jump end; next: split …
                var jumps: [Int] = []
                for (i, branch) in branches.enumerated() {
                    if i < branches.count - 1 {
                        let split = program.count
                        try append(.split(split + 1, -1))
                        try emit(branch)
                        jumps.append(program.count)
                        try append(.jump(-1))
                        program[split] = .split(split + 1, program.count)
                    } else {
                        try emit(branch)
                    }
                }
                for j in jumps { program[j] = .jump(program.count) }
            case .repeated(let inner, let min, let max):
                for _ in 0..<min { try emit(inner) }
                if let max {
                    // Each optional copy: split into it or past the rest.
                    var splits: [Int] = []
                    for _ in min..<max {
                        splits.append(program.count)
                        try append(.split(program.count + 1, -1))
                        try emit(inner)
                    }
                    for s in splits { program[s] = .split(s + 1, program.count) }
                } else {
                    let loop = program.count
                    try append(.split(loop + 1, -1))
                    try emit(inner)
                    try append(.jump(loop))
                    program[loop] = .split(loop + 1, program.count)
                }
            }
        }
    }
}

/// A set of Unicode scalars as sorted, disjoint ranges.
struct ScalarSet: Sendable {
    private var ranges: [ClosedRange<UInt32>] = []

    static let digits = ScalarSet(["0"..."9"])
    static let word = ScalarSet(["0"..."9", "A"..."Z", "_"..."_", "a"..."z"])
    static let space = ScalarSet(["\t"..."\n", "\u{0C}"..."\r", " "..." "])

    init() {}

    init(_ ranges: [ClosedRange<Unicode.Scalar>]) {
        for r in ranges { insert(r) }
        normalize()
    }

    /// Appends a range; `normalize` must run before the set is matched against (a class of many
    /// ranges is sorted once, not once per range: a 64 KiB class must not stall the loop).
    mutating func insert(_ r: ClosedRange<Unicode.Scalar>) {
        ranges.append(r.lowerBound.value...r.upperBound.value)
    }

    mutating func formUnion(_ other: ScalarSet) {
        ranges += other.ranges
    }

    var inverted: ScalarSet {
        var source = self
        source.normalize()
        var result = ScalarSet()
        var next: UInt32 = 0
        for r in source.ranges {
            if r.lowerBound > next { result.ranges.append(next...(r.lowerBound - 1)) }
            next = r.upperBound == UInt32.max ? UInt32.max : r.upperBound + 1
        }
        if next <= 0x10FFFF { result.ranges.append(next...0x10FFFF) }
        return result
    }

    /// Binary search over the sorted, disjoint ranges `normalize` leaves.
    func contains(_ s: Unicode.Scalar) -> Bool {
        var (low, high) = (0, ranges.count)
        while low < high {
            let mid = (low + high) / 2
            if ranges[mid].upperBound < s.value { low = mid + 1 } else { high = mid }
        }
        return low < ranges.count && ranges[low].contains(s.value)
    }

    mutating func normalize() {
        ranges.sort { $0.lowerBound < $1.lowerBound }
        var merged: [ClosedRange<UInt32>] = []
        for r in ranges {
            if let last = merged.last, r.lowerBound <= last.upperBound &+ 1 {
                merged[merged.count - 1] = last.lowerBound...max(last.upperBound, r.upperBound)
            } else {
                merged.append(r)
            }
        }
        ranges = merged
    }
}
