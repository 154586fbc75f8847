import CTernCodec
import NIOCore

/// The compression codecs of Kafka record batches, through the C core.
///
/// Decompression never allocates more than the caller's `limit`: a small batch that expands to
/// gigabytes (a "zip bomb") fails with `RecordBatchError.decompressedTooLarge` instead. The output
/// buffer starts near the input's size and grows by 4× up to the limit, so an honest batch costs
/// one or two attempts and a bomb at most ~1.3 × `limit` of work.
public enum RecordCompression {
    /// Largest decompressed body of one batch. Kafka has no such limit; clients cap batches at about
    /// 1 MB compressed, and 64× that covers any real data (text compresses 5–20×).
    public static let defaultDecompressedLimit = 64 << 20

    /// The C core's functions for one codec (all share the shapes of the LZ4 ones).
    private struct Codec {
        let bound: (Int) -> Int
        let compress: (UnsafeRawPointer?, Int, UnsafeMutableRawPointer?, Int) -> Int
        let decompress: (UnsafeRawPointer?, Int, UnsafeMutableRawPointer?, Int) -> Int
    }

    /// nil for `.none`: the records are stored as they are.
    private static func functions(_ codec: CompressionCodec) -> Codec? {
        switch codec {
        case .none: return nil
        case .gzip: return Codec(bound: tern_gzip_compress_bound, compress: tern_gzip_compress, decompress: tern_gzip_decompress)
        case .snappy: return Codec(bound: tern_snappy_compress_bound, compress: tern_snappy_compress, decompress: tern_snappy_decompress)
        case .lz4: return Codec(bound: tern_lz4f_compress_bound, compress: tern_lz4f_compress, decompress: tern_lz4f_decompress)
        case .zstd: return Codec(bound: tern_zstd_compress_bound, compress: tern_zstd_compress, decompress: tern_zstd_decompress)
        }
    }

    /// `fromProducer`: the batch is being produced, so a layout consumers read differently is
    /// refused — gzip data of several members, which Java consumers read whole and librdkafka
    /// only up to the first member's end (silently skipping records).
    public static func decompress(
        _ input: ByteBuffer, codec: CompressionCodec, limit: Int = defaultDecompressedLimit, fromProducer: Bool = false
    ) throws -> ByteBuffer {
        guard var functions = functions(codec) else { return input }
        if fromProducer && codec == .gzip {
            functions = Codec(bound: tern_gzip_compress_bound, compress: tern_gzip_compress, decompress: tern_gzip_decompress_one_member)
        }
        var capacity = min(limit, max(input.readableBytes * 4, 4096))
        while true {
            let (out, result) = run(functions.decompress, input, capacity: capacity)
            if result >= 0 { return out }
            if result == -3 {
                throw RecordBatchError.invalidRecord(
                    "gzip data of several members: Java consumers read every member and librdkafka only the first, so it is refused")
            }
            guard result == -2 else { throw RecordBatchError.corruptCompression(codec) }
            guard capacity < limit else { throw RecordBatchError.decompressedTooLarge(limit: limit) }
            capacity = min(limit, capacity * 4)
        }
    }

    public static func compress(_ input: ByteBuffer, codec: CompressionCodec) throws -> ByteBuffer {
        guard let functions = functions(codec) else { return input }
        let (out, result) = run(functions.compress, input, capacity: functions.bound(input.readableBytes))
        guard result >= 0 else { throw RecordBatchError.compressionFailed(codec) }
        return out
    }

    /// One C call from `input` into a new buffer of `capacity` bytes; its result (size or -errno).
    private static func run(_ transform: (UnsafeRawPointer?, Int, UnsafeMutableRawPointer?, Int) -> Int, _ input: ByteBuffer,
                            capacity: Int) -> (ByteBuffer, Int) {
        var out = ByteBuffer()
        var result = 0
        input.withUnsafeReadableBytes { src in
            _ = out.writeWithUnsafeMutableBytes(minimumWritableBytes: capacity) { dst in
                result = transform(src.baseAddress, src.count, dst.baseAddress, capacity)
                return max(result, 0)
            }
        }
        return (out, result)
    }
}
