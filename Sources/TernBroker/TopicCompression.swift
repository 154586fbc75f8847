/// Topic `compression.type`: what the broker stores. `producer` keeps batches exactly as sent;
/// `lz4` recompresses uncompressed batches with LZ4 through the C core.
public enum TopicCompression: String, Sendable {
    case producer
    case lz4
}
