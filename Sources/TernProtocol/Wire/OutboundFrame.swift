import NIOCore

/// A response ready to send: byte parts and, between them, file slices to send without copying.
public struct OutboundFrame: Sendable {
    public enum Part: Sendable {
        case bytes(ByteBuffer)
        case file(FileSlice)
    }

    public private(set) var parts: [Part]

    public var byteCount: Int {
        parts.reduce(0) { total, part in
            switch part {
            case .bytes(let b): return total + b.readableBytes
            case .file(let f): return total + f.length
            }
        }
    }

    /// The bytes the frame holds in memory (file parts are sent from the page cache).
    public var memoryBytes: Int {
        parts.reduce(0) { total, part in
            if case .bytes(let b) = part { return total + b.readableBytes }
            return total
        }
    }

    /// A writer that collects parts; start with `Writer()`, finish with `frame()`.
    public struct Writer: KafkaWriter {
        private var parts: [Part] = []
        private var current = ByteBuffer()

        public init() {}

        public mutating func writeKafkaInteger<T: FixedWidthInteger>(_ value: T) { current.writeInteger(value) }
        public mutating func appendKafkaRaw(_ bytes: ByteBuffer) { current.writeImmutableBuffer(bytes) }
        public mutating func appendKafkaUTF8(_ string: String) { current.writeString(string) }

        public mutating func appendKafkaRecords(_ records: KafkaRecords) {
            switch records {
            case .bytes(let b):
                current.writeImmutableBuffer(b)
            case .file(let slice):
                guard slice.length > 0 else { return }
                if current.readableBytes > 0 { parts.append(.bytes(current)) }
                parts.append(.file(slice))
                current = ByteBuffer()
            }
        }

        /// The parts written, with the Kafka int32 size prefix (bytes after it) in front.
        public func frame() -> OutboundFrame {
            var all = parts
            if current.readableBytes > 0 { all.append(.bytes(current)) }
            var frame = OutboundFrame(parts: all)
            var size = ByteBuffer()
            size.writeInteger(Int32(frame.byteCount))
            frame.parts.insert(.bytes(size), at: 0)
            return frame
        }
    }
}
