import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat

/// A client for etcd's v3 API through the JSON gateway that etcd 3.4 serves on its client port
/// (`POST /v3/kv/range`, `/v3/kv/txn`, `/v3/lease/*`, `/v3/watch`): the same RPCs as the gRPC API,
/// without generated stubs. Keys and values are bytes (base64 on the wire) and 64-bit numbers
/// travel as JSON strings.
///
/// Concurrency: every call is `async` and independent; the client holds no mutable state, so it is
/// Sendable and may be shared. `shutdown()` must be awaited once, when done.
public final class EtcdClient: Sendable {
    public let endpoint: String
    private let http: HTTPClient
    private let timeout: TimeAmount

    /// `endpoint` is `http://host:port` (an `etcd://host:port` cluster address works too).
    public init(endpoint: String, requestTimeout: TimeAmount = .seconds(5)) {
        self.endpoint = endpoint.hasPrefix("etcd://") ? "http://" + endpoint.dropFirst("etcd://".count) : endpoint
        self.http = HTTPClient(eventLoopGroupProvider: .singleton)
        self.timeout = requestTimeout
    }

    public func shutdown() async throws {
        try await http.shutdown()
    }

    // MARK: keys

    /// Writes `value` at `key` (attached to `lease` when given); returns the store's new revision.
    @discardableResult
    public func put(_ key: String, _ value: [UInt8], lease: EtcdLease.ID? = nil) async throws -> Int64 {
        let response: EtcdWire.Header.Only = try await call("/v3/kv/put", EtcdWire.PutRequest(key: key, value: value, lease: lease))
        return response.header.revision
    }

    /// The key's current value, or nil.
    public func get(_ key: String) async throws -> EtcdKeyValue? {
        try await range(EtcdWire.RangeRequest(key: key)).values.first
    }

    /// Every key starting with `prefix`, in key order, and the revision they were read at.
    public func list(prefix: String) async throws -> (values: [EtcdKeyValue], revision: Int64) {
        try await range(EtcdWire.RangeRequest(key: prefix, rangeEnd: EtcdWire.prefixEnd(prefix)))
    }

    private func range(_ request: EtcdWire.RangeRequest) async throws -> (values: [EtcdKeyValue], revision: Int64) {
        let response: EtcdWire.RangeResponse = try await call("/v3/kv/range", request)
        return (try (response.kvs ?? []).map { try $0.decoded() }, response.header.revision)
    }

    /// Deletes `key`, or every key under it with `prefix: true`; returns how many went.
    @discardableResult
    public func delete(_ key: String, prefix: Bool = false) async throws -> Int64 {
        let request = EtcdWire.DeleteRequest(key: key, rangeEnd: prefix ? EtcdWire.prefixEnd(key) : nil)
        let response: EtcdWire.DeleteResponse = try await call("/v3/kv/deleterange", request)
        return Int64(response.deleted ?? "0") ?? 0
    }

    /// An atomic compare-and-swap: when every comparison holds, `success` is applied, otherwise
    /// `failure` — in one revision. This is how writes that depend on what was read avoid lost
    /// updates when two writers race.
    public func transaction(if compare: [EtcdCompare], then success: [EtcdOperation], else failure: [EtcdOperation] = []) async throws
        -> (succeeded: Bool, revision: Int64)
    {
        let response: EtcdWire.TxnResponse = try await call("/v3/kv/txn", EtcdWire.TxnRequest(compare: compare, success: success, failure: failure))
        return (response.succeeded ?? false, response.header.revision)
    }

    // MARK: leases

    /// A lease that expires `ttlSeconds` after its last keep-alive; keys put with it go with it.
    public func grantLease(ttlSeconds: Int64) async throws -> EtcdLease {
        let response: EtcdWire.LeaseGrantResponse = try await call("/v3/lease/grant", EtcdWire.LeaseGrantRequest(TTL: "\(ttlSeconds)"))
        guard let id = response.ID.flatMap(Int64.init), let ttl = response.TTL.flatMap(Int64.init), ttl > 0 else {
            throw EtcdError.server(code: -1, message: response.error ?? "lease grant returned no lease")
        }
        return EtcdLease(id: id, ttlSeconds: ttl)
    }

