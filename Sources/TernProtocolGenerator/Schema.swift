import Foundation

/// One Kafka message schema file (`messages/*.json`).
public struct MessageSchema {
    public enum Kind: String { case request, response, header, data }
    public let name: String
    public let kind: Kind
    public let apiKey: Int?
    public let validVersions: VersionRange
    public let flexibleVersions: VersionRange
    public let latestVersionUnstable: Bool
    public let fields: [FieldSchema]
    public let commonStructs: [StructSchema]
}

public struct StructSchema {
    public let name: String
    public let versions: VersionRange
    public let fields: [FieldSchema]
}

public struct FieldSchema {
    public let name: String
    public let type: FieldType
    public let versions: VersionRange
    public let nullableVersions: VersionRange
    public let taggedVersions: VersionRange
    public let tag: Int?
    public let defaultValue: String?
    /// What the field names ("topicName", "groupId", "producerId", …), when the schema says.
    public let entityType: String?
    /// Per-field override of the message's flexible versions (RequestHeader.ClientId is "none").
    public let flexibleVersions: VersionRange?
    /// Inline struct definition when the type is a struct or an array of structs declared here.
    public let fields: [FieldSchema]?
}

public indirect enum FieldType: Equatable {
    case bool, int8, int16, uint16, int32, uint32, int64, float64, string, bytes, records, uuid
    case array(FieldType)
    case structure(String)

    init(parsing s: String) {
        switch s {
        case "bool": self = .bool
        case "int8": self = .int8
        case "int16": self = .int16
        case "uint16": self = .uint16
        case "int32": self = .int32
        case "uint32": self = .uint32
        case "int64": self = .int64
        case "float64": self = .float64
        case "string": self = .string
        case "bytes": self = .bytes
        case "records": self = .records
        case "uuid": self = .uuid
        default:
            if s.hasPrefix("[]") {
                self = .array(FieldType(parsing: String(s.dropFirst(2))))
            } else {
                self = .structure(s)
            }
        }
    }
}

extension MessageSchema {
    /// Parses a schema file's text (JSON with `//` line comments).
    public init(json text: String) throws {
        let data = Data(stripComments(text).utf8)
        guard let obj = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw GeneratorError.badSchema("not an object")
        }
        guard let name = obj["name"] as? String, let type = obj["type"] as? String,
            let kind = Kind(rawValue: type)
        else { throw GeneratorError.badSchema("missing name/type") }
        self.name = name
        self.kind = kind
        self.apiKey = obj["apiKey"] as? Int
        self.validVersions = try VersionRange(parsing: obj["validVersions"] as? String ?? "0")
        self.flexibleVersions = try VersionRange(parsing: obj["flexibleVersions"] as? String ?? "none")
        self.latestVersionUnstable = obj["latestVersionUnstable"] as? Bool ?? false
        self.fields = try (obj["fields"] as? [[String: Any]] ?? []).map(FieldSchema.init(json:))
        self.commonStructs = try (obj["commonStructs"] as? [[String: Any]] ?? []).map { s in
            guard let n = s["name"] as? String else { throw GeneratorError.badSchema("common struct name") }
            return StructSchema(
                name: n, versions: try VersionRange(parsing: s["versions"] as? String ?? "0+"),
                fields: try (s["fields"] as? [[String: Any]] ?? []).map(FieldSchema.init(json:)))
        }
    }
}

extension FieldSchema {
    init(json f: [String: Any]) throws {
        guard let name = f["name"] as? String, let type = f["type"] as? String else {
            throw GeneratorError.badSchema("field without name/type")
        }
        self.name = name
        self.type = FieldType(parsing: type)
        self.versions = try VersionRange(parsing: f["versions"] as? String ?? "0+")
        self.nullableVersions = try VersionRange(parsing: f["nullableVersions"] as? String ?? "none")
        self.taggedVersions = try VersionRange(parsing: f["taggedVersions"] as? String ?? "none")
        self.tag = f["tag"] as? Int ?? (f["tag"] as? String).flatMap { Int($0) }
        if let d = f["default"] {
            self.defaultValue = d as? String ?? "\(d)"
        } else {
            self.defaultValue = nil
        }
        self.flexibleVersions = try (f["flexibleVersions"] as? String).map(VersionRange.init(parsing:))
        self.entityType = f["entityType"] as? String
        self.fields = try (f["fields"] as? [[String: Any]])?.map(FieldSchema.init(json:))
    }
}

extension MessageSchema {
    /// The message and each struct it uses (declared inline or common), breadth first in field
    /// order, through fields some valid version has: the order the sample and fuzz emitters write
    /// their extensions in.
    var structsInOrder: [(name: String, fields: [FieldSchema])] {
        var structs: [(name: String, fields: [FieldSchema])] = [(name, fields)]
        var seen: Set<String> = []
        let common = Dictionary(commonStructs.map { ($0.name, $0.fields) }, uniquingKeysWith: { a, _ in a })
        var index = 0
        while index < structs.count {
            for f in structs[index].fields where f.versions.condition(within: validVersions) != "false" {
                if let nested = f.type.structName, seen.insert(nested).inserted {
                    structs.append((nested, f.fields ?? common[nested] ?? []))
                }
            }
            index += 1
        }
        return structs
    }
}

extension FieldType {
    /// The struct this type is or holds an array of.
    var structName: String? {
        switch self {
        case .structure(let n): return n
        case .array(let e): return e.structName
        default: return nil
        }
    }
}

/// Removes `//` comments outside string literals.
func stripComments(_ text: String) -> String {
    var out = ""
    out.reserveCapacity(text.utf8.count)
    var inString = false
    var escaped = false
    var chars = Array(text.unicodeScalars)[...]
    while let c = chars.popFirst() {
        if inString {
            out.unicodeScalars.append(c)
            if escaped { escaped = false } else if c == "\\" { escaped = true } else if c == "\"" { inString = false }
            continue
        }
        if c == "/" && chars.first == "/" {
            while let n = chars.first, n != "\n" { chars.removeFirst() }
            continue
        }
        if c == "\"" { inString = true }
        out.unicodeScalars.append(c)
    }
    return out
}
