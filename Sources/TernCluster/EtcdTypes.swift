import Foundation

/// One key as etcd stores it, with the revisions that compare-and-swap writes check against.
public struct EtcdKeyValue: Sendable, Equatable {
    public var key: String
    public var value: [UInt8]
    public var createRevision: Int64
    public var modRevision: Int64
    public var version: Int64
    public var lease: EtcdLease.ID

    public var string: String { String(decoding: value, as: UTF8.self) }
}

public struct EtcdLease: Sendable, Equatable {
    public typealias ID = Int64
    public var id: ID
    public var ttlSeconds: Int64
}

/// A change seen by a watch: the key's new state, or its deletion (then only key and revision).
public struct EtcdEvent: Sendable, Equatable {
    public enum Kind: Sendable, Equatable { case put, delete }
    public var kind: Kind
    public var keyValue: EtcdKeyValue
}

/// One comparison of a transaction.
public struct EtcdCompare: Sendable, Encodable {
    enum Target: String, Encodable { case version = "VERSION", create = "CREATE", mod = "MOD", value = "VALUE" }
    enum Result: String, Encodable { case equal = "EQUAL", greater = "GREATER", less = "LESS", notEqual = "NOT_EQUAL" }

    let key: String
    let target: Target
    let result: Result
    let revision: Int64
    let value: [UInt8]?

    /// The key was last written at `revision` (0: it does not exist).
    public static func modRevision(of key: String, is revision: Int64) -> EtcdCompare {
        EtcdCompare(key: key, target: .mod, result: .equal, revision: revision, value: nil)
    }

    /// The key was created at `revision` (and not deleted since): the same incarnation of it.
    public static func createRevision(of key: String, is revision: Int64) -> EtcdCompare {
        EtcdCompare(key: key, target: .create, result: .equal, revision: revision, value: nil)
    }

    /// The key does not exist.
    public static func absent(_ key: String) -> EtcdCompare {
        EtcdCompare(key: key, target: .create, result: .equal, revision: 0, value: nil)
    }

    /// The key holds exactly `value`.
    public static func value(of key: String, is value: [UInt8]) -> EtcdCompare {
        EtcdCompare(key: key, target: .value, result: .equal, revision: 0, value: value)
    }

    enum CodingKeys: String, CodingKey { case key, target, result, mod_revision, create_revision, version, value }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(Data(key.utf8).base64EncodedString(), forKey: .key)
        try c.encode(target, forKey: .target)
        try c.encode(result, forKey: .result)
        switch target {
        case .mod: try c.encode("\(revision)", forKey: .mod_revision)
        case .create: try c.encode("\(revision)", forKey: .create_revision)
        case .version: try c.encode("\(revision)", forKey: .version)
        case .value: try c.encode(Data(value ?? []).base64EncodedString(), forKey: .value)
        }
    }
}

/// One write of a transaction.
public enum EtcdOperation: Sendable, Encodable {
    case put(String, [UInt8], lease: EtcdLease.ID? = nil)
    case delete(String)

    enum CodingKeys: String, CodingKey { case request_put, request_delete_range }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .put(let key, let value, let lease): try c.encode(EtcdWire.PutRequest(key: key, value: value, lease: lease), forKey: .request_put)
        case .delete(let key): try c.encode(EtcdWire.DeleteRequest(key: key, rangeEnd: nil), forKey: .request_delete_range)
        }
    }
}

/// The JSON shapes of etcd's gateway: base64 bytes, 64-bit numbers as strings, zero values omitted.
enum EtcdWire {
    static func base64(_ s: String) -> String { Data(s.utf8).base64EncodedString() }

    /// The smallest key greater than every key starting with `prefix` (etcd's range_end for a prefix).
    static func prefixEnd(_ prefix: String) -> String {
        var bytes = Array(prefix.utf8)
        while let last = bytes.last {
            if last < 0xFF {
                bytes[bytes.count - 1] = last + 1
                return Data(bytes).base64EncodedString()
            }
            bytes.removeLast()
        }
        return Data([0]).base64EncodedString()  // every key
    }

    struct Header: Decodable {
        let revisionString: String?
        var revision: Int64 { revisionString.flatMap(Int64.init) ?? 0 }
        enum CodingKeys: String, CodingKey { case revisionString = "revision" }

        struct Only: Decodable { let header: Header }
    }

    struct PutRequest: Encodable {
        let key: String
        let value: String
        let lease: String?
        init(key: String, value: [UInt8], lease: EtcdLease.ID?) {
            self.key = base64(key)
            self.value = Data(value).base64EncodedString()
            self.lease = lease.map { "\($0)" }
        }
    }

    struct RangeRequest: Encodable {
        let key: String
        let range_end: String?
        init(key: String, rangeEnd: String? = nil) {
            self.key = base64(key)
            self.range_end = rangeEnd
        }
    }

    struct KV: Decodable {
        let key: String
        let value: String?
        let create_revision: String?
        let mod_revision: String?
        let version: String?
        let lease: String?

        func decoded() throws -> EtcdKeyValue {
            guard let keyBytes = Data(base64Encoded: key) else { throw EtcdError.server(code: -1, message: "undecodable key \(key)") }
            return EtcdKeyValue(
                key: String(decoding: keyBytes, as: UTF8.self), value: Array(Data(base64Encoded: value ?? "") ?? Data()),
                createRevision: create_revision.flatMap(Int64.init) ?? 0, modRevision: mod_revision.flatMap(Int64.init) ?? 0,
                version: version.flatMap(Int64.init) ?? 0, lease: lease.flatMap(Int64.init) ?? 0)
        }
    }

    struct RangeResponse: Decodable {
        let header: Header
        let kvs: [KV]?
    }

    struct DeleteRequest: Encodable {
        let key: String
        let range_end: String?
        init(key: String, rangeEnd: String?) {
            self.key = base64(key)
            self.range_end = rangeEnd
        }
    }

    struct DeleteResponse: Decodable {
        let header: Header
        let deleted: String?
    }

    struct TxnRequest: Encodable {
        let compare: [EtcdCompare]
        let success: [EtcdOperation]
        let failure: [EtcdOperation]
    }

    struct TxnResponse: Decodable {
        let header: Header
        let succeeded: Bool?
    }

    struct LeaseGrantRequest: Encodable { let TTL: String }

    struct LeaseGrantResponse: Decodable {
        let ID: String?
        let TTL: String?
        let error: String?
    }

    struct LeaseID: Encodable { let ID: String }

    struct LeaseKeepAliveResponse: Decodable { let TTL: String? }

    struct Result<T: Decodable>: Decodable {
        let result: T?
        let error: StreamError?
    }

    struct StreamError: Decodable {
        let grpc_code: Int?
        let message: String?
    }

    struct ErrorBody: Decodable {
        let error: String?
        let code: Int?
        let message: String?
    }

    struct WatchRequest: Encodable {
        struct Create: Encodable {
            let key: String
            let range_end: String
            let start_revision: String?
            init(key: String, rangeEnd: String, startRevision: Int64) {
                self.key = base64(key)
                self.range_end = rangeEnd
                self.start_revision = startRevision > 0 ? "\(startRevision)" : nil
            }
        }
        let create_request: Create
        init(createRequest: Create) { create_request = createRequest }
    }

    struct WatchResponse: Decodable {
        struct Event: Decodable {
            let type: String?
            let kv: KV
            func decoded() throws -> EtcdEvent { EtcdEvent(kind: type == "DELETE" ? .delete : .put, keyValue: try kv.decoded()) }
        }
        let events: [Event]?
        let canceled: Bool?
        let compact_revision: String?
    }
}
