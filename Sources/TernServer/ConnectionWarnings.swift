import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Warnings about single connections — refused at the limit, closed for a bad frame — written at
/// most once a second of each kind, the next line counting those left out. A client opening
/// connections in a loop against a full broker, or sending garbage on each, would otherwise turn
/// every attempt into a log line and fill the disk the logs live on.
///
/// Shared by every event loop: the lock guards two counters and is held for no I/O.
public final class ConnectionWarnings: Sendable {
    public enum Kind: Sendable, CaseIterable {
        case refused, closed

        var message: Logger.Message {
            switch self {
            case .refused: "refusing connection"
            case .closed: "closing connection"
            }
        }
    }

    private struct Window {
        var opened: NIODeadline = .uptimeNanoseconds(0)
        var suppressed = 0
    }

    private let logger: Logger
    private let interval: TimeAmount
    private let windows = NIOLockedValueBox([Window](repeating: Window(), count: Kind.allCases.count))

    public init(logger: Logger, interval: TimeAmount = .seconds(1)) {
        self.logger = logger
        self.interval = interval
    }

    public func warn(_ kind: Kind, peer: SocketAddress?, reason: String, now: NIODeadline = .now()) {
        let index = Kind.allCases.firstIndex(of: kind)!
        let suppressed: Int? = windows.withLockedValue { windows in
            guard now - windows[index].opened >= interval else {
                windows[index].suppressed += 1
                return nil
            }
            defer { windows[index] = Window(opened: now, suppressed: 0) }
            return windows[index].suppressed
        }
        guard let suppressed else { return }
        var metadata: Logger.Metadata = ["peer": "\(peer?.description ?? "?")", "reason": "\(reason)"]
        if suppressed > 0 { metadata["suppressed"] = "\(suppressed)" }
        logger.warning(kind.message, metadata: metadata)
    }
}
