import NIOConcurrencyHelpers

/// The broker-wide budget for request and response bytes (`queued.max.request.bytes`): a
/// connection reserves a frame's size when its size prefix arrives; once the response exists its
/// bytes are charged too (they must be, not refused), and both are released when the response has
/// been written to the socket. A connection that cannot reserve stops reading until memory is
/// released, so many slow or hostile clients together — sending requests, or pipelining requests
/// and never reading the replies — cannot make the broker hold much more than the budget. An
/// idle connection (nothing outstanding) may always bring one request of up to 64 KiB, so that a
/// broker at its budget keeps serving every client a request at a time.
///
/// Every request is charged at least `minimumCharge`, so the budget bounds how many requests the
/// broker holds at once as well as their bytes: a flood of tiny requests over many connections
/// stops at 256 Ki requests with the default budget. (Kafka also has `queued.max.requests`, a bound
/// on requests waiting for a handler thread; Tern handles each request on arrival on its
/// connection's event loop, so it has no such queue, and this charge is what bounds the count.)
package final class RequestMemoryPool: Sendable {
    /// What a request costs beyond its bytes — the decoded request, its future and response slot —
    /// rounded up, charged to requests smaller than this.
    static let minimumCharge = 1024
    private let limit: Int
    private let used = NIOLockedValueBox(0)

    /// `limit` -1: unlimited.
    package init(limit: Int) { self.limit = limit }

    /// Reserves `bytes` if they fit, or if nothing is reserved at all (so one frame larger than the
    /// whole budget can still be served alone, as Kafka's memory pool allows).
    func tryReserve(_ bytes: Int) -> Bool {
        precondition(bytes >= 0)
        if limit < 0 { return true }
        return used.withLockedValue { used in
            guard used == 0 || used + bytes <= limit else { return false }
            used += bytes
            return true
        }
    }

    /// Charges `bytes` whatever the budget says (a response that exists, an idle connection's
    /// one small request).
    func forceReserve(_ bytes: Int) {
        precondition(bytes >= 0)
        if limit < 0 || bytes == 0 { return }
        used.withLockedValue { $0 += bytes }
    }

    package func release(_ bytes: Int) {
        if limit < 0 || bytes == 0 { return }
        used.withLockedValue { used in
            used -= bytes
            assert(used >= 0, "released more request memory than was reserved")
        }
    }

    package var reservedBytes: Int { used.withLockedValue { $0 } }

    /// Half the budget or more is held: connections that hold theirs without progress must go.
    var underPressure: Bool { limit >= 0 && reservedBytes >= limit / 2 }
}

/// What one connection has outstanding: frames handed to the request handler whose responses have
/// not been written yet. Shared by the connection's framer and request handler; event-loop
/// confined like them.
package final class ConnectionLoad {
    package init() {}
    var outstanding = 0
    /// The largest request an idle connection may bring past a full budget.
    static let idleAllowance = 64 * 1024
}