    /// Renews the lease; returns the seconds it now has, 0 when it has already expired.
    public func keepAlive(_ lease: EtcdLease.ID) async throws -> Int64 {
        let response: EtcdWire.Result<EtcdWire.LeaseKeepAliveResponse> = try await call("/v3/lease/keepalive", EtcdWire.LeaseID(ID: "\(lease)"))
        return response.result?.TTL.flatMap(Int64.init) ?? 0
    }

    /// Ends the lease now; its keys are deleted.
    public func revoke(_ lease: EtcdLease.ID) async throws {
        let _: EtcdWire.Header.Only = try await call("/v3/lease/revoke", EtcdWire.LeaseID(ID: "\(lease)"))
    }

    // MARK: watch

    /// Changes under `prefix` from `revision` on (0: from now), in revision order, as etcd delivers
    /// them; the stream ends with an error when the connection does (callers re-watch from the last
    /// revision they applied + 1).
    public func watch(prefix: String, fromRevision revision: Int64 = 0) -> AsyncThrowingStream<[EtcdEvent], Error> {
        let body = EtcdWire.WatchRequest(createRequest: .init(key: prefix, rangeEnd: EtcdWire.prefixEnd(prefix), startRevision: revision))
        return AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    var request = HTTPClientRequest(url: endpoint + "/v3/watch")
                    request.method = .POST
                    request.body = .bytes(ByteBuffer(data: try JSONEncoder().encode(body)))
                    let response = try await http.execute(request, timeout: .hours(24 * 365))
                    guard response.status == .ok else { throw EtcdError.server(code: Int(response.status.code), message: "watch refused") }
                    var pending = ByteBuffer()
                    for try await chunk in response.body {
                        pending.writeImmutableBuffer(chunk)
                        // The gateway sends one JSON object per message, newline-separated.
                        while let newline = pending.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
                            let line = pending.readSlice(length: newline - pending.readerIndex + 1)!
                            let message = try JSONDecoder().decode(EtcdWire.Result<EtcdWire.WatchResponse>.self, from: line)
                            if let error = message.error { throw EtcdError.server(code: error.grpc_code ?? -1, message: error.message ?? "watch failed") }
                            guard let result = message.result else { continue }
                            if result.canceled == true {
                                throw EtcdError.watchCanceled(compactRevision: result.compact_revision.flatMap(Int64.init) ?? 0)
                            }
                            let events = try (result.events ?? []).map { try $0.decoded() }
                            if !events.isEmpty { continuation.yield(events) }
                        }
                        pending.discardReadBytes()
                    }
                    throw EtcdError.unreachable(endpoint: endpoint, reason: "watch stream ended")
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    // MARK: transport

    private func call<Request: Encodable, Response: Decodable>(_ path: String, _ body: Request) async throws -> Response {
        var request = HTTPClientRequest(url: endpoint + path)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.body = .bytes(ByteBuffer(data: try JSONEncoder().encode(body)))
        let response: HTTPClientResponse
        let bytes: ByteBuffer
        do {
            response = try await http.execute(request, timeout: timeout)
            bytes = try await response.body.collect(upTo: 64 << 20)
        } catch {
            throw EtcdError.unreachable(endpoint: endpoint, reason: "\(error)")
        }
        guard response.status == .ok else {
            let detail = try? JSONDecoder().decode(EtcdWire.ErrorBody.self, from: bytes)
            throw EtcdError.server(code: detail?.code ?? Int(response.status.code), message: detail?.message ?? detail?.error ?? "HTTP \(response.status.code)")
        }
        return try JSONDecoder().decode(Response.self, from: bytes)
    }
}

public enum EtcdError: Error, Equatable, CustomStringConvertible {
    case unreachable(endpoint: String, reason: String)
    case server(code: Int, message: String)
    /// The watch started below etcd's compaction point: re-read the state, then watch again.
    case watchCanceled(compactRevision: Int64)

    public var description: String {
        switch self {
        case .unreachable(let endpoint, let reason): return "etcd at \(endpoint) is unreachable: \(reason)"
        case .server(let code, let message): return "etcd refused the request (\(code)): \(message)"
        case .watchCanceled(let compact): return "etcd cancelled the watch (compacted at revision \(compact))"
        }
    }
}
