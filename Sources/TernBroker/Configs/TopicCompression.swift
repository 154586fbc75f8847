import TernProtocol

/// Topic `compression.type`: what the broker stores. `producer` keeps batches exactly as sent; a
/// codec name (or `uncompressed`) re-encodes every batch that arrives in another codec, as Kafka
/// does, keeping offsets, timestamps and producer fields.
public enum TopicCompression: String, Sendable, CaseIterable {
    case producer
    case uncompressed
    case gzip
    case snappy
    case lz4
    case zstd

    /// The codec batches are stored with; nil for `producer` (as sent).
    var codec: CompressionCodec? {
        switch self {
        case .producer: return nil
        case .uncompressed: return CompressionCodec.none
        case .gzip: return .gzip
        case .snappy: return .snappy
        case .lz4: return .lz4
        case .zstd: return .zstd
        }
    }
}
